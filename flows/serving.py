"""`grm serve`: an HTTP scoring endpoint over a ``GRMReward``.

Requests that arrive within a short window are merged into one batch for the backend (one ``score`` call,
so their prompts share the backend's batching). Limits are checked before any work: the body size (413),
well-formed JSON (400), and the request shape, item count, responses per item and characters (422). A bad
request gets its 4xx and the server keeps serving. Under overload a request whose items would pass the queue
bound (``max_queue_items`` waiting or being scored) gets 503 with Retry-After, so memory stays bounded.

With a ``token`` (required by `grm serve` on any address but loopback) every request needs
``Authorization: Bearer <token>``, compared in constant time; 401 otherwise. Logs name the outcome, sizes and
times of requests, never their bodies nor the token.

    POST /v1/score  {"items": [{"conversation": [{"role": "user", "content": "..."}] | "query": "...",
                                "responses": ["...", "..."]}]}
      -> {"method": "voting@8", "results": [{"scores": [...], "mean_scores": [...], "best": 0, ...}]}
    GET /health
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from grm.reward import GRMReward, JudgeInputError

log = logging.getLogger("grm.serve")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_items: int = 64  # per request
    max_responses: int = 16  # per item
    max_chars: int = 50_000  # per message or response
    batch_window_s: float = 0.01  # how long the batcher waits for more requests
    max_batch_items: int = 256  # items per backend call
    max_queue_items: int = 1024  # items waiting or being scored; past it a request gets 503 (retry later)


# The request body as documented in the OpenAPI schema (what clients and the fuzzer read). The endpoint parses
# the raw body itself (parse_request), so that limits are checked before anything is built and every bad request
# gets one message saying what is wrong.
class Message(BaseModel):
    role: str
    content: str


class ScoreItem(BaseModel):
    conversation: list[Message] | None = Field(default=None, min_length=1, description="or query")
    query: str | None = Field(default=None, description="a single user turn, when there is no conversation")
    responses: list[str] = Field(min_length=1)


class ScoreRequest(BaseModel):
    items: list[ScoreItem] = Field(min_length=1)


def inline_schema(model: type[BaseModel]) -> dict:
    """The model's JSON schema with its ``$defs`` written in place (OpenAPI resolves ``$ref`` from its own root)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            return walk(defs[node["$ref"].rsplit("/", 1)[1]]) if "$ref" in node else {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return walk(schema)


class RequestError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_request(body: bytes, limits: Limits) -> list[tuple[list[dict], list[str]]]:
    """The (conversation, responses) pairs of a request body, or a RequestError naming what is wrong."""
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"request body is {len(body)} bytes; the limit is {limits.max_body_bytes}")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RequestError(400, f"the body is not valid JSON: {e}") from None
    except RecursionError:
        raise RequestError(400, "the body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise RequestError(422, 'expected an object {"items": [...]}')
    items = data["items"]
    if not items:
        raise RequestError(422, "items is empty")
    if len(items) > limits.max_items:
        raise RequestError(413, f"{len(items)} items; the limit is {limits.max_items} per request")
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise RequestError(422, f"items[{i}] is not an object")
        responses = it.get("responses")
        if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
            raise RequestError(422, f"items[{i}].responses must be a non-empty list of strings")
        if len(responses) > limits.max_responses:
            raise RequestError(413, f"items[{i}] has {len(responses)} responses; the limit is {limits.max_responses}")
        if "conversation" in it:
            conv = it["conversation"]
            if not isinstance(conv, list) or not conv or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in conv
            ):
                raise RequestError(422, f"items[{i}].conversation must be a non-empty list of {{role, content}} strings")
            conv = [{"role": m["role"], "content": m["content"]} for m in conv]
        elif isinstance(it.get("query"), str):
            conv = [{"role": "user", "content": it["query"]}]
        else:
            raise RequestError(422, f"items[{i}] needs a conversation or a query")
        longest = max([len(m["content"]) for m in conv] + [len(r) for r in responses])
        if longest > limits.max_chars:
            raise RequestError(413, f"items[{i}] has a text of {longest} characters; the limit is {limits.max_chars}")
        out.append((conv, responses))
    return out


