"""A reward function with TRL's `reward_funcs` signature, from a local reward model or a server.

    from rewardroute.integrations.trl import reward_function
    trainer = GRPOTrainer(..., reward_funcs=[reward_function("runs/rm")])
    trainer = GRPOTrainer(..., reward_funcs=[reward_function("http://127.0.0.1:8000", model="rm")])

TRL calls `f(prompts=..., completions=..., **columns)`: standard rows pass strings, conversational
rows pass message lists (the completion is a list holding the assistant message). Both work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..data.schemas import as_prompt, content_text

RewardFn = Callable[..., list[float]]


def completion_text(completion: Any) -> str:
    """The answer's text: a string, or the assistant turns of a conversational completion."""
    if isinstance(completion, str):
        return completion
    turns = [m for m in completion if m.get("role") == "assistant"] or list(completion)
    return "\n\n".join(str(content_text(m.get("content"))) for m in turns)


def reward_function(model_or_url: str | Path, *, model: str = "rm", api_key: str | None = None,
                    batch_size: int = 32, chunk: int = 64, timeout_s: float = 120.0,
                    http_client: Any = None) -> RewardFn:
    """A callable `(prompts, completions, **kwargs) -> list[float]` for TRL trainers.

    `model_or_url` is a reward-model folder, or the base URL of `rewardroute serve` (then `model` is
    the served reward model's name, and calls are split into `chunk`-sized requests)."""
    target = str(model_or_url)
    if target.startswith(("http://", "https://")):
        score = _remote_scorer(target.rstrip("/"), model, api_key, chunk, timeout_s, http_client)
    else:
        from ..api import load_reward_model

        scorer = load_reward_model(target)

        def score(prompts: list[Any], responses: list[str]) -> list[float]:
            return scorer.score(prompts, responses, batch_size=batch_size)

    def rewardroute_reward(prompts: Sequence[Any], completions: Sequence[Any], **_columns: Any) -> list[float]:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        return score([as_prompt(p) for p in prompts], [completion_text(c) for c in completions])

    return rewardroute_reward


def _remote_scorer(base_url: str, model: str, api_key: str | None, chunk: int, timeout_s: float,
                   client: Any) -> Callable[[list[Any], list[str]], list[float]]:
    import httpx

    http = client or httpx.Client(timeout=timeout_s)
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    root = base_url.removesuffix("/v1")

    def score(prompts: list[Any], responses: list[str]) -> list[float]:
        out: list[float] = []
        for start in range(0, len(prompts), chunk):
            body = {"model": model, "input": [
                {"prompt": p if isinstance(p, str) else [m.model_dump() for m in p], "response": r}
                for p, r in zip(prompts[start:start + chunk], responses[start:start + chunk])]}
            r = http.post(f"{root}/v1/rewards", json=body, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"{root}/v1/rewards answered {r.status_code}: {r.text[:300]}")
            out += [row["reward"] for row in r.json()["data"]]
        return out

    return score
