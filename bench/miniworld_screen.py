"""Screen a bootstrap setting over seeds without the rest of the pipeline (not a test): for each seed, the
`bootstrap` stage's own function on tiny.yaml with `--set` overrides, then how often the model's careful greedy
judgments (or samples, `--temperature`) on a validation draw get each step of a careful judgment right
(bench.miniworld_kit.working_stats: working, response copies, verdicts, scores that follow them), per task.

    .venv/bin/python -m bench.miniworld_screen --seed 1 --out /tmp/screen/s1 [--set PATH=VALUE ...] [--items 300]

One seed per process, so two screens can run side by side (`--threads 1` each). The numerics follow the
config (`models.cpu_numerics`), set before torch loads, as `grm run` does.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="folder for the bootstrapped model")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    ap.add_argument("--items", type=int, default=300, help="validation items to judge")
    ap.add_argument("--temperature", type=float, default=0.0, help="0: greedy; 1.0 samples as RFT does")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's)")
    a = ap.parse_args(argv)

    from grm import cpu_numerics
    from grm.config import ConfigError, load_config

    try:
        cfg = load_config(a.config, [f"seed={a.seed}", *a.overrides])
        cpu_numerics.apply(cfg.models.cpu_numerics)  # before torch loads
    except (ConfigError, cpu_numerics.NumericsError) as e:
        raise SystemExit(f"bench.miniworld_screen: {e}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.miniworld_kit import generate, prompts_for, working_stats
    from grm.miniworld.bootstrap import bootstrap
    from grm.miniworld.world import generate_items
    from grm.prompts import Templates
    from grm.seeds import derive_seed
    from grm.shuffling import identity

    boot = cfg.bootstrap if a.threads is None else cfg.bootstrap.model_copy(update={"threads": a.threads})
    t0 = time.perf_counter()
    if not (Path(a.out) / "bootstrap.json").exists():
        bootstrap(a.out, cfg.data.miniworld, boot, Templates.configured(cfg), max_length=cfg.models.max_length, seed=cfg.seed)
    wall = time.perf_counter() - t0
    tok = AutoTokenizer.from_pretrained(a.out)
    model = AutoModelForCausalLM.from_pretrained(a.out).eval()
    torch.set_num_threads(boot.threads or torch.get_num_threads())
    # A validation draw: train-split queries (never the eval split, which a screen must not tune on) with
    # responses drawn afresh under a seed of their own.
    items = generate_items(
        cfg.data.miniworld.model_copy(update={"train_items": a.items, "seed": derive_seed(cfg.seed, "screen")}), "train"
    )
    outs, _ = generate(model, tok, [prompts_for(i, identity(len(i["responses"]))) for i in items], a.temperature)
    by_task = collections.defaultdict(list)
    for it, o in zip(items, outs):
        by_task[json.loads(it["meta"])["task"]].append((it, o, identity(len(it["responses"]))))
    row = {"seed": a.seed, "set": a.overrides, "bootstrap_s": round(wall),
           "all": working_stats(x for v in by_task.values() for x in v)}
    row.update({t: working_stats(v) for t, v in sorted(by_task.items())})
    print(json.dumps(row))
    for it, o in list(zip(items, outs))[:6]:
        print(repr(it["conversation"][0]["content"]), it["responses"], "->", repr(o))


if __name__ == "__main__":
    main()
