"""rewardroute: route to the expert.

Lightweight domain-robust reward models (single, MoRE, RODOS, ARLISS) and
reward-guided routing of queries across LLMs (Zooter).
"""

__version__ = "0.1.0"
