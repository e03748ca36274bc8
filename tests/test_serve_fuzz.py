"""`grm serve` fuzzed in-process (tests/serve_fuzz.py): a few hundred requests from its OpenAPI schema and raw
bodies; no 5xx, every answer JSON, and a valid request still served after. The long campaign is
bench/serve_fuzz.py."""

from __future__ import annotations

import pytest

from tests.serve_fuzz import fuzz_app, raw_campaign, schema_campaign

pytestmark = pytest.mark.reliability  # the reliability campaign's CI subset (RELIABILITY.md)


def test_requests_from_the_openapi_schema_never_get_a_5xx():
    counts = schema_campaign(fuzz_app(), examples=200, rng_seed=19)
    assert counts["after"] == 200
    assert sum(v for k, v in counts.items() if k != "after") == 200
    assert counts[200] > 0 and counts[422] > 0  # both valid and schema-violating requests were sent


def test_raw_bodies_and_headers_never_get_a_5xx():
    counts = raw_campaign(fuzz_app(), examples=200, rng_seed=19)
    assert counts["after"] == 200 and counts[400] > 0


def test_with_a_token_fuzzed_requests_without_it_all_get_401():
    counts = raw_campaign(fuzz_app(token="t0k"), examples=50, rng_seed=19)
    assert counts[401] == 50
