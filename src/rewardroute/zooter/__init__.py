"""Zooter: reward-guided routing of queries across an ensemble of LLMs (Lu et al., NAACL 2024).

collect (ask every backend) -> score (a reward model rates each response) -> labels (softmax with
temperature, tag enhancement) -> train (the shared ExpertRouter, KL loss) -> route / evaluate.
Modules import their heavy dependencies themselves; importing this package is cheap.
"""
