"""A rewardroute `single` reward model for plain transformers (written by `rewardroute rm export`).

Load with trust_remote_code (this file travels with the weights; it imports nothing of rewardroute):

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)
    tok = AutoTokenizer.from_pretrained(DIR)
    reward = model(**tok(prompt, response, return_tensors="pt")).logits[0, 0]

The backbone's states are pooled the rewardroute way (mean over real tokens for encoders, the
last real token for decoders), then a linear head gives one scalar: `logits[:, 0]` is the reward.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class RewardRouteConfig(PretrainedConfig):
    model_type = "rewardroute_reward"

    def __init__(self, backbone: dict | None = None, pooling: str = "mean", **kwargs):
        kwargs.setdefault("num_labels", 1)
        super().__init__(**kwargs)
        self.backbone = backbone or {}
        self.pooling = pooling

    def backbone_config(self) -> PretrainedConfig:
        spec = dict(self.backbone)
        return AutoConfig.for_model(spec.pop("model_type"), **spec)


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        last = mask.sum(dim=1).clamp(min=1) - 1  # right padding: the last real token
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class RewardRouteForSequenceClassification(PreTrainedModel):
    config_class = RewardRouteConfig
    base_model_prefix = "backbone"

    def __init__(self, config: RewardRouteConfig):
        super().__init__(config)
        bb = config.backbone_config()
        self.backbone = AutoModel.from_config(bb)
        self.uses_token_types = getattr(bb, "type_vocab_size", 0) > 1
        self.score = nn.Linear(bb.hidden_size, 1)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        pass  # every weight comes from the checkpoint

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.uses_token_types and token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**inputs).last_hidden_state
        logits = self.score(pool(hidden, attention_mask, self.config.pooling))
        return SequenceClassifierOutput(logits=logits)
