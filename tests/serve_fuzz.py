"""Fuzzing `grm serve` in-process (the ASGI app, no socket) with a scripted backend: requests generated from its
OpenAPI schema by schemathesis (valid and schema-violating), and raw bodies from hypothesis (bytes, any JSON,
near-valid requests with wrong types, deep nesting). Every answer must be a 2xx or 4xx with a JSON body, never a
5xx, and the app must still serve a valid request afterwards.

Used by tests/test_serve_fuzz.py (a few hundred requests in CI) and bench/serve_fuzz.py (thousands).
"""

from __future__ import annotations

import json
import re
from collections import Counter

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from flows.serving import Limits, create_app
from grm.generation.base import Backend, Result, Sample
from grm.reward import GRMReward

SHOWN = re.compile(r"^\[Start of Response \d+\]$", re.M)
VALID = {"items": [{"query": "pick", "responses": ["a", "b"]}]}
FUZZ_LIMITS = Limits(max_body_bytes=20_000, max_items=8, max_responses=6, max_chars=2_000, batch_window_s=0.0)


class AnyTextJudge(Backend):
    """A scripted GRM for any prompt: principles, a critique and a score of 5 for each response it is shown."""

    name = "any-text"

    def generate(self, requests, params):
        out = []
        for req in requests:
            n = len(SHOWN.findall(req.messages[-1]["content"])) or 1
            text = "Specific Criteria: any.\nAnalysis: fine.\nScores: \\boxed{" + ", ".join(["5"] * n) + "}"
            out.append(Result(req.prompt_id, [Sample(text, req.seed + j) for j in range(req.n)]))
        return out


def fuzz_app(limits: Limits = FUZZ_LIMITS, token: str | None = None):
    return create_app(GRMReward(AnyTextJudge(), k=2), limits, token=token)


class ServerError(AssertionError):
    pass


def _check(response, what) -> int:
    status = response.status_code
    if status >= 500:
        raise ServerError(f"{status} for {what!r:.300}: {response.text[:300]}")
    json.loads(response.content)  # every answer, errors included, is JSON
    return status


def _settings(examples: int, rng_seed: int):
    return settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck)), seed(rng_seed)


def schema_campaign(app, examples: int, rng_seed: int = 0) -> Counter:
    """Requests from the OpenAPI schema, half fitting it and half violating it: status -> count."""
    import schemathesis
    from schemathesis.generation import GenerationMode
    from schemathesis.python import asgi

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = schema["/v1/score"]["POST"]
    counts: Counter = Counter()
    with asgi.get_client(app) as client:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            conf, sd = _settings(examples // 2, rng_seed)

            @conf
            @sd
            @given(case=operation.as_strategy(generation_mode=mode))
            def one(case):
                counts[_check(case.call(session=client), case.body)] += 1

            one()
        counts["after"] = _check(client.post("http://testserver/v1/score", json=VALID), "a valid request")
    return counts


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
ANY_JSON = st.recursive(JSON_SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                        max_leaves=20)
FIELDS = st.sampled_from(["query", "conversation", "responses", "role", "content", "items", ""])
NEAR_VALID = st.fixed_dictionaries({"items": st.lists(
    st.dictionaries(FIELDS, ANY_JSON | st.lists(st.text(max_size=30), max_size=7)
                    | st.lists(st.fixed_dictionaries({"role": ANY_JSON, "content": ANY_JSON}), max_size=3), max_size=4),
    max_size=10)})
BODIES = (
    st.binary(max_size=3000)
    | ANY_JSON.map(lambda v: json.dumps(v).encode())
    | NEAR_VALID.map(lambda v: json.dumps(v).encode())
    | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)  # nesting deeper than the parser's recursion limit
    | st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
HEADERS = st.dictionaries(st.sampled_from(["content-type", "authorization", "accept", "x-forwarded-for"]),
                          st.from_regex(r"\A[!-~]([ -~]{0,38}[!-~])?\Z"), max_size=3)  # what a client can send


def raw_campaign(app, examples: int, rng_seed: int = 0) -> Counter:
    """Raw bodies and headers that no schema would produce: status -> count."""
    from schemathesis.python import asgi

    counts: Counter = Counter()
    with asgi.get_client(app) as client:
        conf, sd = _settings(examples, rng_seed)

        @conf
        @sd
        @given(body=BODIES, headers=HEADERS)
        def one(body, headers):
            counts[_check(client.post("http://testserver/v1/score", data=body, headers=headers), body)] += 1

        one()
        counts["after"] = _check(client.post("http://testserver/v1/score", json=VALID), "a valid request")
    return counts
