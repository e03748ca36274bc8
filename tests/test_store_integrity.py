"""Corruption is detected, never trusted (docs/design.md, "Storage"): a truncated part, a manifest whose content
hash does not match, a missing file, a stray file or folder are each named (table, artifact, file) on read and
by `grm store verify`; a stage whose cached output is bad reruns; a read-only store and a full disk give one
clear line and leave the previous artifact intact; one writer at a time holds the store's lock."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import CorruptArtifact, Store, StoreBusy, StoreError
from tests.test_store import result_rows

pytestmark = pytest.mark.reliability  # the reliability campaign's CI subset (RELIABILITY.md)

ROOT = Path(__file__).resolve().parents[1]
SHRINK = ["data.miniworld.train_items=20", "data.miniworld.eval_items=10"]


def grm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def two_artifacts(root: Path) -> tuple[Store, object, object]:
    store = Store(root)
    return store, store.write_table("results", result_rows(20)), store.write_table("results", result_rows(30, 9.0))


def part(ref) -> Path:
    return Path(ref.path) / "part-00000.parquet"


# ---- each kind of corruption, named on read ------------------------------------------------------------------
def truncate(ref) -> str:
    p = part(ref)
    p.write_bytes(p.read_bytes()[:-50])
    return "part-00000.parquet: .* bytes, the manifest records .* \\(truncated\\)"


def tamper_manifest_hash(ref) -> str:
    m = Path(ref.path) / "manifest.json"
    m.write_text(m.read_text().replace(ref.content_hash, "0" * 64))
    return "manifest.json: its content hash 000000000000... does not match the artifact id"


def delete_part(ref) -> str:
    part(ref).unlink()
    return "part-00000.parquet: missing \\(the manifest lists it\\)"


def stray_file(ref) -> str:
    (Path(ref.path) / ".part-00001.parquet.1234.tmp").write_bytes(b"half a part")
    return "\\.part-00001\\.parquet\\.1234\\.tmp: not in the manifest"


def stray_tmp_folder(ref) -> str:
    (Path(ref.path) / ".tmp").mkdir()
    return "\\.tmp/: an empty folder not in the manifest"


def flip_a_byte(ref) -> str:
    p = part(ref)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the content hash sees it
    p.write_bytes(bytes(data))
    return "part-00000.parquet: its bytes differ from the sha256 the manifest records"


CORRUPTIONS = [truncate, tamper_manifest_hash, delete_part, stray_file, stray_tmp_folder, flip_a_byte]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_each_corruption_is_named_on_read_and_by_verify(tmp_path, corrupt):
    store, older, newest = two_artifacts(tmp_path / "store")
    where = corrupt(newest)
    artifact = Path(newest.path).name
    with pytest.raises(CorruptArtifact, match=f"table 'results', artifact {artifact}, file {where}"):
        Store(store.root).newest("tables", "results")  # the newest is bad: an error, never the older one instead
    with pytest.raises(CorruptArtifact):
        store.read_table(newest)  # a reference held from before is refused too
    assert store.read_table(older).num_rows == 20  # the others are untouched and readable
    proc = grm("store", "verify", "--store", str(store.root))
    assert proc.returncode == 1
    assert f"BAD table 'results', artifact {artifact}, file " in proc.stderr
    assert "1 problem(s) in 1 artifact(s)" in proc.stdout


def test_verify_passes_an_intact_store_with_one_line(tmp_path):
    store, _, _ = two_artifacts(tmp_path / "store")
    folder = store.staging_folder()
    (folder / "scaling.png").write_bytes(b"png")
    store.publish_folder("files", "plots", folder)
    proc = grm("store", "verify", "--store", str(store.root))
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(f"store {re.escape(str(store.root))}: 3 artifacts hashed \\(\\d+\\.\\d\\d MB\\), all intact\n",
                        proc.stdout), proc.stdout


def test_a_folder_beside_the_artifacts_is_ignored_and_named(tmp_path, caplog):
    store, _, newest = two_artifacts(tmp_path / "store")
    half_copied = Path(newest.path).with_name(Path(newest.path).name + ".tmp")  # sorts after the newest
    shutil.copytree(newest.path, half_copied)
    with caplog.at_level(logging.WARNING, logger="grm.store"):
        assert store.newest("tables", "results") == newest
    assert f"ignoring {half_copied}, which is not a published artifact" in caplog.text
    proc = grm("store", "verify", "--store", str(store.root))
    assert proc.returncode == 1 and f"artifact {half_copied.name}: not a published artifact" in proc.stderr


def test_staging_left_by_a_dead_writer_is_named_by_verify_and_removed_by_the_next_writer(tmp_path, caplog):
    store, _, newest = two_artifacts(tmp_path / "store")
    debris = store.staging_folder()
    (debris / "part-00000.parquet").write_bytes(b"half")
    proc = grm("store", "verify", "--store", str(store.root))
    assert proc.returncode == 1 and f"staging folder .tmp/{debris.name}: left by a writer that died" in proc.stderr
    with caplog.at_level(logging.WARNING, logger="grm.store"), store.lock("test"):
        pass
    assert not debris.exists() and f"removing staging folder .tmp/{debris.name}" in caplog.text
    assert grm("store", "verify", "--store", str(store.root)).returncode == 0
    assert store.newest("tables", "results") == newest


def test_an_artifact_written_before_manifests_listed_files_is_checked_by_its_content_hash(tmp_path):
    import json

    store, _, newest = two_artifacts(tmp_path / "store")
    m = Path(newest.path) / "manifest.json"
    man = json.loads(m.read_text())
    del man["files"]
    m.write_text(json.dumps(man))
    assert Store(store.root).newest("tables", "results") == newest  # intact: its content hash still matches
    flip_a_byte(newest)
    with pytest.raises(CorruptArtifact, match="file \\(files\\): the files do not match the manifest's content hash"):
        Store(store.root).newest("tables", "results")


# ---- a stage whose cached output is bad reruns; a bad input stops with its name -------------------------------
def test_a_corrupt_cached_output_makes_the_stage_rerun_and_a_corrupt_input_stops_it(tmp_path, caplog):
    from grm.config import load_config
    from tasks.runner import cached_outputs_present, prepare, run_stage
    from tasks.stages import get_stage

    cfg = load_config(ROOT / "configs" / "tiny.yaml", SHRINK)
    store = Store(tmp_path / "store")
    key = prepare(get_stage("curate"), cfg, store, {}).cache_key
    assert not cached_outputs_present(store, "curate", key)  # never run on this store: nothing to reuse
    out = run_stage("curate", cfg, store)
    assert cached_outputs_present(store, "curate", key)
    truncate(out.artifacts["items"])
    with caplog.at_level(logging.WARNING, logger="grm.runner"):
        assert not cached_outputs_present(store, "curate", key)
    assert f"stage curate: rebuilding, its cached output is bad: corrupt artifact: table 'items', artifact " \
           f"{Path(out.artifacts['items'].path).name}, file part-00000.parquet" in caplog.text
    with pytest.raises(CorruptArtifact, match="table 'items'"):
        prepare(get_stage("rft_sample"), cfg, store, {})  # its producer is not in this run: stop, naming it


# ---- a read-only store and a full disk ------------------------------------------------------------------------
@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs made for the test (root only)."""
    d = tmp_path / "fs"
    d.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here: a read-only store and a full disk need a small file system of their own")
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}): needs root or CAP_SYS_ADMIN")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_a_full_disk_gives_one_clear_error_and_keeps_the_previous_artifact(small_fs):
    store = Store(small_fs / "store")
    before = store.write_table("results", result_rows(20))
    big = [{**r, "model": os.urandom(2000).hex()} for r in result_rows(1000)]  # ~2 MB even compressed: > 1 MiB
    with pytest.raises(StoreError, match=f"cannot write table 'results' to store {store.root}: no space left on the "
                                         "device; nothing was published and its previous artifact is unchanged"):
        store.write_table("results", big)
    assert Store(store.root).newest("tables", "results") == before
    assert store.read_table(before).num_rows == 20
    assert not any((store.root / ".tmp").iterdir())  # the half-written staging folder is gone
    assert store.verify().ok


