"""The artifact store: the only code that knows paths, Parquet and manifests.

Layout of a store directory::

    tables/<table>/<artifact_id>/part-00000.parquet ... manifest.json
    models/<name>/<artifact_id>/<HF model files> manifest.json
    files/<name>/<artifact_id>/<any files: plots, reports> manifest.json
    work/<stage>/<key>/...        resumable scratch (finished shards, trainer checkpoints)
    .tmp/<uuid>/                  artifacts being written; published by one atomic rename

An artifact id is ``<UTC timestamp>-<content hash prefix>``, so the newest sorts last. A reader never sees
half an artifact: the folder appears under ``tables/`` (or ``models/``) only once it is complete.

Integrity (docs/design.md, "Storage"): a manifest lists every file of its artifact with its size and sha256.
Reading an artifact (``newest``, ``parquet_files`` and so everything that reads rows) checks cheaply, with
``stat`` only, that its id matches the manifest's content hash and that exactly the listed files are there with
their recorded sizes (a truncated part, a missing file, a stray or half-written file are caught); artifacts of
at most ``VERIFY_ON_READ_BYTES`` are also hashed in full, once per process. ``verify`` (``grm store verify``)
hashes every artifact. A bad artifact raises ``CorruptArtifact`` naming table, artifact and file: it is never
read. Folders beside the artifacts that are not published artifacts are named in a warning and ignored.

Writers of a store (``grm run``, ``grm eval``, ``grm data import``) hold its lock (``Store.lock``): an flock on
``.lock`` that the OS releases when the holder dies, so there is no stale lock; the file names the holder
(pid, since, command) for the "store busy" message. Whoever takes the lock first removes the staging folders
that writers which died left in ``.tmp/``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from grm import failpoints
from storage.schemas import SCHEMA_VERSION, schema_for
from storage.versions import library_versions

MANIFEST = "manifest.json"
KINDS = ("tables", "models", "files")
DEFAULT_PART_ROWS = 250_000
LOCK_FILE = ".lock"
VERIFY_ON_READ_BYTES = 64 << 20  # artifacts up to this size are hashed in full when first read in a process
ARTIFACT_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{12}")
log = logging.getLogger("grm.store")
_HASHED: dict[str, tuple] = {}  # artifact folder -> (file, size, mtime) when it was last hashed in full, intact
_WARNED: set[tuple[str, int]] = set()  # stray folders already named in a warning


class StoreError(RuntimeError):
    pass


class NoArtifact(StoreError):
    """A table (or model) has no published artifact yet."""


@dataclass(frozen=True)
class ArtifactProblem:
    """What is wrong with one artifact (or a folder that is not one), and where."""

    kind: str  # tables | models | files | .tmp
    name: str
    artifact: str  # the artifact id (folder name)
    file: str  # relative to the artifact folder; "" for the folder itself
    what: str

    def __str__(self) -> str:
        if self.kind == ".tmp":
            return f"staging folder .tmp/{self.artifact}: {self.what}"
        where = f"{self.kind[:-1]} '{self.name}', artifact {self.artifact}"
        return f"{where}, file {self.file}: {self.what}" if self.file else f"{where}: {self.what}"


class CorruptArtifact(StoreError):
    """An artifact whose files do not match its manifest: it is never read."""

    def __init__(self, folder: Path, problems: Sequence[ArtifactProblem]):
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(
            f"corrupt artifact: {problems[0]}{more}. It is not used: rerun the stage that writes it (grm run rebuilds "
            f"a stage whose artifact is bad), or remove {folder} to fall back to the previous artifact"
        )
        self.folder, self.problems = folder, list(problems)


class StoreBusy(StoreError):
    """Another process holds the store's lock."""


@dataclass(frozen=True)
class ArtifactRef:
    """What stages hand each other: where an artifact is and what it holds (never the data itself)."""

    kind: str  # tables | models | files
    name: str
    path: str
    content_hash: str
    rows: int | None = None

    @property
    def short(self) -> str:
        return f"{self.kind}/{self.name}@{self.content_hash[:12]}"


def _now_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _artifact_files(folder: Path) -> list[Path]:
    return [q for q in folder.rglob("*") if q.is_file() and q.relative_to(folder).as_posix() != MANIFEST]


