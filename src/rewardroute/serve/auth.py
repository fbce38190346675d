"""Optional bearer API keys for /v1/*: `Authorization: Bearer <key>`.

Keys come from `auth.api_keys` and the environment variable `auth.api_keys_env`. Without any
key auth is off. Keys are compared in constant time and never written to a log or an error.
/health, /metrics and /openapi.json stay open, since orchestrators and Prometheus poll them
without credentials; keep them on an internal network if that matters. With keys configured,
/docs and /redoc need a key too.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import APIError

bearer_scheme = HTTPBearer(auto_error=False, description="An API key from serve.yaml or $REWARDROUTE_API_KEYS "
                                                         "(only when keys are configured).")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def key_checker(keys: Sequence[str]):
    """A FastAPI dependency that accepts a request carrying one of `keys` (any, when empty)."""
    encoded = [k.encode("utf-8") for k in keys]

    async def check(credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme)) -> None:
        if not encoded:
            return
        if credentials is None or not credentials.credentials:
            raise APIError(401, "missing API key: send the header 'Authorization: Bearer <key>'",
                           code="missing_api_key", headers=CHALLENGE)
        given = credentials.credentials.encode("utf-8", "replace")
        if not any(hmac.compare_digest(given, k) for k in encoded):
            raise APIError(401, "invalid API key", code="invalid_api_key", headers=CHALLENGE)

    return check
