"""OpenAI-compatible LLM backends: their configuration and an async client."""

from .config import BackendConfig, load_backends

__all__ = ["BackendConfig", "load_backends"]
