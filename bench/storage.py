"""Storage benchmark (not a test): stream 1,000,000 `judgments` rows (list columns included) into the store,
then time voting@k accuracy for k in 1..32, computed in DuckDB by the evaluate stage's SQL.

    .venv/bin/python -m bench.storage [--rows 1000000] [--k 32] [--record]

Prints rows/s for the write, the artifact size, and the seconds of the voting@k query (all 32 k values in
one query) and of a plain count. ``--record`` appends the rows to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from grm.evaluation.methods import Method
from grm.evaluation.sql import evaluate_judgments, voting_accuracy
from storage import Store
from storage.schemas import ITEMS, JUDGMENTS
from storage.sql import connect

ROOT = Path(__file__).resolve().parents[1]


def judgment_batch(rng: np.random.Generator, item_lo: int, item_hi: int, k: int, n: int) -> pa.RecordBatch:
    """All k samples of items [item_lo, item_hi), n responses each, ~10% parse failures."""
    items = np.repeat(np.arange(item_lo, item_hi), k)
    rows = len(items)
    sample_idx = np.tile(np.arange(k, dtype=np.int32), item_hi - item_lo)
    scores = rng.integers(1, 11, size=(rows, n), dtype=np.int32)
    failed = rng.random(rows) < 0.1
    perms = np.argsort(rng.random((rows, n)), axis=1).astype(np.int32)
    offsets = pa.array(np.arange(0, (rows + 1) * n, n, dtype=np.int32))
    score_lists = pa.ListArray.from_arrays(offsets, pa.array(scores.ravel()), mask=pa.array(failed))
    perm_lists = pa.ListArray.from_arrays(offsets, pa.array(perms.ravel()))
    item_ids = pa.array([f"item-{i:07d}" for i in items])
    completion = pa.array(
        [f"Specific Criteria: accuracy (60%), clarity (40%).\nAnalysis: sample {s} of item {i} compares the responses.\n"
         f"Scores: \\boxed{{{a}, {b}}}" for i, s, (a, b) in zip(items, sample_idx, scores[:, :2])]
    )
    columns = {
        "model": pa.array(["grm"] * rows),
        "item_id": item_ids,
        "decoding": pa.array(["sample"] * rows),
        "sample_idx": pa.array(sample_idx),
        "seed": pa.array(rng.integers(0, 2**31, rows)),
        "permutation": perm_lists,
        "prompt": pa.array(["(prompt omitted in this benchmark)"] * rows),
        "completion": completion,
        "scores": score_lists,
        "parse_status": pa.array(np.where(failed, "no_box", "ok")),
        "principles": pa.array(["accuracy (60%), clarity (40%)."] * rows),
        "critique": pa.array(["compares the responses."] * rows),
        "meta_score": pa.array(rng.normal(size=rows)),
        "meta_truncated": pa.array([False] * rows),
    }
    return pa.RecordBatch.from_pydict(columns, schema=JUDGMENTS)


def items_table(n_items: int, n: int, rng: np.random.Generator) -> pa.Table:
    best = rng.integers(0, n, n_items)
    return pa.Table.from_pylist(
        [
            {"item_id": f"item-{i:07d}", "source": "bench", "format": "generic", "split": "eval", "subset": f"s{i % 4}",
             "conversation": [{"role": "user", "content": f"question {i}"}], "responses": [f"r{j}" for j in range(n)],
             "label_kind": "best", "best": int(best[i]), "ratings": None, "meta": json.dumps({})}
            for i in range(n_items)
        ],
        schema=ITEMS,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--responses", type=int, default=2)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_items = args.rows // args.k
    with tempfile.TemporaryDirectory() as d:
        store = Store(d)
        items = store.write_table("items", items_table(n_items, args.responses, rng))
        batches = [judgment_batch(rng, lo, min(lo + 2000, n_items), args.k, args.responses) for lo in range(0, n_items, 2000)]
        t0 = time.perf_counter()
        with store.writer("judgments") as w:
            for b in batches:
                w.write_batch(b)
        write_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in Path(w.ref.path).glob("*.parquet")) / 1e6
        ks = list(range(1, args.k + 1))
        refs = {"judgments": w.ref, "items": items}
        t0 = time.perf_counter()
        with connect(store, views=list(refs), refs=refs) as con:
            acc = voting_accuracy(con, ks)
        vote_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with connect(store, views=list(refs), refs=refs) as con:
            evaluate_judgments(con, [Method("voting", k) for k in ks])
        full_s = time.perf_counter() - t0
        con = connect(store, views=["judgments"], refs={"judgments": w.ref})
        t0 = time.perf_counter()
        con.execute("SELECT count(*) FROM judgments").fetchone()
        count_s = time.perf_counter() - t0
    rows = [
        ("judgments written (streaming TableWriter, zstd)", f"{w.rows:,} rows", f"{write_s:.2f} s", f"{w.rows / write_s:,.0f} rows/s"),
        ("artifact size", f"{size_mb:.1f} MB", "", ""),
        (f"voting@k accuracy for k = 1..{args.k} (grm.evaluation.sql.voting_accuracy)", f"{len(ks)} k values",
         f"{vote_s:.2f} s", "target < 2 s"),
        ("the evaluate stage's SQL for the same votes (+ protocols, bias reports)", f"{len(ks)} k values",
         f"{full_s:.2f} s", ""),
        ("count(*) over the judgments view", "", f"{count_s * 1000:.1f} ms", ""),
    ]
    print(f"{'what':<75} {'size':>14} {'time':>10} {'rate':>16}")
    for r in rows:
        print(f"{r[0]:<75} {r[1]:>14} {r[2]:>10} {r[3]:>16}")
    print(f"sanity: random judgments give ~50% accuracy: voting@1 {acc[('grm', 1)][0]:.1f}%, voting@{args.k} {acc[('grm', args.k)][0]:.1f}%")
    if args.record:
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(f"\n### Storage: 1M judgments, voting@k in DuckDB ({time.strftime('%Y-%m-%d')}, {platform.machine()}, 2 cores)\n\n")
            f.write(f"Command: `.venv/bin/python -m bench.storage --rows {args.rows} --k {args.k} --record`\n\n")
            f.write("| what | size | time | rate |\n|---|---|---|---|\n")
            for r in rows:
                f.write("| " + " | ".join(r) + " |\n")


if __name__ == "__main__":
    main()