def file_digests(folder: Path) -> dict[str, dict]:
    """``{relative path: {"bytes": size, "sha256": hex}}`` of every file of an artifact folder but its manifest."""
    out = {}
    for p in _artifact_files(folder):
        fh = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                fh.update(chunk)
        out[p.relative_to(folder).as_posix()] = {"bytes": p.stat().st_size, "sha256": fh.hexdigest()}
    return out


def combined_hash(digests: Mapping[str, Mapping]) -> str:
    """The content hash of an artifact from its files' digests: by relative path (in path order) and bytes."""
    h = hashlib.sha256()
    for rel in sorted(digests, key=lambda r: PurePosixPath(r).parts):
        h.update(rel.encode() + b"\0")
        h.update(bytes.fromhex(digests[rel]["sha256"]))
    return h.hexdigest()


def hash_files(folder: Path) -> str:
    """Content hash of a folder: every file but the manifest, by relative path and bytes."""
    return combined_hash(file_digests(folder))


def _write_failure(e: OSError) -> str:
    """Why a write failed, in words (pyarrow's errors carry the errno only in their text)."""
    text = str(e)
    if e.errno == errno.EROFS or "Read-only file system" in text:
        return "the file system is read-only"
    if e.errno == errno.ENOSPC or "No space left" in text:
        return "no space left on the device"
    if e.errno in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return "permission denied"
    return e.strerror or text


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> "Store":
        """``--store DIR``, else ``$GRM_STORE``, else ``./store``."""
        return cls(path or os.environ.get("GRM_STORE") or "store")

    # ---- locations -----------------------------------------------------------------------------------
    def _kind_dir(self, kind: str, name: str) -> Path:
        if kind not in KINDS:
            raise StoreError(f"unknown artifact kind {kind!r}")
        return self.root / kind / name

    def work_dir(self, stage: str, key: str) -> Path:
        """Scratch space for resumable work of one stage run (keyed by its cache key)."""
        d = self.root / "work" / stage / key
        d.mkdir(parents=True, exist_ok=True)
        return d

    def prefect_dir(self) -> Path:
        d = self.root / ".prefect"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _staging(self) -> Path:
        d = self.root / ".tmp" / uuid.uuid4().hex
        try:
            d.mkdir(parents=True)
        except OSError as e:
            raise StoreError(f"cannot write to store {self.root}: {_write_failure(e)} ({d.parent})") from None
        return d

    # ---- reading -------------------------------------------------------------------------------------
    def _artifact_folders(self, kind: str, name: str) -> list[Path]:
        """The published artifact folders of one name, oldest first. Anything else there is named and ignored."""
        d = self._kind_dir(kind, name)
        if not d.is_dir():
            return []
        folders = []
        for a in sorted(d.iterdir()):
            if a.is_dir() and ARTIFACT_ID.fullmatch(a.name):
                folders.append(a)
            elif (a.as_posix(), a.lstat().st_mtime_ns) not in _WARNED:
                _WARNED.add((a.as_posix(), a.lstat().st_mtime_ns))
                log.warning("%s '%s': ignoring %s, which is not a published artifact (a stray or staging folder or "
                            "file; remove it)", kind[:-1], name, a)
        return folders

    def _ref(self, kind: str, name: str, folder: Path) -> ArtifactRef:
        """The reference of an artifact folder, from its manifest (CorruptArtifact when it has none readable)."""
        try:
            man = json.loads((folder / MANIFEST).read_text())
            return ArtifactRef(kind, name, str(folder), man["content_hash"], man.get("rows"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            what = "missing" if isinstance(e, FileNotFoundError) else f"unreadable ({type(e).__name__}: {e})"
            raise CorruptArtifact(folder, [ArtifactProblem(kind, name, folder.name, MANIFEST, what)]) from None

    def list(self, kind: str, name: str) -> list[ArtifactRef]:
        """Published artifacts with a readable manifest, oldest first (unchecked: ``newest`` checks)."""
        refs = []
        for a in self._artifact_folders(kind, name):
            try:
                refs.append(self._ref(kind, name, a))
            except CorruptArtifact:
                continue
        return refs

    def newest(self, kind: str, name: str) -> ArtifactRef | None:
        """The newest artifact, checked (``check``): CorruptArtifact when it is bad, never an older one instead."""
        folders = self._artifact_folders(kind, name)
        if not folders:
            return None
        return self.check(self._ref(kind, name, folders[-1]))

    def artifact(self, location: str | Path) -> ArtifactRef:
        """The artifact of this store at ``location`` (``kind/name/id``, or a path ending so, e.g. one recorded in
        another copy of the store), checked. NoArtifact when it is not there."""
        kind, name, art = PurePosixPath(Path(location).as_posix()).parts[-3:]
        folder = self._kind_dir(kind, name) / art
        if not folder.is_dir():
            raise NoArtifact(f"{kind[:-1]} '{name}' has no artifact {art} in store {self.root}")
        return self.check(self._ref(kind, name, folder))

    def rebase(self, ref: ArtifactRef) -> ArtifactRef:
        """``ref`` pointing into this store: references recorded before the store was moved or copied name the
        same artifact (same id, so same content) at its old place."""
        if ref.kind not in KINDS:
            return ref  # external data, models and endpoints are not in the store
        kind, name, art = Path(ref.path).parts[-3:]
        return replace(ref, path=str(self._kind_dir(kind, name) / art))

    def location(self, ref: ArtifactRef) -> str:
        """``kind/name/id``: where an artifact is, relative to the store (what survives moving the store)."""
        return "/".join(Path(ref.path).parts[-3:])

    def problems(self, ref: ArtifactRef, full: bool | None = None) -> list[ArtifactProblem]:
        """What is wrong with an artifact (empty when nothing). The files listed by the manifest and their sizes
        are always checked; ``full`` hashes every byte too (None: when the artifact is small and not yet hashed
        in this process)."""
        folder = Path(ref.path)

        def bad(file: str, what: str) -> ArtifactProblem:
            return ArtifactProblem(ref.kind, ref.name, folder.name, file, what)

        if not folder.is_dir():
            return [bad("", f"the artifact folder {folder} is missing")]
        try:
            man = json.loads((folder / MANIFEST).read_text())
            recorded = man["content_hash"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            return [bad(MANIFEST, "missing" if isinstance(e, FileNotFoundError) else f"unreadable ({type(e).__name__})")]
        if not folder.name.endswith("-" + recorded[:12]) or recorded != ref.content_hash:
            return [bad(MANIFEST, f"its content hash {recorded[:12]}... does not match the artifact id "
                                  f"{folder.name} (referenced as {ref.content_hash[:12]}...)")]
        on_disk = {p.relative_to(folder).as_posix(): p.stat() for p in _artifact_files(folder)}
        listed = man.get("files")  # None in manifests written before files were listed: the full hash decides
        found: list[ArtifactProblem] = []
        if listed is not None:
            for rel in sorted(set(listed) - set(on_disk)):
                found.append(bad(rel, "missing (the manifest lists it)"))
            for rel in sorted(set(on_disk) - set(listed)):
                found.append(bad(rel, "not in the manifest (a stray or half-written file)"))
            for rel in sorted(set(listed) & set(on_disk)):
                size, want = on_disk[rel].st_size, listed[rel]["bytes"]
                if size != want:
                    found.append(bad(rel, f"{size} bytes, the manifest records {want} "
                                          f"({'truncated' if size < want else 'grown'})"))
        for d in (q for q in folder.rglob("*") if q.is_dir() and not any(q.iterdir())):
            found.append(bad(d.relative_to(folder).as_posix() + "/", "an empty folder not in the manifest"))
        if found:
            return found
        signature = tuple(sorted((rel, st.st_size, st.st_mtime_ns) for rel, st in on_disk.items()))
        if full is None:
            full = sum(st.st_size for st in on_disk.values()) <= VERIFY_ON_READ_BYTES and \
                _HASHED.get(str(folder)) != signature
        if not full:
            return []
        digests = file_digests(folder)
        if listed is not None:
            found = [bad(rel, "its bytes differ from the sha256 the manifest records")
                     for rel in sorted(digests) if digests[rel]["sha256"] != listed[rel]["sha256"]]
        if not found and combined_hash(digests) != recorded:
            found = [bad(MANIFEST if listed is not None else "(files)",
                         "the files do not match the manifest's content hash")]
        if not found:
            _HASHED[str(folder)] = signature
        return found

    def check(self, ref: ArtifactRef) -> ArtifactRef:
        """``ref`` when ``problems`` finds nothing, else CorruptArtifact naming table, artifact and file."""
        found = self.problems(ref)
        if found:
            raise CorruptArtifact(Path(ref.path), found)
        return ref

    def require(self, kind: str, name: str, hint: str = "") -> ArtifactRef:
        ref = self.newest(kind, name)
        if ref is None:
            raise NoArtifact(f"{kind[:-1]} '{name}' has no artifact yet in store {self.root}" + (f" ({hint})" if hint else ""))
        return ref

    def table(self, name: str) -> ArtifactRef | None:
        return self.newest("tables", name)

    def manifest(self, ref: ArtifactRef) -> dict:
        return json.loads((Path(ref.path) / MANIFEST).read_text())

    def parquet_files(self, ref: ArtifactRef) -> list[str]:
        """The Parquet parts of a table artifact, once ``check`` has passed."""
        return sorted(str(p) for p in Path(self.check(ref).path).glob("*.parquet"))

    def read_table(self, ref: ArtifactRef, columns: Sequence[str] | None = None) -> pa.Table:
        schema = schema_for(ref.name)
        parts = [pq.read_table(p, columns=columns) for p in self.parquet_files(ref)]
        if not parts:
            return schema.empty_table() if columns is None else schema.empty_table().select(list(columns))
        return pa.concat_tables(parts)

    def iter_batches(self, ref: ArtifactRef, batch_size: int = 8192, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        for p in self.parquet_files(ref):
            yield from pq.ParquetFile(p).iter_batches(batch_size=batch_size, columns=columns)

    def read_rows(self, ref: ArtifactRef) -> list[dict]:
        return self.read_table(ref).to_pylist()

    # ---- writing -------------------------------------------------------------------------------------
    def writer(self, table: str, **manifest: Any) -> "TableWriter":
        return TableWriter(self, table, **manifest)

    def write_table(self, table: str, rows: Iterable[Mapping] | pa.Table, **manifest: Any) -> ArtifactRef:
        with self.writer(table, **manifest) as w:
            if isinstance(rows, pa.Table):
                w.write_arrow(rows)
            else:
                w.write_rows(rows)
        return w.ref

    def publish_folder(self, kind: str, name: str, folder: Path, **manifest: Any) -> ArtifactRef:
        """Publish a folder written by the caller inside ``staging_folder()`` (models, plots)."""
        return self._publish(kind, name, Path(folder), rows=None, **manifest)

    def staging_folder(self) -> Path:
        """A fresh private folder inside the store (same filesystem, so publishing is a rename)."""
        return self._staging()

    def _publish(
        self,
        kind: str,
        name: str,
        staged: Path,
        *,
        rows: int | None,
        config_hash: str | None = None,
        input_hashes: Mapping[str, str] | None = None,
        code_version: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        try:
            digests = file_digests(staged)
            content = combined_hash(digests)
            man = {
                "kind": kind,
                "name": name,
                "schema_version": SCHEMA_VERSION if kind == "tables" else None,
                "rows": rows,
                "content_hash": content,
                "files": digests,
                "config_hash": config_hash,
                "input_hashes": dict(input_hashes or {}),
                "code_version": code_version,
                "library_versions": library_versions(),
                "created_at": datetime.now(timezone.utc).isoformat(),
                "extra": dict(extra or {}),
            }
            (staged / MANIFEST).write_text(json.dumps(man, indent=2, sort_keys=True))
            for p in staged.rglob("*"):
                if p.is_file():
                    with open(p, "rb") as f:
                        os.fsync(f.fileno())
            dest_dir = self._kind_dir(kind, name)
            dest_dir.mkdir(parents=True, exist_ok=True)
            dest = dest_dir / f"{_now_id()}-{content[:12]}"
            failpoints.reached("store.publish", name)
            os.rename(staged, dest)  # atomic on one filesystem: the artifact appears whole or not at all
        except OSError as e:
            shutil.rmtree(staged, ignore_errors=True)
            raise self.write_error(kind, name, e) from e
        _fsync_dir(dest_dir)
        failpoints.reached("store.published", name)
        _HASHED[str(dest)] = tuple(sorted((p.relative_to(dest).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                                          for p in _artifact_files(dest)))  # just hashed
        return ArtifactRef(kind, name, str(dest), content, rows)

    def write_error(self, kind: str, name: str, e: OSError) -> StoreError:
        """A failed write (read-only store, full disk) as one line: nothing was published."""
        return StoreError(f"cannot write {kind[:-1]} '{name}' to store {self.root}: {_write_failure(e)}; nothing "
                          f"was published and its previous artifact is unchanged")

    # ---- integrity of the whole store -----------------------------------------------------------------
    def verify(self) -> "StoreReport":
        """Every artifact hashed in full against its manifest, plus what lies beside the artifacts and, when no
        writer holds the lock, staging folders left by writers that died."""
        report = StoreReport(self.root)
        for kind in KINDS:
            top = self.root / kind
            for named in sorted(top.iterdir()) if top.is_dir() else []:
                for entry in sorted(named.iterdir()) if named.is_dir() else [named]:
                    if not (entry.is_dir() and ARTIFACT_ID.fullmatch(entry.name)):
                        report.problems.append(ArtifactProblem(kind, named.name, entry.name, "",
                                                               "not a published artifact (a stray or staging folder or file)"))
                        continue
                    report.artifacts += 1
                    try:
                        ref = self._ref(kind, named.name, entry)
                    except CorruptArtifact as e:
                        report.problems += e.problems
                        continue
                    report.bytes += sum(q.stat().st_size for q in _artifact_files(entry))
                    report.problems += self.problems(ref, full=True)
        staging = sorted((self.root / ".tmp").iterdir()) if (self.root / ".tmp").is_dir() else []
        if staging:
            report.writer = self.holder()
            if report.writer is None:
                report.problems += [ArtifactProblem(".tmp", "", d.name, "", "left by a writer that died (never "
                                                    "read; the next writer of the store removes it)") for d in staging]
        return report

    # ---- the writers' lock ---------------------------------------------------------------------------
    @contextmanager
    def lock(self, command: str, wait_s: float = 0.0, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the store's lock for the block: one writer at a time. Waits up to ``wait_s`` seconds for a holder
        to finish (``on_wait`` hears once who it is), then raises StoreBusy naming it. Re-entrant within a
        process (``grm run`` holds it around the flow, which takes it too). A read-only store raises StoreError."""
        key = str(self.root)
        with _LOCKS_GUARD:
            held = _LOCKS.get(key)
            if held is not None:
                held[1] += 1
        if held is not None:
            try:
                yield
            finally:
                with _LOCKS_GUARD:
                    held[1] -= 1
            return
        path = self.root / LOCK_FILE
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot lock store {self.root}: {_write_failure(e)} ({path})") from None
        acquired = False
        try:
            deadline, told = time.monotonic() + wait_s, False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    busy = f"store busy: {self.root} is held by {self._holder_text(fd)}"
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise StoreBusy(f"{busy}; waited {wait_s:.0f}s (--wait SECONDS waits longer)") from None
                    if on_wait is not None and not told:
                        on_wait(f"{busy}; waiting up to {wait_s:.0f}s for it to finish")
                        told = True
                    time.sleep(min(0.2, left))
            acquired = True
            holder = {"pid": os.getpid(), "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "command": command}
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(holder).encode() + b"\n", 0)
            except OSError:
                pass  # a full disk: the lock holds all the same, only the "held by" line is poorer
            with _LOCKS_GUARD:
                _LOCKS[key] = [fd, 0]
            self._clear_staging()
            yield
        finally:
            if acquired:
                with _LOCKS_GUARD:
                    _LOCKS.pop(key, None)
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            os.close(fd)  # releases the flock

    @staticmethod
    def _holder_text(fd: int) -> str:
        try:
            h = json.loads(os.pread(fd, 4096, 0))
            return f"pid {h['pid']} since {h['since']} ({h['command']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process (that has not recorded itself yet)"

    def holder(self) -> str | None:
        """Who holds the lock ("pid N since T (command)"), or None when nobody does."""
        path = self.root / LOCK_FILE
        if str(self.root) in _LOCKS:
            return f"pid {os.getpid()} (this process)"
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            return self._holder_text(fd)
        finally:
            os.close(fd)  # also drops the shared probe

    def _clear_staging(self) -> None:
        """Under the lock no writer is staging: whatever is in .tmp/ was left by one that died."""
        tmp = self.root / ".tmp"
        for d in sorted(tmp.iterdir()) if tmp.is_dir() else []:
            log.warning("store %s: removing staging folder .tmp/%s, left by a writer that died", self.root, d.name)
            shutil.rmtree(d, ignore_errors=True)

    def gc_tmp(self, older_than_s: float = 3600) -> int:
        """Remove staging folders left by writers that died (older than ``older_than_s``)."""
        tmp = self.root / ".tmp"
        n = 0
        if tmp.is_dir():
            for d in tmp.iterdir():
                if time.time() - d.stat().st_mtime > older_than_s:
                    shutil.rmtree(d, ignore_errors=True)
                    n += 1
        return n


_LOCKS: dict[str, list] = {}  # store root -> [lock fd, nesting depth] held by this process
_LOCKS_GUARD = threading.Lock()


@dataclass
class StoreReport:
    """What ``Store.verify`` found."""

    root: Path
    artifacts: int = 0
    bytes: int = 0
    problems: list[ArtifactProblem] = field(default_factory=list)
    writer: str | None = None  # who held the lock while staging folders were seen (so they were not debris)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        bad = len({(p.kind, p.name, p.artifact) for p in self.problems})
        state = "all intact" if self.ok else f"{len(self.problems)} problem(s) in {bad} artifact(s) or folder(s)"
        busy = f"; a writer is at work ({self.writer}), its staging folders not checked" if self.writer else ""
        return f"store {self.root}: {self.artifacts} artifacts hashed ({self.bytes / 1e6:.2f} MB), {state}{busy}"


class TableWriter:
    """Streams rows into Parquet parts without holding the table in memory; publishes atomically on exit.

    An exception inside the ``with`` block discards everything written (nothing is published).
    """

    def __init__(self, store: Store, table: str, *, part_rows: int = DEFAULT_PART_ROWS, **manifest: Any):
        self.store, self.table, self.schema = store, table, schema_for(table)
        self.part_rows = part_rows
        self.manifest = manifest
        self.rows = 0
        self.ref: ArtifactRef | None = None
        self._dir: Path | None = None
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0
        self._parts = 0

    def __enter__(self) -> "TableWriter":
        self._dir = self.store._staging()
        return self

    def _part_path(self) -> Path:
        return self._dir / f"part-{self._parts:05d}.parquet"

    def _open_part(self) -> None:
        self._writer = pq.ParquetWriter(self._part_path(), self.schema, compression="zstd")
        self._parts += 1
        self._part_rows = 0

    def _close_part(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        if batch.schema != self.schema:
            batch = batch.select(self.schema.names).cast(self.schema)
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None:
                self._open_part()
            take = min(batch.num_rows - offset, self.part_rows - self._part_rows)
            chunk = batch.slice(offset, take)
            if isinstance(chunk, pa.RecordBatch):
                self._writer.write_batch(chunk)
            else:
                self._writer.write_table(chunk)
            failpoints.reached("store.write", self.table)  # the part is open: no footer yet
            offset += take
            self._part_rows += take
            self.rows += take
            if self._part_rows >= self.part_rows:
                self._close_part()

    def write_arrow(self, table: pa.Table) -> None:
        for b in table.to_batches():
            self.write_batch(b)

    def write_rows(self, rows: Iterable[Mapping], chunk: int = 4096) -> None:
        buf: list[Mapping] = []
        for r in rows:
            buf.append(r)
            if len(buf) >= chunk:
                self.write_batch(pa.RecordBatch.from_pylist(buf, schema=self.schema))
                buf = []
        if buf:
            self.write_batch(pa.RecordBatch.from_pylist(buf, schema=self.schema))

    def add_parquet_file(self, src: str | Path) -> None:
        """Take a finished Parquet file (e.g. a resumable shard) as a part of its own, as it is."""
        self._close_part()
        rows = pq.ParquetFile(src).metadata.num_rows
        dest = self._part_path()
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
        self._parts += 1
        self.rows += rows

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._close_part()
            if exc_type is None and self._parts == 0:  # an empty table still carries its schema
                pq.write_table(self.schema.empty_table(), self._part_path(), compression="zstd")
                self._parts += 1
        except OSError as e:
            exc_type, exc = type(e), e
        if exc_type is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            if isinstance(exc, OSError):  # a full disk or a read-only store: say so in one line
                raise self.store.write_error("tables", self.table, exc) from exc
            return
        self.ref = self.store._publish("tables", self.table, self._dir, rows=self.rows, **self.manifest)


def write_parquet_atomic(table: pa.Table, path: str | Path) -> None:
    """Write one Parquet file so that it appears complete or not at all (for resumable shards)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_shard(path: str | Path, table: str, rows: Sequence[Mapping]) -> None:
    """Rows of ``table``'s schema as one Parquet file that appears complete or not at all."""
    write_parquet_atomic(pa.Table.from_pylist(list(rows), schema=schema_for(table)), path)


def parquet_rows(path: str | Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def read_parquet_rows(path: str | Path) -> list[dict]:
    return pq.read_table(path).to_pylist()
