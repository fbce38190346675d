"""Request and response bodies of the HTTP API (they also make the published OpenAPI spec).

Chat requests are validated here only as a gate: the proxy forwards the client's own JSON,
unchanged except for `model`. Known OpenAI fields are type-checked strictly (a string where a
number belongs is the client's mistake, named in a 400, not something to pass on); any other
field goes through to the backend as sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..data.schemas import Message


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


# -- chat ---------------------------------------------------------------------------------------

class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: str = Field(min_length=1)
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat completion request. `model`: `rewardroute` (routed with the configured
    policy), `rewardroute:argmax`, `rewardroute:cost_aware` or `rewardroute:cost_aware:<lambda>`,
    or a backend's name (no routing)."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    user: str | None = None


# -- rewards ------------------------------------------------------------------------------------

class RewardInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    prompt: str | list[Message]  # the conversation before the response
    response: str


class RewardsRequest(BaseModel):
    """Score (prompt, response) pairs with a configured reward model. At most
    `rewards.max_inputs` pairs per call (4096 by default), scored in forward passes of
    `rewards.max_batch`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: str = Field(min_length=1, max_length=256)
    input: list[RewardInput] = Field(min_length=1)


class RewardDatum(BaseModel):
    object: Literal["reward"] = "reward"
    index: int
    reward: float | None  # None only if the model produced a non-finite number
    domain: str | None = None  # the most likely domain, for routed models (more, rodos, arliss)
    domain_probs: dict[str, float] | None = None


class RewardUsage(BaseModel):
    inputs: int


class RewardsResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[RewardDatum]
    usage: RewardUsage


# -- models and health --------------------------------------------------------------------------

class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "rewardroute"
    kind: Literal["router", "backend", "reward_model"]
    details: dict[str, Any] = Field(default_factory=dict)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class BackendHealth(BaseModel):
    reachable: bool
    latency_ms: float | None = None
    status_code: int | None = None
    error: str | None = None
    breaker: Literal["closed", "half_open", "open"]


class HealthReport(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    live: bool
    ready: bool
    router: dict[str, Any]
    reward_models: list[str]
    backends: dict[str, BackendHealth]


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"
