"""`grm data formats` and `grm data import`: list the dataset formats; register files as a source of the store.

An import is read once here (its accounting printed, an unreadable file refused) and registered in the store's
`imports` table; `curate`, the one writer of `items`, reads it beside the config's sources on the next run,
with the same decontamination and caps."""

from __future__ import annotations

import argparse
import sys

from flows.cli_args import STORE_BUSY_EXIT, add_lock_wait, add_store, store_command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset formats and imports", description="List dataset formats; register "
                       "files (or Hugging Face dataset ids) in a published format as a source that `curate` imports.")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    dsub.add_parser("formats", help="list the formats, one line each").set_defaults(func=_formats)
    imp = dsub.add_parser(
        "import",
        help="register files as a source: the next `grm run` curates them into `items`",
        description="Read PATHs (files, folders, or HF dataset ids) in FORMAT, print what they hold, and register "
        "them in the store's `imports` table. The next `grm run` curates them with the configured sources "
        "(dedup, decontamination, caps) into `items`; rejected rows go to `quarantine`. Importing again under "
        "the same --name adds the PATHs to that source.",
    )
    imp.add_argument("--format", required=True, metavar="FORMAT", help="see `grm data formats`")
    imp.add_argument("--split", choices=["train", "eval"], help="default: the format's usual split")
    imp.add_argument("--name", help="source name recorded on every item (default: the format name)")
    add_store(imp)
    add_lock_wait(imp)
    imp.add_argument("--max-chars", type=int, help="rows longer than this are quarantined (default: data.max_chars's)")
    imp.add_argument("--hf-split", help="split to load when a PATH is a Hugging Face dataset id")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.set_defaults(func=_import)


def _register(store, args: argparse.Namespace, name: str, split: str, stats: dict) -> list[dict]:
    """Add the import to the store's `imports` table (a new artifact); the rows registered after it."""
    from datetime import datetime, timezone
    from pathlib import Path

    old = store.table("imports")
    rows = store.read_rows(old) if old else []
    paths = [str(Path(p).resolve()) if Path(p).exists() else p for p in args.paths]  # an HF id stays as given
    mine = next((r for r in rows if r["name"] == name), None)
    if mine is None:
        rows.append({"name": name, "format": args.format, "split": split, "paths": paths, "hf_split": args.hf_split,
                     "max_chars": args.max_chars, "registered_at": datetime.now(timezone.utc).isoformat()})
    elif (mine["format"], mine["split"]) != (args.format, split):
        raise ValueError(f"source {name!r} is registered as {mine['format']} ({mine['split']}); import "
                         f"{args.format} ({split}) under another --name")
    else:
        mine["paths"] = list(dict.fromkeys([*mine["paths"], *paths]))
    store.write_table("imports", rows, input_hashes={"imports": old.content_hash} if old else {},
                      extra={"command": "grm data import", "source": name, "import": stats})
    return rows


def _formats(args: argparse.Namespace) -> int:
    from grm.formats import FORMATS

    width = max(map(len, FORMATS))
    for name, fmt in FORMATS.items():
        print(f"{name.ljust(width)}  {'[' + fmt.default_split + ']':<7}  {fmt.description}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from grm.config import DataConfig
    from grm.formats.importer import import_source
    from grm.formats.readers import SourceReadError
    from storage import Store, StoreBusy, StoreError

    name = args.name or args.format
    max_chars = args.max_chars or DataConfig.model_fields["max_chars"].default
    try:
        result = import_source(name, args.format, args.paths, args.split, max_chars=max_chars,
                               hf_split=args.hf_split)
    except (SourceReadError, KeyError, ValueError) as e:
        print(f"grm data import: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    s = result.stats
    store = Store.resolve(args.store)
    # The files were read above without the lock; registering them reads and rewrites `imports`: one writer at a time.
    try:
        with store.lock(store_command(), wait_s=args.wait,
                        on_wait=lambda m: print(f"grm data import: {m}", file=sys.stderr)):
            rows = _register(store, args, name, s.split, s.as_dict())
    except StoreBusy as e:
        print(f"grm data import: {e}", file=sys.stderr)
        return STORE_BUSY_EXIT
    except (StoreError, ValueError) as e:  # a read-only or full store, a corrupt `imports`, a name taken
        print(f"grm data import: {e}", file=sys.stderr)
        return 2

    print(f"source {name} ({args.format}, {s.split}) registered in {store.root}")
    print(f"read         {s.read}")
    print(f"imported     {s.imported}  ({s.items} items)")
    print(f"quarantined  {s.quarantined_total}")
    for reason, n in s.quarantined.most_common():
        print(f"  {reason:<26} {n}")
    print(f"duplicates   {s.duplicates}  (rows repeating earlier rows of this input)")
    print(f"the next `grm run` curates {len(rows)} registered source(s) with the config's (stage curate: dedup, "
          "decontamination, caps)")
    return 0
