"""The offline default's effects over seeds (not a test): `grm run --config configs/tiny.yaml --set seed=N` for
several seeds, each into a store of its own (kept, so every figure can be read back with `grm sql`), then per
headline figure the mean, the standard deviation and each seed's value, and the paired effects per seed.

    .venv/bin/python -m bench.seeds --seeds 0 1 2 [--stores stores/seeds] [--set PATH=VALUE ...] [--read] [--record]

A seed whose store already holds a finished run is all Cached when run again; ``--read`` only reads the stores
back (no `grm run`: wall times are then not measured). ``--record`` appends the table to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

from bench.pipeline import run
from storage import Store
from storage.sql import run_query

ROOT = Path(__file__).resolve().parents[1]
BENCH = "miniworld"
SHAPES = ("pairwise", "listwise", "single")
# Chance per shape: pairwise 1/2, listwise 1/n (3-4 responses, about 0.29 measured), single 0/1 label 1/2.
FIGURES = (
    ("greedy bootstrap", "base", "greedy", 1, None),
    ("greedy RFT", "rft", "greedy", 1, None),
    ("greedy final", "grm", "greedy", 1, None),
    ("voting@1", "grm", "voting", 1, None),
    ("voting@8", "grm", "voting", 8, None),
    ("metaRM@8", "grm", "metarm", 8, 4),
)
EFFECTS = (
    ("RFT - bootstrap", "greedy RFT", "greedy bootstrap"),
    ("final - RFT", "greedy final", "greedy RFT"),
    ("final - bootstrap", "greedy final", "greedy bootstrap"),
    ("voting@8 - voting@1", "voting@8", "voting@1"),
    ("metaRM@8 - voting@8", "metaRM@8", "voting@8"),
)


def run_seed(seed: int, store: Path, overrides: list[str]) -> tuple[float, int]:
    """`grm run --config configs/tiny.yaml --set seed=N` into the seed's store: wall seconds, peak bytes."""
    seconds, peak, _, _ = run("configs/tiny.yaml", store, store.parent / f".prefect-{seed}", [f"seed={seed}", *overrides])
    return seconds, peak


def figures(store: Path) -> dict[str, float]:
    """The headline figures of one seed's store, read back with the same SQL a user would type."""
    st = Store(store)
    out: dict[str, float] = {}
    for name, model, method, k, k_meta in FIGURES:
        sql = (f"select value from results where benchmark = '{BENCH}' and subset = 'all' and metric = 'accuracy' "
               f"and model = '{model}' and method = '{method}' and k = {k} "
               + (f"and k_meta = {k_meta}" if k_meta else "and k_meta is null"))
        _, rows = run_query(st, sql)
        out[name] = rows[0][0] if rows else float("nan")
    _, rows = run_query(st, f"select value from results where benchmark = '{BENCH}' and subset = 'all' and "
                            "metric = 'parse_rate' and model = 'grm' and method = 'voting' and k = 8")
    out["parse rate (final, k=8)"] = rows[0][0] if rows else float("nan")
    for shape in SHAPES:  # final greedy per item shape: mean over the families' subsets, item-weighted
        _, rows = run_query(st, f"select sum(value * n) / sum(n) from results where benchmark = '{BENCH}' and "
                                f"subset like '%/{shape}' and metric = 'accuracy' and model = 'grm' and method = 'greedy'")
        out[f"final greedy, {shape}"] = rows[0][0] if rows and rows[0][0] is not None else float("nan")
        # chance: a uniform guess of the best of n responses; a single response's 0/1 label, a coin
        _, rows = run_query(st, "select 100.0 * avg(case when len(responses) = 1 then 0.5 else 1.0 / len(responses) end) "
                                f"from items where split = 'eval' and subset like '%/{shape}'")
        out[f"chance, {shape}"] = rows[0][0] if rows and rows[0][0] is not None else float("nan")
    return out


