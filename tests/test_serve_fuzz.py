"""Fuzz the API from its own OpenAPI spec (schemathesis): no generated request, valid or not,
may get a 5xx that is not a documented backend failure, and every answer must match the spec.
Bounded: a fixed number of examples per operation, in-process (no sockets)."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (content_type_conformance, not_a_server_error,  # noqa: E402
                                 response_schema_conformance, status_code_conformance)

from rewardroute.serve.app import create_app  # noqa: E402
from rewardroute.serve.config import parse_serve_config  # noqa: E402
from support.fake_backends import FakeBackends, url_of  # noqa: E402
from support.serve_models import serve_models  # noqa: E402

EXAMPLES = 40  # per operation; the whole file runs in well under a minute
# 502/503/504 are documented backend failures (a backend is down on purpose); any other 5xx,
# or one on an endpoint that does not talk to backends, is a bug.
BACKEND_FAILURES = {502, 503, 504}
# Random model names would stop almost every request at the 404; most cases get a real name so
# the fuzzer reaches routing, forwarding and scoring.
REAL_MODELS = {"/v1/chat/completions": ["rewardroute", "rewardroute:cost_aware:0.5", "alpha", "beta"],
               "/v1/rewards": ["rm"]}


def fuzz_config(router_dir: str = "router", reward_dir: str = "rm"):
    # One backend answers, one is down (fallback and breaker paths get fuzzed too).
    return parse_serve_config({
        "backends": [{"name": "alpha", "base_url": url_of("alpha"), "model": "a", "max_retries": 0},
                     {"name": "beta", "base_url": url_of("beta"), "model": "b", "max_retries": 0}],
        "router": {"path": router_dir},
        "rewards": {"models": [{"name": "rm", "path": reward_dir}], "max_inputs": 4, "batch_window_ms": 0},
        "resilience": {"retry_base_s": 0, "retry_cap_s": 0},
        "limits": {"max_body_bytes": 16384},
        "auth": {"api_keys_env": None},
    })


# The spec does not depend on the models, so it is read at collection without loading any.
schema = schemathesis.openapi.from_dict(create_app(fuzz_config()).openapi())


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    models = serve_models(tmp_path_factory)
    cfg = fuzz_config(str(models.router_dir), str(models.reward_dir))
    return create_app(cfg, models=models.loaded, transport=FakeBackends(modes={"beta": "down"}))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_never_answers_a_client_with_a_server_error(case, fuzz_app):
    names = REAL_MODELS.get(case.path)
    if names and isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        pick = len(repr(case.body)) % (len(names) + 1)  # deterministic; 1 in n+1 keeps its name
        if pick < len(names):
            case.body["model"] = names[pick]
    response = case.call(app=fuzz_app)
    if case.path == "/v1/chat/completions" and response.status_code in BACKEND_FAILURES:
        assert response.json()["error"]["code"].startswith("backend_")
        return
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                              content_type_conformance, response_schema_conformance])
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
