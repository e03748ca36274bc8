"""Store fault campaign (not a test): inject corruptions into copies of a store and count how many are caught on
read and named by `Store.verify` (`grm store verify`); then run concurrent writers with and without the store's
lock and count lost updates.

    .venv/bin/python -m bench.store_faults [--trials 40] [--writers 4] [--writes 25] [--seed 0]

Prints markdown tables (the rows of RELIABILITY.md, "Store integrity" and "Concurrent writers").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import tempfile
from pathlib import Path

from storage import CorruptArtifact, Store
from storage.store import MANIFEST, _artifact_files

ROOT = Path(__file__).resolve().parents[1]


def result_rows(n: int, value: float) -> list[dict]:
    return [{"benchmark": "b", "subset": f"s{i % 3}", "method": "voting", "k": 8, "k_meta": None,
             "metric": "accuracy", "value": value + i, "n": i, "model": "grm"} for i in range(n)]


def base_store(root: Path) -> Store:
    """Tables of one and of several parts, a model folder with a subfolder, a files artifact; two of each name."""
    store = Store(root)
    for v in (1.0, 2.0):
        store.write_table("results", result_rows(50, v))
        with store.writer("judgments", part_rows=40) as w:
            w.write_rows([{"item_id": f"i{i}", "model": "grm", "decoding": "sample", "sample_idx": i % 4,
                           "completion": "x" * (i % 97), "parse_status": "ok"} for i in range(150)])
        d = store.staging_folder()
        (d / "config.json").write_text(json.dumps({"v": v}))
        (d / "model.safetensors").write_bytes(random.Random(v).randbytes(20000))
        (d / "tokenizer").mkdir()
        (d / "tokenizer" / "vocab.json").write_text(json.dumps({"a": 1, "v": v}))
        store.publish_folder("models", "grm", d)
        d = store.staging_folder()
        (d / "scaling.png").write_bytes(random.Random(v + 9).randbytes(3000))
        store.publish_folder("files", "plots", d)
    return store


NAMES = [("tables", "results"), ("tables", "judgments"), ("models", "grm"), ("files", "plots")]


# Each injection corrupts the newest artifact of a name and returns the file the report must name.
def truncate(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_artifact_files(folder))
    data = f.read_bytes()
    f.write_bytes(data[: rng.randrange(0, len(data))])
    return f.relative_to(folder).as_posix()


def flip_byte(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_artifact_files(folder))
    data = bytearray(f.read_bytes())
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    f.write_bytes(bytes(data))
    return f.relative_to(folder).as_posix()


def delete_file(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_artifact_files(folder))
    f.unlink()
    return f.relative_to(folder).as_posix()


def stray_file(folder: Path, rng: random.Random) -> str:
    name = rng.choice([".part-00001.parquet.tmp", "part-00099.parquet", "x.tmp"])
    (folder / name).write_bytes(rng.randbytes(rng.randrange(1, 500)))
    return name


def stray_tmp_folder(folder: Path, rng: random.Random) -> str:
    (folder / ".tmp" / "abc").mkdir(parents=True)
    if rng.random() < 0.5:
        (folder / ".tmp" / "abc" / "part.parquet").write_bytes(b"half")
        return ".tmp/abc/part.parquet"
    return ".tmp/abc/"


def tamper_hash(folder: Path, rng: random.Random) -> str:
    m = folder / MANIFEST
    man = json.loads(m.read_text())
    man["content_hash"] = "%064x" % rng.getrandbits(256)
    m.write_text(json.dumps(man))
    return MANIFEST


def garble_manifest(folder: Path, rng: random.Random) -> str:
    m = folder / MANIFEST
    data = m.read_bytes()
    m.write_bytes(data[: rng.randrange(len(data) // 2)])
    return MANIFEST


INJECTIONS = [truncate, flip_byte, delete_file, stray_file, stray_tmp_folder, tamper_hash, garble_manifest]


def corruption_campaign(trials: int, rng: random.Random, tmp: Path) -> list[tuple[str, int, int, int, int]]:
    base = tmp / "base"
    base_store(base)
    assert Store(base).verify().ok
    rows = []
    for inject in INJECTIONS:
        on_read = named = by_verify = false_alarms = 0
        for t in range(trials):
            root = tmp / f"{inject.__name__}-{t}"
            shutil.copytree(base, root)
            kind, name = rng.choice(NAMES)
            folder = Path(Store(root).newest(kind, name).path)
            file = inject(folder, rng)
            try:
                Store(root).newest(kind, name)  # a fresh process's first read
            except CorruptArtifact as e:
                on_read += 1
                named += any(p.artifact == folder.name and (p.file == file or p.file == MANIFEST) for p in e.problems)
            report = Store(root).verify()
            by_verify += any(p.artifact == folder.name for p in report.problems)
            others = [p for p in report.problems if p.artifact != folder.name]
            false_alarms += bool(others)
            shutil.rmtree(root)
        rows.append((inject.__name__, trials, on_read, named, by_verify, false_alarms))
    return rows


def _writer(root: str, n: int, locked: bool, wid: int) -> None:
    store = Store(root)
    for i in range(n):
        if locked:
            with store.lock(f"bench writer {wid}", wait_s=120):
                _append(store, wid, i)
        else:
            _append(store, wid, i)


def _append(store: Store, wid: int, i: int) -> None:
    prev = store.table("results")
    rows = store.read_rows(prev) if prev else []
    rows.append(result_rows(1, float(wid))[0] | {"n": wid * 100000 + i})
    store.write_table("results", rows)


def concurrency_campaign(writers: int, writes: int, tmp: Path) -> list[tuple[str, int, int, int, bool]]:
    rows = []
    for locked in (True, False):
        root = tmp / f"conc-{locked}"
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_writer, args=(str(root), writes, locked, w)) for w in range(writers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        store = Store(root)
        final = len(store.read_rows(store.table("results")))
        rows.append(("with the lock" if locked else "without (control)", writers * writes, final,
                     writers * writes - final, store.verify().ok))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--writes", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory(prefix="grm-store-faults-") as d:
        tmp = Path(d)
        print("| corruption | injected | caught on read | named (artifact, file) | named by verify | false alarms |")
        print("|---|---|---|---|---|---|")
        for r in corruption_campaign(a.trials, rng, tmp):
            print("| " + " | ".join(map(str, r)) + " |")
        print("\n| writers | appends | rows in the final table | lost updates | verify |")
        print("|---|---|---|---|---|")
        for label, total, final, lost, ok in concurrency_campaign(a.writers, a.writes, tmp):
            print(f"| {a.writers} {label} | {total} | {final} | {lost} | {'intact' if ok else 'BAD'} |")


if __name__ == "__main__":
    main()
