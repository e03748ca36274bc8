"""Stage `import_model` (only when import_model is set): the model a config names by a store name, imported into
the store as ``models/<name>`` from a GGUF file or a Hugging Face folder (grm.models_import), so that a fresh store
needs no separate `grm models import` (docs/design.md, "Real models").

``import_into_store`` is also what `grm models import` runs: one way into the store. An import of the same source
bytes under the same name is found and reused, not converted again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

from grm.models_import import ImportStats, ModelImportError, check_name, import_model, resolve_source, sha256_of
from storage import ArtifactRef, Store
from tasks.base import StageContext, StageOutput
from tasks.cache_keys import external_data
from tasks.stage import FILES, stage

RECORD = "import.json"


def already_imported(store: Store, name: str, source_sha256: str) -> ArtifactRef | None:
    """The newest ``models/<name>`` when it was imported from these very bytes, else None."""
    ref = store.newest("models", name)
    if ref is not None and store.manifest(ref).get("extra", {}).get("source_sha256") == source_sha256:
        return ref
    return None


def import_into_store(store: Store, name: str, source: Path, *, log: Callable[[str], None] = print,
                      manifest: Mapping[str, Any] | None = None) -> tuple[ArtifactRef, dict]:
    """Publish ``source`` (resolved) as ``models/<name>``, or find it there already; (its reference, what was
    done). A ModelImportError leaves nothing published. (Names the pipeline's own models use are refused by
    tasks.stages.check_store_model_name, before this runs.)"""
    check_name(name)
    digest = sha256_of(source)
    found = already_imported(store, name, digest)
    if found is not None:
        log(f"models/{name} already holds {source} (sha256 {digest[:16]}...): {store.location(found)}")
        return found, {"reused": True, "source": str(source), "source_sha256": digest}
    manifest = dict(manifest or {})
    staging = store.staging_folder()
    try:
        stats: ImportStats = import_model(source, staging, log=log, source_sha256=digest)
        extra = {**manifest.pop("extra", {}), "command": "grm models import", "source": str(source),
                 "source_sha256": digest, "import": stats.as_dict()}  # stats.versions: the importer's libraries
        ref = store.publish_folder("models", name, staging, extra=extra, **manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # nothing half-made stays behind
        raise
    return ref, {"reused": False, **stats.as_dict()}


def configured(cfg) -> bool:
    """when import_model is set"""
    return cfg.import_model is not None


def source_file(cfg, store: Store) -> ArtifactRef:
    """the GGUF file or model folder of import_model.path"""
    try:
        path = resolve_source(cfg.import_model.path, cfg.base_dir)
    except ModelImportError as e:  # one line; `grm run` ends with it
        raise ModelImportError(f"stage 'import_model': import_model.path {e}") from None
    return external_data("import_source", str(path))  # its content hash: moving the file does not rerun


@stage(group="data", outputs={"model_import": FILES}, config=("import_model",), external={"source": source_file},
       enabled=configured)
def run(ctx: StageContext, source: ArtifactRef) -> StageOutput:
    name = ctx.config.import_model.name
    ref, done = import_into_store(ctx.store, name, Path(source.path), log=ctx.logger.info,
                                  manifest=ctx.manifest())
    record = {"name": name, "path": ctx.config.import_model.path, "model": ctx.store.location(ref),
              "model_content_hash": ref.content_hash, **done}
    folder = ctx.store.staging_folder()
    (folder / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True))
    rec = ctx.store.publish_folder("files", "model_import", folder, **ctx.manifest())
    how = "found in the store" if done["reused"] else (
        f"imported: {done['parameters']:,} parameters, {done['dtype']}, {done['seconds']:.0f} s")
    # the model's own reference too: the runner then checks it is still there before trusting this stage's cache
    return StageOutput({"model_import": rec, f"models/{name}": ref}, rows_in=1, rows_out=1,
                       summary_md=f"**import_model**: models/{name} from {ctx.config.import_model.path} ({how})",
                       metrics={k: v for k, v in done.items() if isinstance(v, (int, float, str, bool))})
