"""Time the evaluate stage's DuckDB scoring on synthetic judgments (not a test).

    python -m bench.evaluate --items 2000 --k 32

Prints one table row: judgments, methods (greedy, voting@k, metaRM@k for k = 1..K with k_meta = k/2 and 1),
seconds to write the tables and seconds to evaluate (SQL votes + protocol rows + bias reports).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

from grm.evaluation.methods import k_grid, k_meta_grid, methods_for
from grm.evaluation.results import results_table
from grm.evaluation.sql import evaluate_judgments
from storage import Store
from storage.sql import connect


def synthetic(n_items: int, k: int, seed: int = 0):
    rng = random.Random(seed)
    items, judgments = [], []
    for t in range(n_items):
        n = rng.choice([2, 2, 3, 4])
        iid = f"i{t}"
        items.append({
            "item_id": iid, "source": rng.choice(["rewardbench", "rmb", "llmbar"]), "format": "bench", "split": "eval",
            "subset": "alpacaeval-easy", "conversation": [{"role": "user", "content": "q"}],
            "responses": [f"r{j}" * (j + 1) for j in range(n)], "label_kind": "best", "best": rng.randrange(n),
            "ratings": None, "meta": json.dumps({}),
        })
        for s in range(k + 1):
            scores = None if rng.random() < 0.1 else [rng.randint(1, 10) for _ in range(n)]
            judgments.append({
                "model": "grm", "item_id": iid, "decoding": "sample" if s < k else "greedy", "sample_idx": s % k,
                "seed": s, "permutation": rng.sample(range(n), n), "prompt": "", "completion": "", "scores": scores,
                "parse_status": "ok" if scores else "no_box", "principles": "", "critique": "", "meta_score": rng.random(),
            })
    return items, judgments


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--k", type=int, default=32)
    args = ap.parse_args()
    items, judgments = synthetic(args.items, args.k)
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        t0 = time.perf_counter()
        iref, jref = store.write_table("items", items), store.write_table("judgments", judgments)
        t1 = time.perf_counter()
        ks = k_grid(args.k)
        methods = methods_for(ks, {k: k_meta_grid(k, [1]) for k in ks})
        with connect(store, views=["judgments", "items"], refs={"judgments": jref, "items": iref}) as con:
            data = evaluate_judgments(con, methods)
        rows = results_table(data)
        t2 = time.perf_counter()
    print("| items | judgments | methods | write s | evaluate s | result rows |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.items} | {len(judgments)} | {len(methods)} | {t1 - t0:.2f} | {t2 - t1:.2f} | {len(rows)} |")


if __name__ == "__main__":
    main()
