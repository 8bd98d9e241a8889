"""The FastAPI app: auth, size limits, OpenAI-style errors, and the routes. One engine, one worker thread."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from tuneforge.api import chat
from tuneforge.api.protocol import (
    ChatCompletionRequest,
    ModelCard,
    ModelList,
    Score,
    ScoreRequest,
    ScoreResponse,
    Usage,
    error_body,
)
from tuneforge.api.worker import EngineWorker, Overloaded
from tuneforge.chat.engine import to_conversation
from tuneforge.errors import UserError

logger = logging.getLogger("tuneforge.api")


@dataclass
class ServerSettings:
    api_key: str | None = None  # clients must send `Authorization: Bearer <key>` when set
    model_name: str = "tuneforge"  # the id /v1/models lists and responses carry (any requested model id is served)
    max_body_bytes: int = 20_000_000  # 413 above this (pictures come base64-encoded in the body)
    max_messages: int = 256  # messages per request; also inputs per /v1/score request
    max_tokens: int = 4096  # largest max_tokens a client may ask for
    max_n: int = 8  # choices per request
    max_pending: int = 64  # requests queued or running; more get 503


def model_name_for(cfg) -> str:
    """The served model's id: the last adapter's folder name, else the model's."""
    path = (cfg.model.adapter_name_or_path or "").split(",")[-1].strip() or cfg.model.model_name_or_path or "model"
    return Path(path.rstrip("/")).name or "model"


class BodyLimit:
    """ASGI middleware: read the whole request body, answer 413 when it is larger than `max_bytes`."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = JSONResponse(
            error_body(f"request body is larger than {self.max_bytes} bytes", code="request_too_large"), 413
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return await too_large(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await too_large(scope, receive, send)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class _EventStream(StreamingResponse):
    """A streamed response that always closes its body iterator, so a client that leaves stops generation."""

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()


def create_app(engine, settings: ServerSettings | None = None) -> FastAPI:
    """The app serving `engine` (a HuggingFaceEngine, a RewardEngine, or anything with the same methods)."""
    settings = settings or ServerSettings()
    worker = EngineWorker(engine, settings.max_pending)
    app = FastAPI(title="TuneForge API", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.worker, app.state.settings = worker, settings
    app.router.add_event_handler("shutdown", worker.close)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    def bad(message: str, param: str | None = None):
        return HTTPException(400, error_body(message, param=param))

    @app.exception_handler(HTTPException)
    async def _http_error(request, exc: HTTPException):
        detail = exc.detail if isinstance(exc.detail, dict) else error_body(str(exc.detail))
        return JSONResponse(detail, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        text = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return JSONResponse(error_body(text), 400)

    @app.exception_handler(UserError)
    async def _user_error(request, exc: UserError):
        return JSONResponse(error_body(exc.one_line(), param=exc.where), 400)

    @app.exception_handler(Overloaded)
    async def _overloaded(request, exc: Overloaded):
        return JSONResponse(error_body(f"server busy: {exc}", "server_error", code="overloaded"), 503)

    @app.exception_handler(Exception)
    async def _crash(request, exc: Exception):
        logger.exception("request failed")
        return JSONResponse(error_body(f"internal error: {exc}", "server_error"), 500)

    async def check_key(request: Request):
        if not settings.api_key:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode()):
            raise HTTPException(
                401, error_body("invalid or missing API key", code="invalid_api_key"), {"WWW-Authenticate": "Bearer"}
            )

    @app.get("/health")
    async def health(reset_peak: bool = False):
        """`peak_pending`: the most requests queued or running at once since the last `?reset_peak=true` (which
        returns the peak it ends): a load test's true concurrency, which sampling `pending` can miss."""
        peak = worker.reset_peak() if reset_peak else worker.peak_pending
        return {"status": "ok", "pending": worker.pending, "peak_pending": peak}

    @app.get("/v1/models", dependencies=[Depends(check_key)])
    async def models():
        return ModelList(data=[ModelCard(id=settings.model_name)])

    @app.post("/v1/chat/completions", dependencies=[Depends(check_key)])
    async def chat_completions(req: ChatCompletionRequest, request: Request):
        if not (hasattr(engine, "stream_parts") or hasattr(engine, "stream")):
            raise bad("this server serves a reward model: use POST /v1/score")
        if len(req.messages) > settings.max_messages:
            raise bad(f"{len(req.messages)} messages, at most {settings.max_messages} are accepted", "messages")
        if req.n > settings.max_n:
            raise bad(f"n is {req.n}, at most {settings.max_n} is accepted", "n")
        if req.new_tokens is not None and req.new_tokens > settings.max_tokens:
            raise bad(f"max_tokens is {req.new_tokens}, at most {settings.max_tokens} is accepted", "max_tokens")
        messages = [m.to_engine() for m in req.messages]
        to_conversation(messages)  # roles and order: a 400 before the request waits in the queue
        events = worker.iterate(lambda cancel: chat.produce(engine, req, messages, cancel))
        if not req.stream:
            result = await chat.complete(events, req, settings.model_name, engine.tool_format, request)
            return result.model_dump(exclude_none=True) if result else JSONResponse({}, 499)
        try:
            first = await anext(events)  # errors in the prompt become a 4xx before the stream starts
        except BaseException:
            await events.aclose()
            raise
        body = chat.stream(events, first, req, settings.model_name, engine.tool_format)
        return _EventStream(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/score", dependencies=[Depends(check_key)])
    async def score(req: ScoreRequest):
        if not hasattr(engine, "score"):
            raise bad("this server serves a chat model: /v1/score needs a reward model (stage: rm)")
        try:
            items = req.items()
        except ValueError as exc:
            raise bad(str(exc), "input") from exc
        if len(items) > settings.max_messages:
            raise bad(f"{len(items)} inputs, at most {settings.max_messages} are accepted", "input")
        results = await worker.run(lambda: engine.score(items))
        tokens = sum(n for _, n in results)
        data = [Score(index=i, score=s) for i, (s, _) in enumerate(results)]
        usage = Usage(prompt_tokens=tokens, total_tokens=tokens)
        return ScoreResponse(model=settings.model_name, data=data, usage=usage)

    return app
