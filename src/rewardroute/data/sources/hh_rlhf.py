"""safety: Anthropic hh-rlhf harmless-base test pairs (red-team dialogues)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..schemas import Message, PreferencePair
from ..split import normalise
from .base import PairBuilder, load_jsonl, make_pair

ASSISTANT = "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def split_dialogue(text: str) -> tuple[str, str] | None:
    """(prefix up to and including the last "\\n\\nAssistant:", final answer), or None."""
    i = text.rfind(ASSISTANT)
    if i < 0:
        return None
    cut = i + len(ASSISTANT)
    return text[:cut], text[cut:].strip()


def to_messages(prefix: str) -> list[Message] | None:
    """"\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant:" -> user/assistant/user messages.

    None when the text does not start with a turn marker or does not end on a user turn.
    """
    parts = _TURN.split(prefix)
    if parts[0].strip():
        return None
    turns = [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2)]
    if not turns or turns[-1] != ("Assistant", ""):
        return None
    messages = [Message(role=_ROLE[who], content=text) for who, text in turns[:-1]]
    if not messages or messages[-1].role != "user":
        return None
    return messages


def first_turn_group(messages: list[Message]) -> str:
    """Split group: the first user turn, normalised (red-team dialogues often reopen one another's
    opening question and then diverge)."""
    return "hh-rlhf:" + normalise(messages[0].content)


@dataclass
class HHRLHFHarmless(PairBuilder):
    name = "hh-rlhf"
    domain = "safety"
    origin_url = "https://github.com/anthropics/hh-rlhf"
    upstream = "file harmless-base/test.jsonl.gz"
    required_files = ("anthropic-hh-rlhf/harmless-base-test.jsonl.gz",)
    rules = ("Each line holds two whole dialogues that share every turn but the last assistant one. "
             "Prompt = the shared dialogue up to and including the last `\\n\\nAssistant:`, as "
             "user/assistant messages; chosen/rejected = the two final assistant turns (stripped). "
             "Pairs whose prefixes differ (cannot be split), with an empty answer, or with "
             "chosen == rejected are skipped. Split group: the first user turn (whitespace-collapsed, "
             "lower-cased). Text is offensive by design (red-team prompts).")

    def build(self, source_dir: Path) -> Iterator[PreferencePair]:
        (path,) = self.require(source_dir)  # here, not in the generator: a missing file fails at once
        return self._pairs(path)

    def _pairs(self, path: Path) -> Iterator[PreferencePair]:
        """Pairs as the file is read, one line at a time (any file size)."""
        for n, row in enumerate(load_jsonl(path), start=1):
            c, r = split_dialogue(row.get("chosen", "")), split_dialogue(row.get("rejected", ""))
            if c is None or r is None or c[0] != r[0]:
                continue
            chosen, rejected = c[1], r[1]
            messages = to_messages(c[0])
            if messages is None or not chosen or not rejected or chosen == rejected:
                continue
            yield make_pair(self.domain, self.name, f"harmless-test:{n}", messages, chosen, rejected,
                            group=first_turn_group(messages))
