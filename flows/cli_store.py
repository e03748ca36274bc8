"""`grm store verify`: hash every artifact of a store against its manifest (docs/design.md, "Storage").

Reading an artifact checks its files and sizes only (and hashes small ones); this command hashes every byte of
every artifact, names each bad one (table, artifact, file), and exits 1 when there is one, 0 with a one-line
summary otherwise."""

from __future__ import annotations

import argparse
import sys

from flows.cli_args import add_store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="check the store", description="Check the artifact store.")
    ssub = p.add_subparsers(dest="store_command", metavar="SUBCOMMAND", required=True)
    v = ssub.add_parser(
        "verify",
        help="hash every artifact against its manifest; exit 1 naming each bad one",
        description="Hash every artifact (tables, models, files) against the sizes and sha256 its manifest records, "
        "and look for folders that are not published artifacts and staging folders left by writers that died. "
        "Prints one line per problem (table, artifact, file) and exits 1, or prints a one-line summary and exits 0.",
    )
    add_store(v)
    v.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from storage import Store

    store = Store.resolve(args.store)
    if not store.root.is_dir():
        print(f"grm store verify: no store at {store.root}", file=sys.stderr)
        return 2
    report = store.verify()
    for problem in report.problems:
        print(f"BAD {problem}", file=sys.stderr)
    print(report.summary())
    return 0 if report.ok else 1
