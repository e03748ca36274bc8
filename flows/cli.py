"""The `grm` command line (`grm = flows.cli:main`): the parser built from the flows/cli_*.py modules, and dispatch.
Heavy imports (Prefect, torch) stay inside the commands, so `grm --help` and `grm sql` stay fast."""

from __future__ import annotations

import argparse
import sys

from flows import cli_data, cli_eval, cli_models, cli_run, cli_score, cli_sql, cli_store

# each registers its subcommands, with set_defaults(func=...), in this order (the order of `grm --help`)
COMMAND_MODULES = (cli_sql, cli_run, cli_data, cli_eval, cli_score, cli_store, cli_models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grm",
        description="Generalist generative reward models with SPCT (DeepSeek-GRM): a Prefect pipeline of cached "
        "Parquet stages.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
