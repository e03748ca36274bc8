"""`grm data formats` and `grm data import`: list the dataset formats, import files into the store."""

from __future__ import annotations

import argparse
import sys

from flows.cli_args import add_store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset formats and imports", description="List dataset formats; import "
                       "files (or Hugging Face dataset ids) in a published format into the store's items table.")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    dsub.add_parser("formats", help="list the formats, one line each").set_defaults(func=_formats)
    imp = dsub.add_parser(
        "import",
        help="import files into `items` (rejected rows into `quarantine`)",
        description="Import PATHs (files, folders, or HF dataset ids) in FORMAT. The new items artifact is the "
        "current items plus the imported ones, without exact duplicates; rejected rows join `quarantine`.",
    )
    imp.add_argument("--format", required=True, metavar="FORMAT", help="see `grm data formats`")
    imp.add_argument("--split", choices=["train", "eval"], help="default: the format's usual split")
    imp.add_argument("--name", help="source name recorded on every item (default: the format name)")
    add_store(imp)
    imp.add_argument("--max-chars", type=int, help="rows longer than this are quarantined (default: data.max_chars's)")
    imp.add_argument("--hf-split", help="split to load when a PATH is a Hugging Face dataset id")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.set_defaults(func=_import)


def _formats(args: argparse.Namespace) -> int:
    from grm.formats import FORMATS

    width = max(map(len, FORMATS))
    for name, fmt in FORMATS.items():
        print(f"{name.ljust(width)}  {'[' + fmt.default_split + ']':<7}  {fmt.description}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from grm.config import DataConfig
    from grm.curation import deduplicate
    from grm.formats.importer import import_source
    from grm.formats.readers import SourceReadError
    from storage import Store

    name = args.name or args.format
    max_chars = args.max_chars or DataConfig.model_fields["max_chars"].default
    try:
        result = import_source(name, args.format, args.paths, args.split, max_chars=max_chars,
                               hf_split=args.hf_split)
    except (SourceReadError, KeyError, ValueError) as e:
        print(f"grm data import: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    store = Store.resolve(args.store)
    old_items = store.table("items")
    old_quarantine = store.table("quarantine")
    previous = store.read_rows(old_items) if old_items else []
    merged, dedup = deduplicate(previous + result.items)
    already = len(previous) + len(result.items) - len(merged)
    provenance = {"command": "grm data import", "source": name, "format": args.format, "paths": list(args.paths)}
    inputs = {t: r.content_hash for t, r in (("items", old_items), ("quarantine", old_quarantine)) if r}
    store.write_table("items", merged, input_hashes=inputs, extra={**provenance, "import": result.stats.as_dict()})
    quarantine = (store.read_rows(old_quarantine) if old_quarantine else []) + result.quarantine
    store.write_table("quarantine", quarantine, input_hashes=inputs, extra=provenance)

    s = result.stats
    print(f"source {name} ({args.format}, {s.split}) into {store.root}")
    print(f"read         {s.read}")
    print(f"imported     {s.imported}  ({s.items} items)")
    print(f"quarantined  {s.quarantined_total}")
    for reason, n in s.quarantined.most_common():
        print(f"  {reason:<26} {n}")
    print(f"duplicates   {s.duplicates}  (rows repeating earlier rows of this input)")
    if already:
        print(f"already in the store: {already} item(s) dropped as exact duplicates")
    print(f"items table now holds {len(merged)} items")
    return 0
