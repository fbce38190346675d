"""Turning (prompt, response) pairs into token ids under a length limit.

Truncation rule (one place, used by every model):
  * The budget is `max_length` minus the special tokens.
  * If prompt and response fit, both are kept whole.
  * Otherwise the prompt keeps at least `min(len(prompt), prompt_share * budget)` tokens and the
    response gets the rest of the budget, keeping its *beginning*. Whatever the response leaves
    unused goes back to the prompt.
  * The prompt keeps its *end*: the latest turn is what the response answers.
Encoders see `[CLS] prompt [SEP] response [SEP]` (token types 0/1); decoders see
`prompt "\\n\\n" response <eos>` and pool the last token.
Texts far longer than the budget are cut by characters first (16 characters per token is a
safe bound) so a 1 MB input costs no more than a long one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

CHARS_PER_TOKEN_BOUND = 16


@dataclass
class Encoded:
    input_ids: list[int]
    token_type_ids: list[int]


class PairTokenizer:
    def __init__(self, tokenizer, *, max_length: int, is_decoder: bool, prompt_share: float = 0.25):
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {max_length}")
        self.tok = tokenizer
        self.max_length = max_length
        self.is_decoder = is_decoder
        self.prompt_share = prompt_share
        if is_decoder:
            self.prefix: list[int] = [tokenizer.bos_token_id] if getattr(tokenizer, "add_bos_token", False) and tokenizer.bos_token_id is not None else []
            self.middle = tokenizer("\n\n", add_special_tokens=False)["input_ids"]
            self.suffix = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        else:
            cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
            sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
            self.prefix = [cls_id] if cls_id is not None else []
            self.middle = [sep_id] if sep_id is not None else []
            self.suffix = [sep_id] if sep_id is not None else []
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.pad_id = pad

    # -- ids ---------------------------------------------------------------------------------
    def _ids(self, texts: Sequence[str], keep: str, budget: int) -> list[list[int]]:
        limit = budget * CHARS_PER_TOKEN_BOUND
        cut = [t[-limit:] if keep == "end" else t[:limit] for t in texts]
        return self.tok(list(cut), add_special_tokens=False)["input_ids"]

    def split_budget(self, n_prompt: int, n_response: int, budget: int) -> tuple[int, int]:
        """How many prompt and response tokens to keep (see the module docstring)."""
        if n_prompt + n_response <= budget:
            return n_prompt, n_response
        reserve = min(n_prompt, int(budget * self.prompt_share))
        keep_r = min(n_response, budget - reserve)
        keep_p = min(n_prompt, budget - keep_r)
        return keep_p, keep_r

    def encode_pairs(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Encoded]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        budget = self.max_length - len(self.prefix) - len(self.middle) - len(self.suffix)
        p_ids = self._ids(prompts, "end", budget)
        r_ids = self._ids(responses, "start", budget)
        out = []
        for p, r in zip(p_ids, r_ids):
            kp, kr = self.split_budget(len(p), len(r), budget)
            p = p[len(p) - kp:] if kp else []
            r = r[:kr]
            first = self.prefix + p + self.middle
            second = r + self.suffix
            out.append(Encoded(first + second, [0] * len(first) + [1] * len(second)))
        return out

    def encode_texts(self, texts: Sequence[str]) -> list[Encoded]:
        """A single text (a query for a router), keeping its end."""
        budget = self.max_length - len(self.prefix) - len(self.suffix)
        out = []
        for ids in self._ids(texts, "end", budget):
            ids = self.prefix + ids[max(0, len(ids) - budget):] + self.suffix
            out.append(Encoded(ids, [0] * len(ids)))
        return out

    # -- batching ----------------------------------------------------------------------------
    def pad(self, batch: Sequence[Encoded]) -> dict[str, torch.Tensor]:
        """Dynamic padding: pad to the longest row of this batch (right side)."""
        width = max(len(e.input_ids) for e in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        types = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e.input_ids)
            ids[i, :n] = torch.tensor(e.input_ids, dtype=torch.long)
            types[i, :n] = torch.tensor(e.token_type_ids, dtype=torch.long)
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
