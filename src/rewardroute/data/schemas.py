"""The two record types every part of rewardroute reads and writes (see DESIGN.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


def _id_to_str(v: Any) -> Any:
    # Sources use integer ids; the schema keeps one type.
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


RecordId = Annotated[str, BeforeValidator(_id_to_str)]


class Message(BaseModel):
    """One OpenAI-style chat message."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str


Prompt = str | list[Message]


class PreferencePair(BaseModel):
    """`{"id", "prompt", "chosen", "rejected", "domain"}`: chosen is preferred over rejected."""

    model_config = ConfigDict(extra="ignore")
    id: RecordId
    prompt: Prompt
    chosen: str
    rejected: str
    domain: str = Field(min_length=1)
    source: str | None = None  # which public source the pair came from
    # What keeps related prompts in one split and one bootstrap cluster (the story, the task across
    # languages, the first user turn); None means the prompt itself.
    group: str | None = None

    def group_key(self) -> str:
        """The split and clustering unit: `group`, else the rendered prompt."""
        return self.group or render_prompt(self.prompt)


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


def render_prompt(prompt: Prompt) -> str:
    """Flatten a prompt to text, the same way whatever its format, for routing and scoring alike.

    A string stays as it is. Messages lose their system/developer turns; one user turn left
    renders as its bare text (so `"q"` and `[{"role": "user", "content": "q"}]` are the same
    prompt); a longer conversation becomes 'Role: content' turns, one block each.
    """
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
