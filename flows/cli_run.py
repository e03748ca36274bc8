"""`grm run`: the pipeline (or some of its stages) in Prefect's local mode, or against PREFECT_API_URL."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from flows.cli_args import STORE_BUSY_EXIT, add_lock_wait, add_store, store_command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the SPCT pipeline (cached stages) on a config",
        description="Run (math_samples) -> curate -> (bootstrap) -> rft_sample -> rft_train -> rl -> metarm_data -> "
        "metarm_train -> judge -> evaluate. Unchanged stages are skipped (Cached). Without PREFECT_API_URL Prefect runs locally; "
        "with it, the run reports to that server.",
    )
    p.add_argument("--config", default="configs/tiny.yaml", metavar="FILE")
    add_store(p)
    add_lock_wait(p)
    p.add_argument("--only", action="append", metavar="STAGE",
                   help="run only this stage, or group of stages: data, train, metarm, evaluation (repeatable)")
    p.add_argument("--force", action="append", metavar="STAGE", help="rerun this stage (or group) even if cached (repeatable)")
    p.add_argument("--set", action="append", dest="overrides", metavar="PATH=VALUE",
                   help="override a config value, e.g. --set rl.beta=0.02 (repeatable)")
    p.set_defaults(func=_run)


def prefect_environment(store_root: Path) -> None:
    """Settings that must be in place before Prefect is imported: results (the stage cache) live in the
    store, and no telemetry leaves the machine."""
    os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(store_root / ".prefect" / "results"))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if os.environ.get("PREFECT_HOME"):
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)  # its SQLite database lives there


def _interrupt(signum, frame) -> None:
    """SIGTERM (a scheduler or `kill` stopping the run) unwinds like Ctrl-C: trainers, engines and Prefect's
    temporary server are stopped and the store lock released, where the default would leave them running."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _run(args: argparse.Namespace) -> int:
    from grm import cpu_numerics
    from grm.config import ConfigError, load_config
    from storage import Store, StoreBusy, StoreError

    try:
        cfg = load_config(args.config, args.overrides)  # fail on a broken config before Prefect starts
        cpu_numerics.apply(cfg.models.cpu_numerics)  # before anything loads torch
    except (ConfigError, cpu_numerics.NumericsError) as e:
        print(f"grm run: {e}", file=sys.stderr)
        return 2
    store = Store.resolve(args.store)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with store.lock(store_command(), wait_s=args.wait, on_wait=lambda m: print(f"grm run: {m}", file=sys.stderr)):
            return _run_locked(args, store)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the stage stopped its children, Prefect its temporary server
        print("\ngrm run: interrupted (finished stages, shards and checkpoints are kept; rerun to resume)", file=sys.stderr)
        return 130
    except StoreBusy as e:
        print(f"grm run: {e}", file=sys.stderr)
        return STORE_BUSY_EXIT
    except StoreError as e:  # a read-only store: one line
        print(f"grm run: {e}", file=sys.stderr)
        return 2


def _run_locked(args: argparse.Namespace, store) -> int:
    from storage import StoreError

    prefect_environment(store.root)
    from flows.pipeline import spct_pipeline
    from tasks.runner import MissingInput
    from tasks.stages import select

    try:
        select((args.only or []) + (args.force or []))
    except ValueError as e:
        print(f"grm run: {e}", file=sys.stderr)
        return 2
    try:
        summary = spct_pipeline(config=args.config, store=str(store.root), only=args.only, force=args.force,
                                overrides=args.overrides)
    except (MissingInput, StoreError) as e:  # an input not there, or corrupt (named), or a write refused
        print(f"grm run: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a stage failed: Prefect has logged its traceback above; end with one clear line
        print(f"\ngrm run: failed: {type(e).__name__}: {e}\n(earlier stages' artifacts are kept; rerun to resume)",
              file=sys.stderr)
        return 1
    width = max(map(len, summary["states"]), default=5)
    print(f"\nrun {summary['run_id']} (store {store.root})")
    for name, state in summary["states"].items():
        print(f"  {name:<{width}}  {state}")
    return 0
