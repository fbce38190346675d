"""`serve.yaml`: everything `rewardroute serve` needs, in one pydantic model.

See `examples/serve.yaml` for a documented example. Relative paths (router, reward models,
`backends_file`) are resolved against the folder of the YAML file, so a config can travel with
its models.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from ..backends.config import BackendConfig, load_backends
from ..config_overrides import read_yaml
from ..errors import ConfigError
from .precision import Precision, RouterPrecision

Policy = Literal["argmax", "cost_aware"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)  # each worker loads its own router and reward models
    # Torch threads per worker for router and reward inference. 1 leaves the other core to the
    # event loop (HTTP parsing, forwarding); more helps only large reward batches.
    torch_threads: int | None = Field(default=1, ge=1)
    graceful_timeout_s: float = Field(default=10.0, gt=0)  # in-flight requests finish on SIGTERM
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # Where the router and reward models run (rewardroute.runtime): auto, cpu, cuda, cuda:N, mps.
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        from ..runtime import RuntimeConfig

        return RuntimeConfig(device=v).device


class RouterSettings(_Section):
    # A router directory from `rewardroute router train` (Zooter) or `save_router`. None: no
    # router yet; `model: rewardroute` then ranks backends with uniform probabilities (argmax:
    # the first backend; cost_aware: the cheapest), so clients can already use the name.
    path: Path | None = None
    name: str = Field(default="rewardroute", min_length=1)  # the model name that asks for routing
    policy: Policy = "argmax"  # default for `model: rewardroute`; `rewardroute:<policy>` overrides
    lam: float = Field(default=0.1, ge=0)  # cost_aware: probability points given up for the price range
    # Router expert name -> backend name, where they differ (e.g. trained on "gpt-4o-mini" data,
    # served by backend "mini"). Experts with no backend are never chosen.
    experts: dict[str, str] = Field(default_factory=dict)
    # Routing text (see serve.router_service.routing_text): the last user turn, after up to
    # `context_messages` earlier user/assistant messages cut to their last `context_chars`.
    context_messages: int = Field(default=2, ge=0)
    context_chars: int = Field(default=300, ge=0)
    cache_size: int = Field(default=4096, ge=0)  # LRU of routing decisions by text hash; 0: off
    max_batch: int = Field(default=32, ge=1)  # concurrent routing texts embedded in one forward pass
    batch_window_ms: float = Field(default=0.0, ge=0)  # 0: batch only what queued while busy
    # bfloat16: faster batches on AMX/AVX512-BF16 CPUs; int8: CPU, about 2x faster (serve.precision)
    precision: RouterPrecision = "float32"


class RewardModelEntry(_Section):
    name: str = Field(min_length=1)  # the `model` clients send to /v1/rewards
    path: Path  # a reward-model directory (`rewardroute rm train`): single, more, rodos or arliss


class RewardSettings(_Section):
    models: list[RewardModelEntry] = Field(default_factory=list)
    # (prompt, response) pairs one call may send; a call larger than `max_batch` is split into
    # forward passes of `max_batch`, so the cap only bounds memory per call (an RLHF rollout batch
    # of a few thousand fits).
    max_inputs: int = Field(default=4096, ge=1)
    max_batch: int = Field(default=64, ge=1)  # pairs per forward pass, across concurrent calls
    # How long the first queued call waits for others to join its batch: a few ms of latency
    # buy a much larger batch when an RLHF trainer sends many calls at once.
    batch_window_ms: float = Field(default=5.0, ge=0)
    precision: Precision = "float32"  # see serve.precision
    openrlhf_model: str | None = None  # the model behind /get_reward (default: the first one)

    @model_validator(mode="after")
    def _openrlhf_model_is_served(self) -> "RewardSettings":
        names = [m.name for m in self.models]
        if self.openrlhf_model is not None and self.openrlhf_model not in names:
            raise ValueError(f"rewards.openrlhf_model '{self.openrlhf_model}' is not one of rewards.models {names}")
        return self


class ResilienceSettings(_Section):
    max_attempts: int = Field(default=3, ge=1)  # backends tried per request: the chosen one + fallbacks
    # Circuit breaker: after `failure_threshold` failed attempts in a row (retries count) a
    # backend is skipped for `reset_after_s`; then one request may try it again (success
    # closes the breaker). Requests already queued for the backend's slots, or about to retry
    # it, move on to the next backend as soon as it opens.
    failure_threshold: int = Field(default=3, ge=1)
    reset_after_s: float = Field(default=30.0, gt=0)
    # Backoff between retries of one backend (`max_retries` per backend): short, since a
    # fallback backend is waiting.
    retry_base_s: float = Field(default=0.1, ge=0)
    retry_cap_s: float = Field(default=1.0, ge=0)


class StickinessSettings(_Section):
    header: str = Field(default="x-conversation-id", min_length=1)  # the client's conversation id
    ttl_s: float = Field(default=3600.0, gt=0)
    max_conversations: int = Field(default=100_000, ge=1)

    @field_validator("header")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class AuthSettings(_Section):
    # Bearer keys for /v1/*. Prefer the environment variable (comma-separated keys) to keys in
    # the file. No key from either source: auth is off.
    api_keys: list[SecretStr] = Field(default_factory=list)
    api_keys_env: str | None = "REWARDROUTE_API_KEYS"


class LimitSettings(_Section):
    # Large enough for an RLHF rollout batch sent to /v1/rewards or /get_reward in one call.
    max_body_bytes: int = Field(default=16 * 1_048_576, ge=1024)


class HealthSettings(_Section):
    probe_timeout_s: float = Field(default=2.0, gt=0)
    cache_s: float = Field(default=5.0, ge=0)  # reuse a probe this long (health checks are frequent)


class ServeConfig(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    backends: list[BackendConfig] = Field(default_factory=list)
    backends_file: Path | None = None  # or a separate backends.yaml (`backends.load_backends`)
    router: RouterSettings = Field(default_factory=RouterSettings)
    rewards: RewardSettings = Field(default_factory=RewardSettings)
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings)
    stickiness: StickinessSettings = Field(default_factory=StickinessSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

    @model_validator(mode="after")
    def _consistent(self) -> "ServeConfig":
        names = [b.name for b in self.backends]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"backend names must be unique; repeated: {dup}")
        for expert, backend in self.router.experts.items():
            if names and backend not in names:
                raise ValueError(f"router.experts maps '{expert}' to '{backend}', which is not a backend {names}")
        rm_names = [m.name for m in self.rewards.models]
        taken = set(names) | {self.router.name}
        clash = sorted({n for n in rm_names if n in taken or rm_names.count(n) > 1})
        if clash:
            raise ValueError(f"reward model names must be unique and differ from backend names: {clash}")
        if self.router.name in names:
            raise ValueError(f"router.name '{self.router.name}' is also a backend name")
        if not re.fullmatch(r"[!-~]+", self.router.name) or ":" in self.router.name:
            raise ValueError("router.name must be printable ASCII without spaces or ':'")
        return self

    def api_keys(self) -> list[str]:
        """Every accepted key: from the file and from the environment variable."""
        import os

        keys = [k.get_secret_value() for k in self.auth.api_keys]
        if self.auth.api_keys_env:
            keys += [k.strip() for k in os.environ.get(self.auth.api_keys_env, "").split(",")]
        return [k for k in keys if k]

    def backend(self, name: str) -> BackendConfig:
        return next(b for b in self.backends if b.name == name)


def _resolve(base: Path, value: Path | None) -> Path | None:
    if value is None or value.is_absolute():
        return value
    return (base / value).resolve()


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"field '{field}': {err['msg']}{more}" if field else f"{err['msg']}{more}"


def parse_serve_config(data: dict, base_dir: str | Path = ".", source: str = "serve config") -> ServeConfig:
    """Validate a config mapping; relative paths are taken from `base_dir`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        cfg = ServeConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {_first_error(e)}") from None
    base = Path(base_dir)
    if cfg.backends_file is not None:
        if cfg.backends:
            raise ConfigError(f"{source}: give `backends:` or `backends_file:`, not both")
        path = _resolve(base, cfg.backends_file)
        data = {**data, "backends": [b.model_dump() for b in load_backends(path)], "backends_file": None}
        return parse_serve_config(data, base_dir, source)
    updates = {"router": cfg.router.model_copy(update={"path": _resolve(base, cfg.router.path)})}
    models = [m.model_copy(update={"path": _resolve(base, m.path)}) for m in cfg.rewards.models]
    updates["rewards"] = cfg.rewards.model_copy(update={"models": models})
    cfg = cfg.model_copy(update=updates)
    if not cfg.backends and not cfg.rewards.models:
        raise ConfigError(f"{source}: nothing to serve: configure `backends:` and/or `rewards.models:`")
    return cfg


