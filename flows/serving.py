"""`grm serve`: an HTTP scoring endpoint over a ``GRMReward``.

Requests that arrive within a short window are merged into one batch for the backend (one ``score`` call,
so their prompts share the backend's batching). Limits are checked before any work: the body size (413),
well-formed JSON (400), and the request shape, item count, responses per item and characters (422). A bad
request gets its 4xx and the server keeps serving.

    POST /v1/score  {"items": [{"conversation": [{"role": "user", "content": "..."}] | "query": "...",
                                "responses": ["...", "..."]}]}
      -> {"method": "voting@8", "results": [{"scores": [...], "mean_scores": [...], "best": 0, ...}]}
    GET /health
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from grm.reward import GRMReward, JudgeInputError


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_items: int = 64  # per request
    max_responses: int = 16  # per item
    max_chars: int = 50_000  # per message or response
    batch_window_s: float = 0.01  # how long the batcher waits for more requests
    max_batch_items: int = 256  # items per backend call


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
        self._lock = threading.Lock()

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def submit(self, pairs: list[tuple[list[dict], list[str]]]) -> list[dict]:
        if self.queue is None:
            await self.start()
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((pairs, fut))
        return await fut

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


def create_app(reward: GRMReward, limits: Limits = Limits()) -> FastAPI:
    batcher = Batcher(reward, limits)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="grm serve", lifespan=lifespan)
    app.state.batcher = batcher

    @app.get("/health")
    async def health():
        return {"status": "ok", "method": reward.tag}

    @app.post("/v1/score")
    async def score(request: Request):
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
            results = await batcher.submit(pairs)
        except RequestError as e:
            return JSONResponse({"error": str(e)}, e.status)
        except JudgeInputError as e:
            return JSONResponse({"error": str(e)}, 422)
        except Exception as e:  # the backend failed: a 503 for this request, the server stays up
            return JSONResponse({"error": f"scoring failed: {type(e).__name__}: {e}"}, 503)
        return {"method": reward.tag, "results": results}

    return app