class Batcher:
    """Merges concurrent requests into one ``reward.score`` call; the backend runs in a worker thread."""

    def __init__(self, reward: GRMReward, limits: Limits):
        self.reward, self.limits = reward, limits
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.calls = 0  # backend calls made (batches), for inspection
        self.pending_items = 0  # accepted and not yet answered (the queue bound)
        self._lock = threading.Lock()

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def full(self, n_items: int) -> bool:
        return self.pending_items + n_items > self.limits.max_queue_items

    async def submit(self, pairs: list[tuple[list[dict], list[str]]]) -> list[dict]:
        if self.queue is None:
            await self.start()
        fut = asyncio.get_running_loop().create_future()
        self.pending_items += len(pairs)
        try:
            await self.queue.put((pairs, fut))
            return await fut
        finally:
            self.pending_items -= len(pairs)

    async def _run(self) -> None:
        while True:
            first = await self.queue.get()
            pending = [first]
            size = len(first[0])
            deadline = asyncio.get_running_loop().time() + self.limits.batch_window_s
            while size < self.limits.max_batch_items:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                pending.append(nxt)
                size += len(nxt[0])
            batch = [p for pairs, _ in pending for p in pairs]
            try:
                results = await asyncio.to_thread(self._score, batch)
            except Exception as e:  # the backend failed: every waiting request gets the error, the loop goes on
                log.error("scoring a batch of %d items failed: %s", len(batch), type(e).__name__)  # no text: it may quote a prompt
                for _, fut in pending:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            pos = 0
            for pairs, fut in pending:
                if not fut.done():
                    fut.set_result(results[pos : pos + len(pairs)])
                pos += len(pairs)

    def _score(self, batch):
        with self._lock:
            self.calls += 1
            out = []
            for j in self.reward.score(batch):
                d = j.to_dict()
                for s in d["samples"]:
                    s.pop("text")
                out.append(d)
            return out


def create_app(reward: GRMReward, limits: Limits = Limits(), *, token: str | None = None) -> FastAPI:
    """The scoring app; with ``token``, every request needs ``Authorization: Bearer <token>``."""
    batcher = Batcher(reward, limits)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="grm serve", lifespan=lifespan)
    app.state.batcher = batcher
    if token is not None:
        _require_bearer(app, token)

    @app.get("/health")
    async def health():
        return {"status": "ok", "method": reward.tag}

    @app.post("/v1/score", openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": inline_schema(ScoreRequest)}}}})
    async def score(request: Request):
        started = time.perf_counter()
        response = await _score(request)
        log.info("POST /v1/score %d in %.0f ms", response.status_code, 1000 * (time.perf_counter() - started))
        return response

    async def _score(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return JSONResponse({"error": f"request body is {declared} bytes; the limit is {limits.max_body_bytes}"}, 413)
        body = b""
        async for chunk in request.stream():  # stop reading as soon as the limit is passed
            body += chunk
            if len(body) > limits.max_body_bytes:
                return JSONResponse({"error": f"request body exceeds {limits.max_body_bytes} bytes"}, 413)
        try:
            pairs = parse_request(body, limits)
            if batcher.full(len(pairs)):
                return JSONResponse({"error": f"server busy: {batcher.pending_items} items queued (limit "
                                              f"{limits.max_queue_items}); retry later"}, 503, headers={"Retry-After": "1"})
            results = await batcher.submit(pairs)
        except RequestError as e:
            return JSONResponse({"error": str(e)}, e.status)
        except JudgeInputError as e:
            return JSONResponse({"error": str(e)}, 422)
        except Exception as e:  # the backend failed: a 503 for this request, the server stays up
            return JSONResponse({"error": f"scoring failed: {type(e).__name__}: {e}"}, 503)
        return JSONResponse({"method": reward.tag, "results": results})

    return app


def _require_bearer(app: FastAPI, token: str) -> None:
    """Every request (the docs and schema too) needs the bearer token; compared in constant time, never logged."""
    expected = token.encode()

    @app.middleware("http")
    async def bearer(request: Request, call_next):
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            return JSONResponse({"error": "missing or wrong bearer token"}, 401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)