DEVICE_ENV = "REWARDROUTE_SERVE_DEVICE"  # `rewardroute serve --device` for every worker
PRECISION_ENV = "REWARDROUTE_SERVE_PRECISION"  # `--precision`: router and reward models


def load_serve_config(path: str | Path) -> ServeConfig:
    """Read and validate `serve.yaml` (with the CLI's --device/--precision, which reach the
    workers through the environment); a ConfigError names the file and the field."""
    import os

    path = Path(path)
    data = read_yaml(path, "serve config") or {}
    if isinstance(data, dict):
        if os.environ.get(DEVICE_ENV):
            data = {**data, "server": {**(data.get("server") or {}), "device": os.environ[DEVICE_ENV]}}
        if os.environ.get(PRECISION_ENV):
            p = os.environ[PRECISION_ENV]
            data = {**data, "router": {**(data.get("router") or {}), "precision": p}}
            if p != "int8":  # int8 is the router's alone; reward models keep their setting
                data["rewards"] = {**(data.get("rewards") or {}), "precision": p}
    return parse_serve_config(data, path.parent, str(path))


def check_paths(cfg: ServeConfig) -> None:
    """Fail early, before a server starts, when a model directory is missing or the router
    routes among models none of which is a configured backend (reads metadata only)."""
    missing = []
    if cfg.router.path is not None and not cfg.router.path.is_dir():
        missing.append(f"router.path {cfg.router.path}")
    missing += [f"rewards.models '{m.name}' path {m.path}" for m in cfg.rewards.models if not m.path.is_dir()]
    if missing:
        raise ConfigError("not found: " + "; ".join(missing))
    if cfg.router.path is not None and cfg.backends:
        from ..router.model import read_router_meta

        experts = read_router_meta(cfg.router.path).get("config", {}).get("experts", [])
        names = {b.name for b in cfg.backends}
        if not any(cfg.router.experts.get(e, e) in names for e in experts):
            raise ConfigError(f"router.path {cfg.router.path} routes among {experts}, none of which is a backend "
                              f"{sorted(names)}; name backends after them or map them with router.experts")
