"""What a trained Zooter router keeps beside its weights, typed.

It is saved in the router's `config.json` (under `meta`). Two kinds of settings are kept apart:
- `training`: the `ZooterConfig` the router was trained with (label temperature, tags, grids);
  read for the record, never applied at inference;
- `inference`: what `ZooterRouter` applies to every query (the kNN mix, the abstain margin,
  the strong-share quantiles).
The rest is what training measured (best single model, training means, costs, normaliser).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .zooter_config import ZooterConfig

KIND = "zooter"


class KnnSettings(BaseModel):
    """p = (1 - weight) * p_head + weight * softmax(mean score of the k nearest training queries / T)."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(ge=1)
    weight: float = Field(ge=0, le=1)
    # Training sets it to the label temperature, so the kNN term and the head's targets share a
    # scale; it is an inference setting of its own and may be changed without retraining.
    temperature: float = Field(gt=0)


class AbstainSettings(BaseModel):
    """Route to `model` (the best single one) unless another is predicted better by `margin`."""

    model_config = ConfigDict(extra="forbid")
    model: str
    margin: float = Field(default=0.0, ge=0)
    temperature: float = Field(gt=0)


class InferenceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    knn: KnnSettings
    abstain: AbstainSettings | None = None
    # quantiles of p(strong) over the training queries (two-model routers): `--strong-share`
    # turns a target share of strong-model calls into a probability threshold with them
    strong_quantiles: list[float] | None = None


class NormalizerState(BaseModel):
    """The affine map of training scores (`labels.Normalizer`)."""

    model_config = ConfigDict(extra="forbid")
    how: Literal["none", "minmax", "zscore"] = "minmax"
    shift: float = 0.0
    scale: float = 1.0


class ZooterState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["zooter"] = KIND
    method: Literal["zooter", "regression", "mf", "knn", "zooter-ft"]
    params: dict[str, Any] = Field(default_factory=dict)  # the method's chosen hyperparameters
    training: ZooterConfig
    inference: InferenceSettings
    models: list[str]  # every model scored in the training data (the experts are a subset)
    train_means: dict[str, float]
    best_single: str
    costs: dict[str, float] | None = None  # mean cost per call, when the data had costs
    normalizer: NormalizerState = Field(default_factory=NormalizerState)
    guard: dict[str, Any] | None = None  # out-of-fold gain over best single, and whether it fell back
    head_l2: float = 0.0
    n_train: int = Field(ge=0)
    skipped: int = 0
    train_data: dict[str, Any] | None = None  # identity of the training file (`data_identity`)
    auto_tags_k: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_untyped_layout(cls, data: Any) -> Any:
        """Routers saved before the settings were typed keep them flat (`zooter`, `knn`, ...)."""
        if isinstance(data, dict) and "zooter" in data and "training" not in data:
            data = dict(data)
            data["training"] = data.pop("zooter")
            data["inference"] = {"knn": data.pop("knn"), "abstain": data.pop("abstain", None),
                                 "strong_quantiles": data.pop("strong_quantiles", None)}
        return data
