"""OpenRLHF's remote reward-model protocol, served by the reward models of `rewards.models`.

OpenRLHF (`--remote_rm_url http://HOST:PORT/get_reward`) POSTs
`{"query": [...], "prompts": [...], "labels": [...]}` and reads `{"rewards": [...]}`. Each query
is a whole rollout (the prompt, with its chat template, then the response, perhaps with an end
token); recent versions also send the prompts alone. Our models score (prompt, response), so
the response is the query after its prompt. Without `prompts` (older OpenRLHF) the whole query
is scored as the response to an empty prompt. `?model=NAME` picks a reward model; the default
is `rewards.openrlhf_model`, else the first one configured.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import APIError

# End-of-turn markers a rollout may still carry (OpenRLHF's own server strips pad/eos too).
END_MARKERS = ("</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<eos>")


class GetRewardRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # labels and future fields are ignored
    query: list[str] = Field(min_length=1)
    prompts: list[str] | None = None

    @model_validator(mode="after")
    def _same_length(self) -> "GetRewardRequest":
        if self.prompts is not None and len(self.prompts) != len(self.query):
            raise ValueError(f"prompts has {len(self.prompts)} items but query has {len(self.query)}")
        return self


class GetRewardResponse(BaseModel):
    rewards: list[float | None]


def strip_end(text: str) -> str:
    text = text.rstrip()
    changed = True
    while changed:
        changed = False
        for marker in END_MARKERS:
            if text.endswith(marker):
                text, changed = text[: -len(marker)].rstrip(), True
    return text


def split_rollout(query: str, prompt: str | None) -> tuple[str, str]:
    """(prompt, response) of one rollout: the response is what follows the prompt in the query."""
    if not prompt:
        return "", strip_end(query)
    at = query.find(prompt)
    if at < 0:
        raise ValueError("the prompt does not occur in its query")
    return prompt, strip_end(query[at + len(prompt):])


def rollout_pairs(req: GetRewardRequest) -> list[tuple[str, str]]:
    prompts = req.prompts or [None] * len(req.query)
    pairs = []
    for i, (q, p) in enumerate(zip(req.query, prompts)):
        try:
            pairs.append(split_rollout(q, p))
        except ValueError as e:
            raise APIError(400, f"query[{i}]: {e}", param=f"query[{i}]", code="invalid_value") from None
    return pairs


def default_model(names: list[str], configured: str | None) -> str:
    if configured is not None:
        return configured
    if not names:
        raise APIError(404, "no reward model is configured (rewards.models)", code="model_not_found")
    return names[0]