def test_a_read_only_store_gives_one_clear_error_and_stays_readable(small_fs):
    store = Store(small_fs / "store")
    before = store.write_table("results", result_rows(20))
    r = subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot remount the tmpfs read-only: {r.stderr.strip()}")
    with pytest.raises(StoreError, match=f"cannot write to store {store.root}: the file system is read-only"):
        store.write_table("results", result_rows(5))
    data = small_fs.parent / "mine.jsonl"
    data.write_text('{"id": 1, "query": "q", "chosen": "a", "rejected": "b"}\n')
    proc = grm("data", "import", "--format", "generic", "--store", str(store.root), str(data))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"grm data import: cannot lock store {store.root}: the file system is read-only " \
                                  f"({store.root / '.lock'})"
    assert Store(store.root).newest("tables", "results") == before and store.read_table(before).num_rows == 20
    verify = grm("store", "verify", "--store", str(store.root))
    assert verify.returncode == 0 and "all intact" in verify.stdout


# ---- the writers' lock ----------------------------------------------------------------------------------------
HOLDER = r"""
import sys, time
from storage import Store
with Store(sys.argv[1]).lock("grm run --only curate"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(store: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(store), str(seconds)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_told_who_holds_the_store_and_the_lock_dies_with_its_holder(tmp_path):
    root = tmp_path / "store"
    holder = hold(root, 120)
    try:
        told = []
        t0 = time.monotonic()
        with pytest.raises(StoreBusy, match=f"store busy: {root} is held by pid {holder.pid} since "
                                            f"\\S+ \\(grm run --only curate\\); waited 1s"):
            with Store(root).lock("second", wait_s=1.0, on_wait=told.append):
                pass
        assert time.monotonic() - t0 >= 1.0 and len(told) == 1 and f"pid {holder.pid}" in told[0]
        assert Store(root).holder().startswith(f"pid {holder.pid} since ")
    finally:
        holder.send_signal(signal.SIGKILL)  # a holder that dies without cleaning up leaves no stale lock
        holder.wait()
    assert Store(root).holder() is None
    with Store(root).lock("after the kill", wait_s=0):
        with Store(root).lock("nested, same process", wait_s=0):  # re-entrant: grm run holds it around the flow
            assert Store(root).holder() == f"pid {os.getpid()} (this process)"


def test_a_waiting_writer_gets_the_store_when_the_holder_finishes(tmp_path):
    root = tmp_path / "store"
    holder = hold(root, 1.5)
    t0, told = time.monotonic(), []
    with Store(root).lock("waiter", wait_s=60, on_wait=told.append):
        assert time.monotonic() - t0 >= 1.4  # it got the lock only once the holder had finished
    assert len(told) == 1 and "waiting up to 60s" in told[0] and f"pid {holder.pid}" in told[0]
    holder.wait()


def test_grm_sql_names_a_corrupt_table_in_one_line(tmp_path):
    store, _, newest = two_artifacts(tmp_path / "store")
    truncate(newest)
    proc = grm("sql", "--store", str(store.root), "select count(*) from results")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"grm sql: corrupt artifact: table 'results', artifact {Path(newest.path).name}, "
                                  "file part-00000.parquet")
