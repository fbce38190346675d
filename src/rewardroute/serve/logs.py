"""Keep secrets out of the server's logs.

uvicorn's access log writes each request line with its query string, so a client that sends
its key as `?api_key=...` (some SDKs and browsers do) would have it written verbatim. The
filter here masks the values of key-like query parameters and any `Bearer`/`Basic`
credential in the access log and in this package's own log lines.
"""

from __future__ import annotations

import logging
import re

# Query parameters whose values are credentials.
SECRET_PARAMS = ("api_key", "api-key", "apikey", "key", "token", "access_token", "id_token", "refresh_token",
                 "auth", "authorization", "password", "passwd", "secret", "client_secret", "signature", "sig",
                 "x-api-key", "session")
_QUERY = re.compile(r"([?&;](?:" + "|".join(re.escape(p) for p in SECRET_PARAMS) + r")=)[^&;#\s\"']*", re.I)
_CREDENTIAL = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=:-]+", re.I)
MASK = "***"

LOGGERS = ("uvicorn.access", "uvicorn.error", "rewardroute.serve")


def redact(text: str) -> str:
    """`/v1/models?api_key=sk-1&x=2` -> `/v1/models?api_key=***&x=2`; `Bearer sk-1` -> `Bearer ***`."""
    return _CREDENTIAL.sub(lambda m: f"{m.group(1)} {MASK}", _QUERY.sub(lambda m: m.group(1) + MASK, text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            # uvicorn's access formatter unpacks the args (client, method, path, version, status):
            # mask inside them and keep their shape.
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    """Attach the filter to uvicorn's loggers and ours (once per process)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
