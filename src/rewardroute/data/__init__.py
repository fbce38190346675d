"""Data layer: schemas, readers and builders for the public sources."""

from .readers import ReadReport, read_pairs, read_records, read_routing
from .schemas import Message, PreferencePair, RoutingRecord, last_user_turn, render_prompt

__all__ = [
    "Message", "PreferencePair", "RoutingRecord", "ReadReport",
    "read_pairs", "read_records", "read_routing", "render_prompt", "last_user_turn",
]
