"""`rm export`: a `single` reward model as a folder plain transformers loads.

The folder holds the backbone's tokenizer, a config whose `auto_map` points at
`modeling_rewardroute.py` (copied beside the weights, it needs nothing of rewardroute), and
`model.safetensors` with the backbone under `backbone.` and the head as `score.`. Loaded with
`AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)`, `logits[:, 0]`
is the reward. Pooling is kept as trained (mean for encoders, last token for decoders).

Inputs: encoders take `tokenizer(prompt, response)`, which is exactly rewardroute's encoding while the
pair fits in `max_length`; past it, rewardroute's rule (keep the prompt's end and the response's
beginning) differs from the tokenizer's truncation. Decoders take `prompt + "\\n\\n" + response + eos`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from ..errors import CheckpointError
from ..io import atomic_dir
from .checkpoint import load_model, read_reward_meta

MODELING = Path(__file__).with_name("hf_export") / "modeling_rewardroute.py"
ARCHS = ("single",)  # what export supports: one backbone and one scalar head


def export_transformers(model_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Write `model_dir` (a `single` checkpoint) to `out` for transformers; returns a summary."""
    arch = read_reward_meta(model_dir).get("arch")
    if arch not in ARCHS:
        raise CheckpointError(f"{model_dir}: '{arch}' models cannot be exported for transformers yet "
                              f"(supported: {', '.join(ARCHS)}); arliss adapters load with PEFT (see README)")
    model = load_model(model_dir)
    backbone = model.backbone
    hf_cfg = backbone.model.config.to_dict()
    for key in ("architectures", "auto_map", "_name_or_path", "transformers_version", "dtype", "torch_dtype"):
        hf_cfg.pop(key, None)
    config = {
        "model_type": "rewardroute_reward",
        "architectures": ["RewardRouteForSequenceClassification"],
        "auto_map": {"AutoConfig": "modeling_rewardroute.RewardRouteConfig",
                     "AutoModelForSequenceClassification": "modeling_rewardroute.RewardRouteForSequenceClassification"},
        "backbone": hf_cfg,
        "pooling": backbone.pooling,
        "num_labels": 1,
        "max_length": backbone.cfg.max_length,
        "is_decoder_format": backbone.is_decoder,
    }
    weights = {f"backbone.{k}": v.contiguous() for k, v in backbone.model.state_dict().items()}
    weights["score.weight"] = model.head.linear.weight.detach().contiguous()
    weights["score.bias"] = model.head.linear.bias.detach().contiguous()
    out = Path(out)
    with atomic_dir(out) as tmp:
        import json

        save_file({k: v.detach().cpu() for k, v in weights.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        backbone.tokenizer.model_max_length = backbone.cfg.max_length
        backbone.tokenizer.save_pretrained(tmp)
        shutil.copy(MODELING, tmp / MODELING.name)
    return {"out": str(out), "arch": arch, "pooling": backbone.pooling, "max_length": backbone.cfg.max_length}
