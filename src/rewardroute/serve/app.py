"""The FastAPI application: `create_app(config)`, its endpoints and its OpenAPI spec.

Models load once, when the app starts (lifespan), and warm up with one forward pass so the
first request pays no lazy initialisation (`serve.state`). Shutting down (SIGTERM via uvicorn,
after in-flight requests finish) stops the batchers and closes the backend connection pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from .auth import key_checker
from .config import ServeConfig
from .errors import APIError, install_error_handlers
from .logs import install_log_redaction
from .metrics import CONTENT_TYPE, ServeMetrics
from .middleware import BodyGuardMiddleware, MetricsMiddleware, RequestContextMiddleware
from .openrlhf import GetRewardRequest, GetRewardResponse, default_model, rollout_pairs
from .rewards import handle_rewards, reward_service, score_pairs
from .schemas import (ChatCompletionRequest, ErrorResponse, HealthReport, Liveness, ModelCard, ModelList,
                      RewardsRequest, RewardsResponse)
from .state import LoadedModels, ServeState, load_models

CONFIG_ENV = "REWARDROUTE_SERVE_CONFIG"  # how `rewardroute serve` hands the config path to workers


ERRORS = {400: {"model": ErrorResponse, "description": "Malformed request (the error names the field)"},
          401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
          404: {"model": ErrorResponse, "description": "Unknown model"},
          413: {"model": ErrorResponse, "description": "Request body too large"}}
BACKEND_ERRORS = {502: {"model": ErrorResponse, "description": "Every backend tried failed"},
                  503: {"model": ErrorResponse, "description": "No backend available (circuit breakers open)"},
                  504: {"model": ErrorResponse, "description": "Every backend tried timed out"}}


def create_app(config: ServeConfig, *, models: LoadedModels | None = None,
               transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The app for `config`. `models` skips loading (tests share them); `transport` replaces
    the network to the backends (tests pass a mock)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = models if models is not None else await asyncio.to_thread(load_models, config)
        state = ServeState(config, loaded, transport, metrics)
        await state.start()
        app.state.serve = state
        try:
            yield
        finally:
            await state.close()

    install_log_redaction()
    keys = config.api_keys()
    # With keys configured the interactive docs need one too (added below); the spec stays open.
    app = FastAPI(title="rewardroute serve", version="1", lifespan=lifespan,
                  docs_url=None if keys else "/docs", redoc_url=None if keys else "/redoc",
                  description="An OpenAI-compatible routing proxy over several LLM backends, and a reward "
                              "scoring API for RLHF loops. Errors are OpenAI-style `{\"error\": {...}}` objects.")
    install_error_handlers(app)
    metrics = ServeMetrics()
    auth = [Depends(key_checker(keys))]
    if keys:
        _protected_docs(app, auth)

    def state_of(request: Request) -> ServeState:
        return request.app.state.serve

    @app.post("/v1/chat/completions", dependencies=auth, responses={**ERRORS, **BACKEND_ERRORS, 200: {
        "description": "The backend's chat completion (JSON, or SSE when `stream` is true), with `model` set "
                       "to the backend that answered; headers x-rewardroute-model, -route, -policy, -probs.",
        "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}}}})
    async def chat_completions(req: ChatCompletionRequest, request: Request) -> Response:
        """Route the conversation (`model: rewardroute[:policy]`) or send it to the named backend."""
        state = state_of(request)
        if state.proxy is None:
            raise APIError(404, f"model '{req.model}' does not exist: no chat backends are configured",
                           param="model", code="model_not_found")
        body = json.loads(await request.body())  # the client's own JSON, forwarded as sent
        conversation = request.headers.get(config.stickiness.header) or None
        decision = await state.proxy.decide(req, body["messages"], conversation)
        return await state.proxy.forward(body, req.stream, decision, conversation)

    @app.post("/v1/rewards", dependencies=auth, response_model=RewardsResponse,
              responses={**ERRORS, 503: {"model": ErrorResponse, "description": "Shutting down"}})
    async def rewards(req: RewardsRequest, request: Request) -> RewardsResponse:
        """Score (prompt, response) pairs; concurrent calls share one forward pass."""
        state = state_of(request)
        return await handle_rewards(req, state.rewards, config.rewards, state.metrics)

    @app.post("/get_reward", dependencies=auth, response_model=GetRewardResponse,
              responses={**ERRORS}, tags=["rewards"])
    async def get_reward(req: GetRewardRequest, request: Request, model: str | None = None) -> GetRewardResponse:
        """OpenRLHF's remote reward model (`--remote_rm_url http://HOST:PORT/get_reward`): the
        response is what follows each prompt in its query. `?model=NAME` picks the reward model."""
        state = state_of(request)
        name = model or default_model(list(state.rewards), config.rewards.openrlhf_model)
        service = reward_service(state.rewards, name, param="model")
        scored = await score_pairs(service, rollout_pairs(req), config.rewards, state.metrics, field="query")
        return GetRewardResponse(rewards=[s.reward for s in scored])

    @app.get("/v1/models", dependencies=auth, response_model=ModelList, responses={401: ERRORS[401]})
    async def list_models(request: Request) -> ModelList:
        """The routing names, the backends and the reward models."""
        state = state_of(request)
        cards = []
        if state.router is not None:
            name, lam = config.router.name, config.router.lam
            info = {"backends": state.router.backends, "trained_router": state.router.loaded is not None}
            for model_id, policy in ((name, config.router.policy), (f"{name}:argmax", "argmax"),
                                     (f"{name}:cost_aware", "cost_aware")):
                details = {**info, "policy": policy, **({"lam": lam} if policy == "cost_aware" else {})}
                cards.append(ModelCard(id=model_id, created=state.started, kind="router", details=details))
        cards += [ModelCard(id=b.name, created=state.started, kind="backend",
                            details={"model": b.model, "cost_per_1k_tokens": b.cost_per_1k_tokens})
                  for b in config.backends]
        cards += [ModelCard(id=n, created=state.started, kind="reward_model",
                            details={"arch": s.model.arch, "domains": s.domains}) for n, s in state.rewards.items()]
        return ModelList(data=cards)

    @app.get("/health", response_model=HealthReport, responses={503: {"model": HealthReport,
                                                                       "description": "Not ready"}})
    async def health(request: Request) -> JSONResponse:
        """Liveness and readiness, with each backend's reachability and breaker state."""
        state = state_of(request)
        backends = await state.prober.probe_all() if state.prober is not None else {}
        reachable = sum(b.reachable for b in backends.values())
        ready = not backends or reachable > 0
        status = "ok" if reachable == len(backends) else "degraded" if ready else "unavailable"
        router = {"loaded": state.router is not None and state.router.loaded is not None,
                  "backends": state.router.backends if state.router else []}
        report = HealthReport(status=status, live=True, ready=ready, router=router,
                              reward_models=sorted(state.rewards), backends=backends)
        return JSONResponse(report.model_dump(), status_code=200 if ready else 503)

    @app.get("/health/live", response_model=Liveness)
    async def live() -> Liveness:
        """Liveness only: the process answers (no backend probes)."""
        return Liveness()

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {}}, "description": "Prometheus text format"}})
    async def prometheus() -> Response:
        """Prometheus metrics."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.openapi = lambda: _openapi_without_422(app)

    # Middleware is added last-outermost: metrics see every answer, including 413s and 500s;
    # every answer carries a request id.
    endpoints = [r.path for r in app.routes if hasattr(r, "path")]
    app.add_middleware(BodyGuardMiddleware, max_bytes=config.limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, endpoints=endpoints)
    app.add_middleware(RequestContextMiddleware)
    return app


def _protected_docs(app: FastAPI, auth: list) -> None:
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False, dependencies=auth)
    async def redoc() -> Response:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents validation errors as 422; this server answers them with 400 and an
    OpenAI-style error (documented per endpoint), so the spec says what really happens."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                op.get("responses", {}).pop("422", None)
        schemas = spec.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = spec
    return app.openapi_schema


def app_from_env() -> FastAPI:
    """uvicorn factory for `rewardroute serve` (every worker calls it)."""
    from .config import load_serve_config

    config = load_serve_config(os.environ[CONFIG_ENV])
    if config.server.torch_threads:
        import torch

        torch.set_num_threads(config.server.torch_threads)
    return create_app(config)
