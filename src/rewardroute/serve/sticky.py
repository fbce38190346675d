"""Conversation stickiness: conversation id -> the backend that answers it.

A bounded LRU with a time-to-live per entry, so memory stays flat however many conversations
come and go. The store only remembers decisions; the rule that keeps a conversation on one
backend across workers and restarts is in `serve.router_service` (route on the first user turn).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class ConversationStore:
    def __init__(self, max_entries: int = 100_000, ttl_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.clock = clock
        self._items: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, conversation: str) -> str | None:
        item = self._items.get(conversation)
        if item is None:
            return None
        backend, expires = item
        if self.clock() >= expires:
            del self._items[conversation]
            return None
        self._items.move_to_end(conversation)
        return backend

    def pin(self, conversation: str, backend: str) -> None:
        """Remember (or refresh) the conversation's backend; evicts the least recent when full."""
        self._items[conversation] = (backend, self.clock() + self.ttl_s)
        self._items.move_to_end(conversation)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
