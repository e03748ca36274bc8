"""Argument helpers shared by the `grm` subcommands (flows/cli_*.py), so each option is declared once."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="DIR", help="artifact store (default: $GRM_STORE or ./store)")


STORE_BUSY_EXIT = 75  # EX_TEMPFAIL: another writer holds the store; try again later


def add_lock_wait(p: argparse.ArgumentParser) -> None:
    """Commands that write the store hold its lock; this says how long to wait for another writer."""
    p.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                   help="when another command is writing the store, wait this long for it, then fail naming it "
                   f"(exit {STORE_BUSY_EXIT}; default 600, 0: fail at once)")


def store_command() -> str:
    """This command line, as the store's lock records it for a "store busy" message."""
    import shlex
    import sys

    return "grm " + shlex.join(sys.argv[1:])


def model_folder(flag: str, value: str) -> Path | None:
    """The model folder a command-line model argument names, or None where it names a store model. A path (it
    has a '/' or starts with '.') must exist; a bare name is a folder only where that folder holds a config.json,
    so `--model grm` in the project root means the store's GRM, not the `grm/` package beside it."""
    path = Path(value)
    if "/" in value or value.startswith("."):
        if not path.exists():
            raise ValueError(f"{flag} {value}: no such folder")
        return path.resolve()
    return path.resolve() if (path / "config.json").is_file() else None


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The GRM (and optional meta RM) to score with, and how to sample it: `grm score` and `grm serve`."""
    p.add_argument("--model", required=True, metavar="DIR", help="GRM folder, or a store model name (grm, rft, base)")
    p.add_argument("--meta-rm", metavar="DIR", help="meta RM folder or store model name (metarm): meta-RM-guided voting")
    p.add_argument("--k", type=int, default=1, help="samples per item (default 1: greedy)")
    p.add_argument("--k-meta", type=int, help="samples kept by the meta RM (default k/2)")
    p.add_argument("--temperature", type=float, help="sampling temperature (default 0 for k=1, else 0.5)")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--allow-pickle", action="store_true",
                   help="load pickle weights (pytorch_model.bin), which can run code: only for a model you trust")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="run the model repository's own Python code: only for a model you trust")