def working(store: Path) -> dict[str, float]:
    """Why a seed's effects are small or large: per model, the share of greedy judgments that work the item out
    (not a shortcut), and of those, the share with the right working and with each response copied right. Read
    from the judge stage's stored greedy judgments; no generation."""
    from bench.miniworld_kit import working_stats

    st = Store(store)
    _, items = run_query(st, "select item_id, responses, meta from items where split = 'eval'")
    by_id = {i: {"responses": list(r), "meta": m} for i, r, m in items}
    out = {}
    for model, label in (("base", "bootstrap"), ("rft", "RFT"), ("grm", "final")):
        _, rows = run_query(st, f"select item_id, completion, permutation from judgments where model = '{model}' "
                                "and decoding = 'greedy'")
        w = working_stats((by_id[i], c, list(p)) for i, c, p in rows if i in by_id)
        out[f"{label}: careful share"] = 100 * w["careful"] / max(w["items"], 1)
        out[f"{label}: careful, working right"] = w["working right %"]
        out[f"{label}: careful, responses copied right"] = w["copied right %"]
        out[f"{label}: right working, verdicts right"] = w["verdicts right %"]
        out[f"{label}: careful, scores follow verdicts"] = w["scores follow verdicts %"]
    # what rejective fine-tuning trained on: the careful share of the accepted trajectories (hinted ones aside,
    # which follow the hint), against the careful share of all unhinted samples
    from grm.miniworld.teacher import is_shortcut

    _, rows = run_query(st, "select completion, accepted from rft_samples where not hinted")
    careful = [not is_shortcut(c) for c, _ in rows]
    kept = [k for (_, a), k in zip(rows, careful) if a]
    out["RFT samples (unhinted): careful share"] = 100 * sum(careful) / max(len(careful), 1)
    out["RFT accepted (unhinted): careful share"] = 100 * sum(kept) / max(len(kept), 1)
    return out


def table(per_seed: dict[int, dict[str, float]]) -> str:
    seeds = sorted(per_seed)
    names = list(next(iter(per_seed.values())))
    diagnostics = [n for n in names if ": " in n]
    names = [n for n in names if n not in diagnostics]
    lines = ["| figure | mean | sd | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---" * (len(seeds) + 3) + "|"]

    def row(name, vals):
        ok = [v for v in vals if not math.isnan(v)]
        mean = statistics.mean(ok) if ok else float("nan")
        sd = statistics.stdev(ok) if len(ok) > 1 else float("nan")
        return f"| {name} | {mean:.1f} | {sd:.1f} | " + " | ".join(f"{v:.1f}" for v in vals) + " |"

    for n in names:
        lines.append(row(n, [per_seed[s][n] for s in seeds]))
    lines.append("| **paired effect (points)** | | | " + " | " * (len(seeds) - 1) + " |")
    for label, a, b in EFFECTS:
        vals = [per_seed[s][a] - per_seed[s][b] for s in seeds]
        lines.append(row(label + (" (positive on every seed)" if all(v > 0 for v in vals) else ""), vals))
    lines.append("| **greedy judgments, % (why)** | | | " + " | " * (len(seeds) - 1) + " |")
    for n in diagnostics:
        lines.append(row(n, [per_seed[s][n] for s in seeds]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--stores", default="stores/seeds")
    ap.add_argument("--set", action="append", dest="overrides", default=[], metavar="PATH=VALUE")
    ap.add_argument("--read", action="store_true", help="read the stores back without running grm")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    root = (ROOT / args.stores).resolve()
    per_seed, seconds, peaks = {}, {}, {}
    for seed in args.seeds:
        store = root / f"seed-{seed}"
        seconds[seed], peaks[seed] = (float("nan"), 0) if args.read else run_seed(seed, store, args.overrides)
        per_seed[seed] = figures(store) | working(store)
        print(f"seed {seed}: {seconds[seed]:.0f} s, peak {peaks[seed] / 2**30:.2f} GiB  " + ", ".join(f"{k} {v:.1f}" for k, v in per_seed[seed].items()),
              flush=True)
    md = table(per_seed)
    print(md)
    if args.record:
        cmd = ("`.venv/bin/python -m bench.seeds --seeds " + " ".join(map(str, args.seeds)) + f" --stores {args.stores}"
               + "".join(f" --set '{o}'" for o in args.overrides) + (" --read" if args.read else "") + "`")
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(f"\n### The offline default over seeds ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)\n\n"
                    f"Command: {cmd} (stores kept in {args.stores}/seed-N; wall time per seed "
                    + ", ".join(f"{s}: {t:.0f} s, peak {peaks[s] / 2**30:.2f} GiB" for s, t in seconds.items()) + f")\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
