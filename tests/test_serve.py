"""`grm serve`: scoring over HTTP, batching of concurrent requests, 4xx for bad requests without going down, 503
past the queue bound, a bearer token off loopback, and logs without request bodies or the token. (Fuzzing:
tests/test_serve_fuzz.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from grm.generation.server import stop_process
from grm.reward import GRMReward
from flows.serving import Limits, create_app
from tests.test_reward import DigitJudge

pytestmark = pytest.mark.reliability  # the reliability campaign's CI subset (RELIABILITY.md)

OK = {"items": [{"query": "pick", "responses": ["a 3", "b 8"]}]}


def _client(limits=Limits(), backend=None):
    from fastapi.testclient import TestClient

    backend = backend or DigitJudge()
    return TestClient(create_app(GRMReward(backend, k=2), limits)), backend


def test_scores_a_request():
    client, _ = _client()
    with client:
        r = client.post("/v1/score", json={"items": [OK["items"][0], {"conversation": [{"role": "user", "content": "q"}], "responses": ["x 5"]}]})
        assert r.status_code == 200
        body = r.json()
        assert body["method"] == "voting@2"
        assert [x["scores"] for x in body["results"]] == [[6, 16], [10]]
        assert body["results"][0]["best"] == 1 and "text" not in body["results"][0]["samples"][0]
        assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"x" * 2000, 413, "limit"),
        (b"{not json", 400, "not valid JSON"),
        (json.dumps({"items": "nope"}).encode(), 422, '"items"'),
        (json.dumps({"items": []}).encode(), 422, "empty"),
        (json.dumps({"items": [{"query": "q", "responses": []}]}).encode(), 422, "responses"),
        (json.dumps({"items": [{"responses": ["a"]}]}).encode(), 422, "conversation or a query"),
        (json.dumps({"items": [{"query": "q", "responses": ["a", 1]}]}).encode(), 422, "strings"),
        (json.dumps({"items": [{"conversation": [{"role": "user"}], "responses": ["a"]}]}).encode(), 422, "conversation"),
        (json.dumps({"items": [{"query": "q", "responses": ["a"]}] * 5}).encode(), 413, "5 items"),
        (json.dumps({"items": [{"query": "q", "responses": ["a"] * 4}]}).encode(), 413, "4 responses"),
        (json.dumps({"items": [{"query": "q" * 300, "responses": ["a"]}]}).encode(), 413, "300 characters"),
    ],
)
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(body, status, message):
    client, _ = _client(Limits(max_body_bytes=1500, max_items=4, max_responses=3, max_chars=200))
    with client:
        r = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status and message in r.json()["error"]
        assert client.post("/v1/score", json=OK).status_code == 200


def test_backend_failure_is_a_503_and_the_next_request_works():
    class Flaky(DigitJudge):
        def generate(self, requests, params):
            if not self.calls:
                self.calls.append("failed")
                raise RuntimeError("engine died")
            return super().generate(requests, params)

    client, _ = _client(backend=Flaky())
    with client:
        r = client.post("/v1/score", json=OK)
        assert r.status_code == 503 and "engine died" in r.json()["error"]
        assert client.post("/v1/score", json=OK).status_code == 200


def test_concurrent_requests_share_one_backend_call():
    backend = DigitJudge()
    app = create_app(GRMReward(backend, k=1), Limits(batch_window_s=0.3))

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            rs = await asyncio.gather(*[
                c.post("/v1/score", json={"items": [{"query": f"q{i}", "responses": [f"a {i + 1}", "b 1"]}]}) for i in range(5)
            ])
        return rs

    rs = asyncio.run(go())
    assert [r.json()["results"][0]["scores"] for r in rs] == [[i + 1, 1] for i in range(5)]  # each gets its own answer
    assert len(backend.calls) == 1 and len(backend.calls[0][0]) == 5
    assert app.state.batcher.calls == 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CANARY = "canary-7f3a9c-do-not-log"
TOKEN = "tok-5b2e81c4d9"


def test_grm_serve_on_the_tiny_model_over_a_socket(tmp_path):
    """With a token in the environment every request needs it; uvicorn's and our logs hold neither the token nor
    anything from a request body."""
    from tests.tiny_lm import build_tiny_lm

    model = build_tiny_lm(tmp_path / "lm", max_positions=1024)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "GRM_SERVE_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--model", str(model), "--device", "cpu", "--max-new-tokens", "8",
         "--port", str(port), "--max-body-bytes", "4000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/health", timeout=1, headers=auth).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"grm serve exited: {proc.stdout.read().decode()[-2000:]}")
            time.sleep(0.5)
        else:
            pytest.fail("grm serve did not come up")
        assert httpx.post(f"{url}/v1/score", json=OK).status_code == 401
        assert httpx.post(f"{url}/v1/score", json=OK, headers={"Authorization": f"Bearer {CANARY}"}).status_code == 401
        assert httpx.post(f"{url}/v1/score", content=b"x" * 5000, headers=auth).status_code == 413
        assert httpx.post(f"{url}/v1/score", content=b"{oops " + CANARY.encode(), headers=auth).status_code == 400
        body = {"items": [{"query": f"pick {CANARY}", "responses": [f"a {CANARY}", "b 8"]}]}
        r = httpx.post(f"{url}/v1/score", json=body, headers=auth, timeout=60)
        assert r.status_code == 200
        [res] = r.json()["results"]
        assert res["n_used"] + res["n_failed"] == 1  # greedy: one sample, parsed or counted as failed
    finally:
        stop_process(proc, 10)
    logs = proc.stdout.read().decode()
    assert "POST /v1/score" in logs  # it does log requests: their outcome, not their content
    assert CANARY not in logs and TOKEN not in logs


def test_grm_serve_off_loopback_needs_a_token():
    env = {k: v for k, v in os.environ.items() if k != "GRM_SERVE_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "serve", "--model", "/nonexistent", "--host", "0.0.0.0"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--host 0.0.0.0 is reachable from other machines: set a bearer token in the environment variable " \
           "GRM_SERVE_TOKEN" in proc.stderr


def test_a_token_is_required_on_every_route_and_compared_in_constant_time(monkeypatch):
    import hmac

    from fastapi.testclient import TestClient

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    client = TestClient(create_app(GRMReward(DigitJudge(), k=1), token=TOKEN))
    with client:
        for headers in ({}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer "}):
            for method, path in (("post", "/v1/score"), ("get", "/health"), ("get", "/openapi.json"), ("get", "/docs")):
                r = getattr(client, method)(path, headers=headers, **({"json": OK} if method == "post" else {}))
                assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (headers, path)
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/v1/score", json=OK, headers=good).status_code == 200
        assert client.get("/health", headers=good).status_code == 200
    assert (TOKEN.encode(), TOKEN.encode()) in compared  # the comparison went through hmac.compare_digest


def test_past_the_queue_bound_a_request_gets_503_and_memory_stays_bounded():
    import threading

    release = threading.Event()

    class Slow(DigitJudge):
        def generate(self, requests, params):
            release.wait(30)  # the backend is busy: requests pile up
            return super().generate(requests, params)

    app = create_app(GRMReward(Slow(), k=1), Limits(max_queue_items=4, batch_window_s=0.0))
    three = {"items": [{"query": f"q{i}", "responses": ["a 1", "b 2"]} for i in range(3)]}
    two = {"items": [{"query": f"q{i}", "responses": ["a 1", "b 2"]} for i in range(2)]}

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
            first = asyncio.create_task(c.post("/v1/score", json=three))
            while app.state.batcher.pending_items < 3:
                await asyncio.sleep(0.01)
            busy = await c.post("/v1/score", json=two)  # 3 queued + 2 > 4
            release.set()
            done = await first
            again = await c.post("/v1/score", json=two)
        return busy, done, again

    busy, done, again = asyncio.run(go())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert "server busy: 3 items queued (limit 4)" in busy.json()["error"]
    assert done.status_code == 200 and again.status_code == 200
    assert app.state.batcher.pending_items == 0


def test_request_bodies_never_reach_the_logs(caplog):
    class Quoting(DigitJudge):
        """A backend whose error quotes the prompt (as engines' errors may)."""

        def generate(self, requests, params):
            if any("FAIL" in r.messages[-1]["content"] for r in requests):
                raise RuntimeError(f"cannot tokenize {requests[0].messages[-1]['content']!r}")
            return super().generate(requests, params)

    from fastapi.testclient import TestClient

    caplog.set_level("DEBUG")
    client = TestClient(create_app(GRMReward(Quoting(), k=1), Limits(max_body_bytes=3000, max_chars=500), token=TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with client:
        bodies = [
            {"items": [{"query": f"pick {CANARY}", "responses": [f"a {CANARY} 3", "b 8"]}]},  # scored
            {"items": [{"query": f"FAIL {CANARY}", "responses": ["a 1", "b 2"]}]},  # the backend fails on it
            {"items": [{"query": CANARY * 40, "responses": ["a 1"]}]},  # over max_chars
            {"items": [{"query": CANARY, "responses": [CANARY, 7]}]},  # malformed
        ]
        statuses = [client.post("/v1/score", json=b, headers=auth).status_code for b in bodies]
        statuses.append(client.post("/v1/score", content=b"{" + CANARY.encode(), headers=auth).status_code)
        statuses.append(client.post("/v1/score", content=CANARY.encode() * 200, headers=auth).status_code)
        statuses.append(client.post("/v1/score", json=bodies[0], headers={"Authorization": f"Bearer {CANARY}"}).status_code)
    assert statuses == [200, 503, 413, 422, 400, 413, 401]
    assert "POST /v1/score 200" in caplog.text and "scoring a batch of 1 items failed: RuntimeError" in caplog.text
    assert CANARY not in caplog.text and TOKEN not in caplog.text
