"""`grm eval`: evaluate any model (a folder, a store model, or an OpenAI-compatible endpoint) on benchmark files,
with voting@k and an optional meta RM, without training it.

It builds a config for the pipeline's own `curate`, `judge` and `evaluate` stages (cached, resumable shards;
no second scoring path), runs them on the store, and prints each benchmark's official number, greedy, voting@k
and metaRM@k with 95% intervals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.cli_args import STORE_BUSY_EXIT, add_lock_wait, add_store, model_folder, store_command

STAGES = ["curate", "judge", "evaluate"]
OPENAI = "openai:"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate any model on benchmark files (greedy, voting@k, metaRM@k, official numbers)",
        description="Judge the items of each --format F --data PATH... with --model (a model folder, a store model "
        "such as grm, or openai:URL for an OpenAI-compatible server), k samples per item in shuffled orders, and "
        "score every benchmark by its protocol. Writes `judgments` and `results` to the store; a second identical "
        "command is served from the cache.",
    )
    p.add_argument("--model", required=True, metavar="DIR|NAME|openai:URL")
    p.add_argument("--format", action="append", required=True, metavar="F", help="see `grm data formats` (repeat, "
                   "one per --data)")
    p.add_argument("--data", action="append", nargs="+", required=True, metavar="PATH")
    p.add_argument("--k", type=int, default=8, help="samples per item for voting@k (default 8)")
    p.add_argument("--meta-rm", metavar="DIR|NAME", help="a meta RM to guide the vote (metaRM@k)")
    p.add_argument("--served-model", help="with openai:URL, the served model's name (default: the first of /models)")
    p.add_argument("--backend", choices=["hf", "vllm"], default="hf", help="for a local model (default hf)")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--per-subset", type=int, metavar="N", help="judge at most N items per (benchmark, subset): a quick look")
    p.add_argument("--seed", type=int, default=0)
    add_store(p)
    add_lock_wait(p)
    p.set_defaults(func=_eval)


def _served_model(url: str) -> str:
    import httpx

    r = httpx.get(url.rstrip("/") + "/models", timeout=10.0)
    r.raise_for_status()
    return r.json()["data"][0]["id"]


def eval_config(args: argparse.Namespace) -> dict:
    """The pipeline config of one `grm eval` command (raises ValueError naming a bad argument)."""
    from grm.formats import FORMATS

    if len(args.format) != len(args.data):
        raise ValueError(f"give one --format per --data ({len(args.format)} --format, {len(args.data)} --data)")
    if args.k < 1:
        raise ValueError("--k must be at least 1")
    sources = []
    for i, (fmt, paths) in enumerate(zip(args.format, args.data)):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r} (see `grm data formats`)")
        for p in paths:
            if not Path(p).exists():
                raise ValueError(f"--data {p}: no such file or folder")
        name = fmt if args.format.count(fmt) == 1 else f"{fmt}-{i + 1}"
        sources.append({"name": name, "format": fmt, "paths": [str(Path(p).resolve()) for p in paths], "split": "eval"})
    generation: dict = {"backend": args.backend, "max_new_tokens": args.max_new_tokens}
    model = args.model
    if model.startswith(OPENAI):
        url = model[len(OPENAI):]
        try:
            served = args.served_model or _served_model(url)
        except Exception as e:  # down, refused, not OpenAI-compatible
            raise ValueError(f"--model {model}: the endpoint does not answer ({type(e).__name__}: {e})") from None
        generation.update(backend="openai", openai={"base_url": url, "model": served})
    else:
        folder = model_folder("--model", model)
        model = str(folder) if folder else model
    judge = {"models": [model], "voting_models": [model], "k_max": args.k, "meta_scores": bool(args.meta_rm),
             "meta_guides": model, "per_subset": args.per_subset}
    if args.meta_rm:
        folder = model_folder("--meta-rm", args.meta_rm)
        judge["meta_rm"] = str(folder) if folder else args.meta_rm
    return {"seed": args.seed, "data": {"sources": sources}, "generation": generation, "judge": judge,
            "models": {"dtype": "float32" if args.backend == "hf" else "auto"}}


def _eval(args: argparse.Namespace) -> int:
    from grm.config import ConfigError, parse_config
    from storage import Store, StoreBusy, StoreError

    try:
        data = eval_config(args)
        parse_config(data, "grm eval")
    except (ValueError, ConfigError) as e:
        print(f"grm eval: {e}", file=sys.stderr)
        return 2
    store = Store.resolve(args.store)
    try:
        with store.lock(store_command(), wait_s=args.wait, on_wait=lambda m: print(f"grm eval: {m}", file=sys.stderr)):
            return _eval_locked(args, data, store)
    except StoreBusy as e:
        print(f"grm eval: {e}", file=sys.stderr)
        return STORE_BUSY_EXIT
    except StoreError as e:  # a read-only store, a corrupt artifact (named)
        print(f"grm eval: {e}", file=sys.stderr)
        return 2


def _eval_locked(args: argparse.Namespace, data: dict, store) -> int:
    import tempfile

    import yaml

    from flows.cli_run import prefect_environment

    prefect_environment(store.root)
    from flows.pipeline import spct_pipeline
    from storage import StoreError
    from tasks.runner import MissingInput

    with tempfile.TemporaryDirectory(prefix="grm-eval-") as tmp:
        path = Path(tmp) / "eval.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        try:
            summary = spct_pipeline(config=str(path), store=str(store.root), only=STAGES)
        except (MissingInput, StoreError) as e:
            print(f"grm eval: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # Prefect logged the traceback; finished shards are kept
            print(f"\ngrm eval: failed: {type(e).__name__}: {e}\n(finished shards are kept; rerun to resume)",
                  file=sys.stderr)
            return 1
    rows = store.read_rows(store.table("results"))
    print(f"\nrun {summary['run_id']} (store {store.root}): " + ", ".join(f"{s} {st}" for s, st in summary["states"].items()))
    print(eval_table(rows, data["judge"]["models"][0], args.k))
    return 0


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    ci = f" [{r['ci_low']:.1f}, {r['ci_high']:.1f}]" if r.get("ci_low") is not None else ""
    return f"{r['value']:.1f}{ci}"


def eval_table(rows: list[dict], model: str, k: int) -> str:
    """One line per benchmark: its official number, greedy, voting@k and metaRM@k (k_meta = k/2), each with
    its 95% interval, and n."""
    from grm.evaluation.protocols import headline_metric
    from grm.voting import default_k_meta

    def find(bench: str, metric: str, method: str, kk=None, km=None) -> dict | None:
        for r in rows:
            if (r["benchmark"], r["subset"], r["metric"], r["method"], r["model"]) == (bench, "all", metric, method, model) \
                    and (kk is None or r["k"] == kk) and (km is None or r["k_meta"] == km):
                return r
        return None

    benches = sorted({r["benchmark"] for r in rows if r["model"] == model and r["subset"] == "all"})
    head = ["benchmark", "official", "greedy", f"voting@{k}", f"metaRM@{k}", "n"]
    out = [head]
    for b in benches:
        m = headline_metric(b)
        greedy = find(b, m, "greedy")
        official = next((r for r in rows if r["benchmark"] == b and r["subset"] == "all" and r["metric"] == "official"
                         and r["model"] == model and r["method"] == "greedy"), None)
        out.append([b, _cell(official), _cell(greedy), _cell(find(b, m, "voting", k)),
                    _cell(find(b, m, "metarm", k, default_k_meta(k))), str(greedy["n"] if greedy else "-")])
    widths = [max(len(r[i]) for r in out) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in out]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(percent, 95% intervals; official = the benchmark harness's own number, greedy)"
