"""The stage cache on disk: Prefect result records holding a StageOutput as plain JSON, read back only when
they are exactly that (docs/design.md, "Caching").

Anyone who can write to a store can write ``<store>/.prefect/results``. Prefect decodes a record with the
serializer the record itself names (pickle included), even just to check that a cached result exists, so a
planted record would run code the next time a stage is looked up. Here the records are written with
``StageOutputSerializer`` (JSON that builds a StageOutput and its ArtifactRefs, nothing else), and
``StageResults`` hands Prefect a record only when it names that serializer; any other file is reported and
treated as absent, so the stage reruns and overwrites it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import LocalFileSystem
from prefect.logging import get_logger
from prefect.serializers import Serializer
from pydantic import Field

from storage import Store
from tasks.base import StageOutput

STAGE_OUTPUT_JSON = "grm-stage-output-json"
log = get_logger("stage-cache")  # prefect.stage-cache: shown on the console and in the run's logs


class UntrustedResult(ValueError):
    """A file in the results folder that is not a stage result written by grm."""


class StageOutputSerializer(Serializer):
    """A stage's result as JSON (StageOutput.to_json); loading builds only a StageOutput."""

    type: str = Field(default=STAGE_OUTPUT_JSON, frozen=True)

    def dumps(self, obj: StageOutput) -> bytes:
        return obj.to_json().encode()

    def loads(self, blob: bytes) -> StageOutput:
        return StageOutput.from_json(blob)


def checked_record(path: str, content: bytes) -> bytes:
    """The record's bytes re-encoded from what was checked, or UntrustedResult: a JSON object with exactly a
    ``metadata`` object naming our serializer and a ``result`` string (what Prefect writes for this task)."""
    try:
        doc = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise UntrustedResult(f"{path}: not a JSON result record") from None
    if not isinstance(doc, dict) or set(doc) != {"metadata", "result"} or not isinstance(doc["result"], str):
        raise UntrustedResult(f"{path}: not a stage result record")
    meta = doc["metadata"]
    if not isinstance(meta, dict) or meta.get("serializer") != {"type": STAGE_OUTPUT_JSON}:
        found = meta.get("serializer") if isinstance(meta, dict) else None
        raise UntrustedResult(f"{path}: written with serializer {found!r}, not {STAGE_OUTPUT_JSON!r}")
    # Re-encoded, so that Prefect parses exactly the document checked here (no duplicate-key tricks).
    return json.dumps(doc).encode()


class StageResults(LocalFileSystem):
    """Prefect's local result storage that reads back only stage result records (see module docstring)."""

    _block_type_name = "GRM Stage Results"

    def _checked(self, path: str, content: bytes) -> bytes:
        try:
            return checked_record(str(self._resolve_path(path)), content)
        except UntrustedResult as e:
            log.warning("stage cache: ignoring %s; the stage reruns", e)
            raise

    async def aread_path(self, path: str) -> bytes:
        return self._checked(path, await super().aread_path(path))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        return self._checked(path, self._resolve_path(path).read_bytes())


def stage_result_options(store: Store) -> dict[str, Any]:
    """``run_stage.with_options(**...)``: where the stage cache of ``store`` lives and how it is encoded. Prefect
    takes only result storage saved on its server: saved under a name derived from the folder."""
    folder = str(store.prefect_dir() / "results")
    storage = StageResults(basepath=folder)
    storage.save(f"grm-results-{hashlib.sha256(folder.encode()).hexdigest()[:16]}", overwrite=True)
    return {"result_storage": storage, "result_serializer": StageOutputSerializer()}
