"""`grm sql`: a read-only DuckDB query over the store's tables."""

from __future__ import annotations

import argparse
import sys

from flows.cli_args import add_store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sql",
        help="query the store's tables with DuckDB (read-only)",
        description="Run a read-only DuckDB query with one view per table (items, quarantine, rft_samples, rl_log, "
        "metarm_data, judgments, results, runs) over the newest published artifact of that table.",
    )
    add_store(p)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("query", help='e.g. "select source, split, count(*) from items group by all"')
    p.set_defaults(func=_sql)


def _sql(args: argparse.Namespace) -> int:
    from storage import Store, StoreError
    from storage.sql import NoTable, format_result, run_query

    store = Store.resolve(args.store)
    try:
        cols, rows = run_query(store, args.query)
    except StoreError as e:  # no artifact yet, a bad query, a corrupt artifact (named)
        if isinstance(e, NoTable):
            from tasks.stages import writer_of  # only on this path: it imports the stage modules

            e = f"{e} (it is written by {writer_of(e.table)})"
        print(f"grm sql: {e}", file=sys.stderr)
        return 2
    text = format_result(cols, rows, args.format)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
