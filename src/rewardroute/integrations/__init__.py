"""Glue for the tools ML engineers run beside rewardroute (TRL, OpenRLHF)."""
