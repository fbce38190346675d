"""uvicorn's HTTP protocol with one change: a request its parser rejects (a bad
Content-Length, a malformed request line or header) is answered with an OpenAI-style JSON 400,
like every other error, instead of uvicorn's plain-text "Invalid HTTP request received.".

uvicorn answers these itself, before any ASGI app runs, so no middleware can; `rewardroute
serve` passes this class as uvicorn's `http` protocol. It extends whichever implementation
uvicorn would pick (httptools when installed, else h11).
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .errors import error_body

SPEC = "rewardroute.serve.protocol:JSONErrorProtocol"  # uvicorn's `http=` takes an import string


class JSONErrorProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def send_400_response(self, msg: str) -> None:
        body = json.dumps(error_body(f"malformed HTTP request: {msg}", type="invalid_request_error",
                                     code="invalid_http_request")).encode()
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        self.transport.close()
