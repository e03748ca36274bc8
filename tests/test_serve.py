"""`grm serve`: scoring over HTTP, batching of concurrent requests, and 4xx for bad requests without going down."""

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


def test_grm_serve_on_the_tiny_model_over_a_socket(tmp_path):
    from tests.tiny_lm import build_tiny_lm

    model = build_tiny_lm(tmp_path / "lm", max_positions=1024)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--model", str(model), "--device", "cpu", "--max-new-tokens", "8",
         "--port", str(port), "--max-body-bytes", "4000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"grm serve exited: {proc.stdout.read().decode()[-2000:]}")
            time.sleep(0.5)
        else:
            pytest.fail("grm serve did not come up")
        assert httpx.post(f"{url}/v1/score", content=b"x" * 5000).status_code == 413
        assert httpx.post(f"{url}/v1/score", content=b"{oops").status_code == 400
        r = httpx.post(f"{url}/v1/score", json=OK, timeout=60)
        assert r.status_code == 200
        [res] = r.json()["results"]
        assert res["n_used"] + res["n_failed"] == 1  # greedy: one sample, parsed or counted as failed
    finally:
        stop_process(proc, 10)
