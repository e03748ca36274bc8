"""Argument helpers shared by the `grm` subcommands (flows/cli_*.py), so each option is declared once."""

from __future__ import annotations

import argparse


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="DIR", help="artifact store (default: $GRM_STORE or ./store)")


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
