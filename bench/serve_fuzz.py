"""`grm serve` fuzz campaign (not a test): thousands of requests against the ASGI app in-process, with a scripted
backend (tests/serve_fuzz.py): from its OpenAPI schema with schemathesis (half fitting the schema, half
violating it), raw bodies and headers from hypothesis, and the same raw campaign against an app that requires a
bearer token. Fails on any 5xx or non-JSON answer; prints the answers by status.

    .venv/bin/python -m bench.serve_fuzz [--schema 4000] [--raw 6000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from tests.serve_fuzz import fuzz_app, raw_campaign, schema_campaign


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=int, default=4000, help="requests generated from the OpenAPI schema")
    ap.add_argument("--raw", type=int, default=6000, help="raw bodies and headers")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    total = 0
    for name, run in (("openapi schema (schemathesis)", lambda: schema_campaign(fuzz_app(), a.schema, a.seed)),
                      ("raw bodies and headers (hypothesis)", lambda: raw_campaign(fuzz_app(), a.raw, a.seed)),
                      ("raw, token required, none sent", lambda: raw_campaign(fuzz_app(token="t"), a.raw // 4, a.seed))):
        t0 = time.perf_counter()
        counts = run()
        after = counts.pop("after")
        n = sum(counts.values())
        total += n
        print(f"{name}: {n} requests in {time.perf_counter() - t0:.1f} s, 0 x 5xx; by status "
              f"{dict(sorted(counts.items()))}; a valid request afterwards: {after}")
    print(f"total: {total} requests, no 5xx, no crash")


if __name__ == "__main__":
    main()
