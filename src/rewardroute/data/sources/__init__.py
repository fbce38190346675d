"""Builders for the public sources, registered by reward domain and by routing table.

Adding a source is one module (a `PairBuilder` or `RoutingBuilder` subclass) and one line here.
"""

from __future__ import annotations

from .alpaca_eval import AlpacaEval11Routing, AlpacaEval57Routing, AlpacaEvalPairs
from .base import Builder, PairBuilder, RoutingBuilder
from .can_ai_code import CanAiCodePairs, CanAiCodeRouting
from .gsm8k import GSM8KPairs, GSM8KRouting
from .hanna import HannaPairs
from .hh_rlhf import HHRLHFHarmless
from .human import HaluQuestQAPairs, LLMBarNaturalPairs, MTBenchHumanPairs, QAFeedbackPairs
from .humaneval import HumanEvalPairs, HumanEvalRouting
from .squality import SQuALITYPairs
from .summeval import SummEvalPairs

# domain -> the builders whose pairs make up that domain
PAIR_BUILDERS: dict[str, tuple[type[PairBuilder], ...]] = {
    "safety": (HHRLHFHarmless,),
    "math": (GSM8KPairs,),
    "chat": (AlpacaEvalPairs,),
    "code": (HumanEvalPairs, CanAiCodePairs),
    "summarization": (SummEvalPairs, SQuALITYPairs),
    "stories": (HannaPairs,),
    # people's pairwise preferences; its test split is the held-out human test (opt-in)
    "human": (QAFeedbackPairs, HaluQuestQAPairs, LLMBarNaturalPairs, MTBenchHumanPairs),
}

# The five reward domains `data build` makes unless told otherwise ("stories" and "human" are opt-in).
DEFAULT_DOMAINS: tuple[str, ...] = ("safety", "math", "chat", "code", "summarization")

# routing table name (file routing/<name>.jsonl) -> builder
ROUTING_BUILDERS: dict[str, type[RoutingBuilder]] = {
    "alpaca_eval_57": AlpacaEval57Routing,
    "alpaca_eval_11": AlpacaEval11Routing,
    "gsm8k_2": GSM8KRouting,
    "humaneval": HumanEvalRouting,
    "can_ai_code": CanAiCodeRouting,
}

__all__ = ["Builder", "PairBuilder", "RoutingBuilder", "PAIR_BUILDERS", "DEFAULT_DOMAINS", "ROUTING_BUILDERS"]
