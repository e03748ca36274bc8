"""`make demo`: the whole pipeline on the offline tiny default, then what it shows.

    python -m flows.demo [--store DIR] [--config configs/tiny.yaml] [--set PATH=VALUE ...]

Runs `grm run` (every stage; cached stages are skipped on a rerun), then prints the miniature world's
results: parse rate and greedy accuracy of the bootstrap, RFT and final models, voting@k and metaRM@k of the
final GRM, accuracy per item shape, the meta RM's held-out ROC-AUC, and the path of the scaling plot.
"""

from __future__ import annotations

import argparse
import sys
import time

from flows.cli import main as grm

RESULTS = """
SELECT model, method, k, k_meta, accuracy, parse_rate, items FROM (
    SELECT model, method, k, coalesce(CAST(k_meta AS VARCHAR), '') AS k_meta,
           round(max(value) FILTER (WHERE metric = 'accuracy'), 1) AS accuracy,
           round(max(value) FILTER (WHERE metric = 'parse_rate'), 1) AS parse_rate,
           max(n) FILTER (WHERE metric = 'accuracy') AS items,
           CASE model WHEN 'base' THEN 0 WHEN 'rft' THEN 1 ELSE 2 END AS stage_order
    FROM results WHERE benchmark = 'miniworld' AND subset = 'all' AND method IN ('greedy', 'voting', 'metarm')
    GROUP BY model, method, k, k_meta
)
ORDER BY stage_order, method, k, k_meta
"""

# Subsets are '<task>/<shape>': accuracy per shape, weighted by items.
SHAPES = """
SELECT model, method, k, split_part(subset, '/', 2) AS shape,
       round(sum(value * n) / sum(n), 1) AS accuracy, sum(n) AS items
FROM results
WHERE benchmark = 'miniworld' AND metric = 'accuracy' AND subset LIKE '%/%'
  AND ((method = 'greedy') OR (method IN ('voting', 'metarm') AND k = (SELECT max(k) FROM results WHERE method = 'voting')))
GROUP BY ALL ORDER BY shape, model, method
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default="store")
    ap.add_argument("--config", default="configs/tiny.yaml")
    ap.add_argument("--set", action="append", dest="overrides", default=[], metavar="PATH=VALUE")
    args = ap.parse_args(argv)
    t0 = time.time()
    run = ["run", "--config", args.config, "--store", args.store] + [x for o in args.overrides for x in ("--set", o)]
    rc = grm(run)
    if rc:
        return rc
    print(f"\n== The pipeline ran in {time.time() - t0:.0f} s. Miniature-world eval split, by model and method:")
    grm(["sql", "--store", args.store, RESULTS])
    print("\n== Per item shape (chance: pairwise 50%, listwise 25-33%, single 50%):")
    grm(["sql", "--store", args.store, SHAPES])
    from storage import Store

    store = Store.resolve(args.store)
    metarm = store.newest("models", "metarm")
    if metarm is not None:
        m = store.manifest(metarm)["extra"].get("metrics", {})
        if m.get("heldout_n"):
            auc = m.get("heldout_roc_auc")
            print(f"\n== Meta RM, on held-out train prompts ({m['heldout_n']} trajectories): accuracy {m['heldout_accuracy']:.1f}%, "
                  f"ROC-AUC {'n/a' if auc is None else f'{auc:.1f}%'}")
    plots = store.newest("files", "plots")
    if plots is not None:
        print(f"\n== Scaling plot (accuracy vs k, voting vs meta-RM voting): {plots.path}/scaling.png")
    print(f"\nQuery anything else with: .venv/bin/grm sql --store {args.store} \"select * from results limit 20\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
