"""Backends are OpenAI-compatible endpoints (vLLM, llama.cpp, Ollama, any API).

`backends.yaml`:

    backends:
      - name: small                      # the name routers and users refer to
        base_url: http://127.0.0.1:8081/v1
        model: smollm2-135m              # the model name the endpoint expects
        api_key_env: SMALL_API_KEY       # name of an environment variable, never the key
        cost_per_1k_tokens: 0.0002
        timeout_s: 60                    # per attempt: connect, send and the whole answer
        stream_idle_timeout_s: 30        # streams: the longest wait between two chunks
        max_concurrency: 4
        max_retries: 2
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError


class BackendConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    base_url: str
    model: str
    api_key_env: str | None = None
    cost_per_1k_tokens: float = Field(default=0.0, ge=0)
    # Bounds each attempt as a whole (connect, send, the full answer; for a stream, up to its
    # first chunk), not each read: a backend trickling bytes cannot hold a request past it.
    timeout_s: float = Field(default=60.0, gt=0)
    stream_idle_timeout_s: float = Field(default=30.0, gt=0)  # streams: longest wait between chunks
    max_concurrency: int = Field(default=4, ge=1)
    max_retries: int = Field(default=2, ge=0)
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into every request

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    def api_key(self) -> str | None:
        """The key from the environment; None when no variable is configured or it is unset."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None


def load_backends(path: str | Path) -> list[BackendConfig]:
    """Read backends from YAML/JSON: a list, or a mapping with a `backends:` list."""
    from ..config_overrides import read_yaml

    path = Path(path)
    data = read_yaml(path, "backends file")
    items = data.get("backends") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{path}: expected a non-empty `backends:` list")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(BackendConfig.model_validate(item))
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{path}: backends[{i}] field '{field}': {err['msg']}") from None
    names = [b.name for b in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{path}: backend names must be unique; repeated: {dup}")
    return out
