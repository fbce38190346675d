"""The two record types every part of rewardroute reads and writes (see README: Data)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import hashlib
import json

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator


def _id_to_str(v: Any) -> Any:
    # Sources use integer ids; the schema keeps one type.
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


RecordId = Annotated[str, BeforeValidator(_id_to_str)]


def content_text(content: Any) -> Any:
    """Text of an OpenAI message content: a string, None (empty), or a list of parts of which the
    `{"type": "text", "text": ...}` ones are kept. Anything else is left for validation to reject."""
    if content is None:
        return ""
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content


class Message(BaseModel):
    """One OpenAI-style chat message."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Annotated[str, BeforeValidator(content_text)]


Prompt = str | list[Message]


DEFAULT_DOMAIN = "general"  # the domain of rows that name none (e.g. TRL datasets)


class PreferencePair(BaseModel):
    """`{"id", "prompt", "chosen", "rejected", "domain"}`: chosen is preferred over rejected.

    TRL's preference rows load as they are: `id` defaults to a stable hash of the row, `domain`
    to `general`, and conversational `chosen`/`rejected` (message lists, with or without an
    explicit `prompt`) become the prompt conversation plus the final answers' text.
    """

    model_config = ConfigDict(extra="ignore")
    id: RecordId
    prompt: Prompt
    chosen: str
    rejected: str
    domain: str = Field(default=DEFAULT_DOMAIN, min_length=1)
    source: str | None = None  # which public source the pair came from
    # What keeps related prompts in one split and one bootstrap cluster (the story, the task across
    # languages, the first user turn); None means the prompt itself.
    group: str | None = None

    def group_key(self) -> str:
        """The split and clustering unit: `group`, else the rendered prompt."""
        return self.group or render_prompt(self.prompt)

    @model_validator(mode="before")
    @classmethod
    def _trl_forms(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        chosen, rejected = data.get("chosen"), data.get("rejected")
        if _is_messages(chosen) and _is_messages(rejected):
            if data.get("prompt") is None:  # implicit prompt: the messages both sides share
                shared = 0
                while (shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]):
                    shared += 1
                data["prompt"], chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
            data["chosen"], data["rejected"] = _answer_text(chosen), _answer_text(rejected)
        if data.get("id") is None and all(isinstance(data.get(k), (str, list)) for k in ("prompt", "chosen", "rejected")):
            data["id"] = stable_id(data["prompt"], data["chosen"], data["rejected"])
        return data


class RoutingRecord(BaseModel):
    """One query with a score per model: `{"id", "query", "tags", "responses", "scores", "costs"}`."""

    model_config = ConfigDict(extra="ignore")
    id: RecordId
    query: Prompt
    tags: list[str] = Field(default_factory=list)
    responses: dict[str, str] | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    costs: dict[str, float] | None = None
    errors: dict[str, str] | None = None  # backend failures recorded by `router collect`

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_list(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, str):
            return [v]
        return v

    def models_scored(self) -> list[str]:
        return [m for m, s in self.scores.items() if s is not None]


# Turns that instruct the assistant rather than ask it something: not part of what is routed or scored.
INSTRUCTION_ROLES = frozenset({"system", "developer"})


def _is_messages(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(m, dict) and "role" in m for m in v)


def _answer_text(messages: list[dict[str, Any]]) -> str:
    """The answer of a conversational completion: its assistant turns' text (all turns if none is)."""
    turns = [m for m in messages if m.get("role") == "assistant"] or messages
    return "\n\n".join(str(content_text(m.get("content"))) for m in turns)


def stable_id(*parts: Any) -> str:
    """A short id that depends only on the content (the same row gets the same id on any machine)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def as_prompt(prompt: Any) -> Prompt:
    """A prompt from what users pass: a string, or messages as `Message`s or OpenAI-style dicts."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)):
        return [m if isinstance(m, Message) else Message.model_validate(m) for m in prompt]
    raise TypeError(f"a prompt is a string or a list of messages, not {type(prompt).__name__}")


def render_prompt(prompt: Prompt) -> str:
    """Flatten a prompt to text, the same way whatever its format, for routing and scoring alike.

    A string stays as it is. Messages lose their system/developer turns; one user turn left
    renders as its bare text (so `"q"` and `[{"role": "user", "content": "q"}]` are the same
    prompt); a longer conversation becomes 'Role: content' turns, one block each.
    """
    prompt = as_prompt(prompt)
    if isinstance(prompt, str):
        return prompt
    turns = [m for m in prompt if m.role not in INSTRUCTION_ROLES] or list(prompt)
    if len(turns) == 1:
        return turns[0].content
    return "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in turns)


def last_user_turn(prompt: Prompt) -> str:
    """The text of the last user message (the whole text for a plain string)."""
    if isinstance(prompt, str):
        return prompt
    for m in reversed(prompt):
        if m.role == "user":
            return m.content
    return render_prompt(prompt)
