"""Reading source rows from files (JSON, JSONL, gzip, Parquet) or Hugging Face dataset ids.

Each row comes out as a ``Record`` carrying where it was (``row_ref``), its raw text, and either its value
or the reason it could not be decoded (a truncated JSON line, invalid UTF-8): such rows are quarantined
by the importer, not raised. A file that cannot be read at all (missing, not JSON, a corrupt gzip or
Parquet file) raises ``SourceReadError`` naming the file.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from grm.formats.base import INVALID_JSON, INVALID_UTF8, SUFFIXES

# owner/name, optionally /data_dir and :config, e.g. nvidia/HelpSteer2/preference or ryokamoi/realmistake:math
_HF_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?P<data_dir>(?:/[\w.^-]+)*)(?::(?P<config>[\w.-]+))?$")


class SourceReadError(RuntimeError):
    """A source that cannot be read at all; the message names the file or dataset id."""


@dataclass(frozen=True)
class Record:
    path: str  # the file (or dataset id) the row is in
    row_ref: str  # 'file.jsonl:12' (line), 'file.json#3' (array index), 'org/name[train]#7'
    raw: str
    value: Any = None
    error: str | None = None  # a quarantine reason when the row could not be decoded
    group: str | None = None  # the key of a JSON object of lists (EvalBiasBench's bias type)


@dataclass(frozen=True)
class HFDatasetId:
    """A Hugging Face dataset id as a source path names it: ``owner/name[/data_dir][:config]``."""

    repo: str
    data_dir: str | None  # a folder of the repository (nvidia/HelpSteer2/preference)
    config: str | None  # the dataset's config (subset) name, load_dataset's ``name`` (EleutherAI/hendrycks_math:algebra)


def parse_hf_id(spec: str) -> HFDatasetId | None:
    """The parts of a Hugging Face dataset id, or None when ``spec`` is not one (a path, a file name)."""
    if not looks_like_hf_id(spec):
        return None
    m = _HF_ID.match(spec)
    return HFDatasetId(m.group("repo"), m.group("data_dir").lstrip("/") or None, m.group("config"))


def row_records(rows: Iterable[Mapping], where: str) -> Iterator[Record]:
    """Rows already read (a table of the store) as records: ``row_ref`` is the row's own ``row_ref`` (where it
    was first read) when it has one, else '<where>#<index>'."""
    for i, row in enumerate(rows):
        value = dict(row)
        yield Record(where, value.get("row_ref") or f"{where}#{i}", _dump(value), value)


def is_supported(path: Path) -> bool:
    return path.is_file() and path.name.endswith(SUFFIXES)


def looks_like_hf_id(spec: str) -> bool:
    return bool(_HF_ID.match(spec)) and not spec.startswith((".", "/")) and not spec.endswith(SUFFIXES)


def iter_records(spec: str, *, base_dir: Path | None = None, hf_split: str = "train") -> Iterator[Record]:
    """Rows of one configured path: a file, a folder (every supported file under it, sorted), or an HF id."""
    path = Path(spec)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_file():
        yield from _file_records(path, spec)
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if is_supported(p))
        if not files:
            raise SourceReadError(f"{spec}: the folder holds no {', '.join(SUFFIXES)} files")
        for f in files:
            yield from _file_records(f, str(Path(spec) / f.relative_to(path)))
    elif looks_like_hf_id(spec):
        yield from _hf_records(spec, hf_split)
    else:
        raise SourceReadError(f"{spec}: no such file or folder (and it is not a Hugging Face dataset id)")


def _file_records(path: Path, shown: str) -> Iterator[Record]:
    name = path.name
    if name.endswith(".parquet"):
        yield from _parquet_records(path, shown)
        return
    try:
        data = _read_bytes(path)
    except OSError as e:
        raise SourceReadError(f"{shown}: cannot read: {e.strerror or e}") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise SourceReadError(f"{shown}: corrupt gzip file: {e}") from None
    if name.endswith((".jsonl", ".jsonl.gz")):
        yield from _jsonl_records(data, path, shown)
    else:
        yield from _json_records(data, path, shown)


def _read_bytes(path: Path) -> bytes:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def _jsonl_records(data: bytes, path: Path, shown: str) -> Iterator[Record]:
    for lineno, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue  # blank lines (and the final newline) are not rows
        ref = f"{shown}:{lineno}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raw = line.decode("utf-8", "backslashreplace")
            yield Record(str(path), ref, raw, error=f"{INVALID_UTF8}: byte {e.start}")
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            yield Record(str(path), ref, text, error=f"{INVALID_JSON}: {e.msg} at column {e.colno}")
            continue
        except RecursionError:  # arrays or objects nested past Python's recursion limit
            yield Record(str(path), ref, text, error=f"{INVALID_JSON}: nested too deeply")
            continue
        yield Record(str(path), ref, text, value)


def _json_records(data: bytes, path: Path, shown: str) -> Iterator[Record]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SourceReadError(f"{shown}: not UTF-8 (byte {e.start}); a JSON document must be UTF-8") from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise SourceReadError(f"{shown}: not valid JSON (nested too deeply)") from None
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # one JSON value per line under a .json name
            yield from _jsonl_records(data, path, shown)
            return
        raise SourceReadError(f"{shown}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if isinstance(doc, list):
        for i, value in enumerate(doc):
            yield Record(str(path), f"{shown}#{i}", _dump(value), value)
    elif isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()):
        for key, values in doc.items():  # an object of lists: {group: [rows]}
            for i, value in enumerate(values):
                yield Record(str(path), f"{shown}#{key}/{i}", _dump(value), value, group=key)
    else:
        raise SourceReadError(f"{shown}: the top level is neither a list of rows nor an object of row lists")


def _parquet_records(path: Path, shown: str) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        i = 0
        for batch in pf.iter_batches(batch_size=2048):
            for value in batch.to_pylist():
                yield Record(str(path), f"{shown}#{i}", _dump(value), value)
                i += 1
    except (OSError, pa.ArrowException) as e:
        raise SourceReadError(f"{shown}: cannot read Parquet: {e}") from None


def _hf_records(spec: str, split: str) -> Iterator[Record]:
    hf = parse_hf_id(spec)
    repo, data_dir, config = hf.repo, hf.data_dir, hf.config
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "") or os.environ.get("HF_DATASETS_OFFLINE", "0") not in ("0", ""):
        raise SourceReadError(
            f"{spec}: not a local path, and the Hugging Face dataset '{repo}' cannot be loaded offline "
            "(HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set); give a local copy's path instead"
        )
    try:
        import datasets

        ds = datasets.load_dataset(repo, name=config, data_dir=data_dir, split=split)
    except Exception as e:  # the hub raises many types (network, auth, missing split); all mean "cannot read"
        raise SourceReadError(f"{spec}: cannot load the Hugging Face dataset '{repo}' (split {split!r}): {e}") from None
    for i, value in enumerate(ds):
        yield Record(spec, f"{spec}[{split}]#{i}", _dump(value), value)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
