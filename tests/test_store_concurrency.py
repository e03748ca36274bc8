"""Two runs and an import on one store at once (docs/design.md, "Storage"): one writer holds the store's lock,
a second that will not wait fails at once naming the holder, one that waits gets the store when the holder is
done; the store verifies clean and holds no mixed artifact. Then a corrupt cached output is rebuilt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Store
from tests.test_store_integrity import SHRINK, truncate

pytestmark = pytest.mark.reliability  # the reliability campaign's CI subset (RELIABILITY.md)

ROOT = Path(__file__).resolve().parents[1]


def start(*args: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def curate(store: Path, home: Path, *extra: str) -> subprocess.Popen:
    sets = [x for o in SHRINK for x in ("--set", o)]
    return start("run", "--config", "configs/tiny.yaml", "--store", str(store), "--only", "curate", *sets, *extra,
                 home=home)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def holder_pid(store: Path) -> int | None:
    try:
        return json.loads((store / ".lock").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow  # three grm runs: in the full suite, not in make test-reliability
def test_two_runs_and_an_import_at_once_then_a_corrupt_output_is_rebuilt(tmp_path):
    from grm.config import load_config
    from tasks.runner import run_stage

    store_dir, home = tmp_path / "store", tmp_path / "prefect"
    mine = tmp_path / "mine.jsonl"
    mine.write_text('{"id": "m1", "query": "Which is larger, 7 or 3?", "chosen": "7", "rejected": "3"}\n')

    first = curate(store_dir, home)
    deadline = time.monotonic() + 120
    while holder_pid(store_dir) != first.pid:  # read the lock file only: probing the lock could race the run
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    second = curate(store_dir, home, "--wait", "0")
    importer = start("data", "import", "--format", "generic", "--name", "mine", "--store", str(store_dir), "--wait",
                     "300", str(mine), home=home)

    rc, _, err = finish(second)
    assert rc == 75, err
    assert f"grm run: store busy: {store_dir} is held by pid {first.pid} since " in err
    assert "(grm run --config configs/tiny.yaml --store" in err and "waited 0s" in err
    rc, out, err = finish(first)
    assert rc == 0 and "curate  Completed" in out, err[-3000:]
    rc, out, err = finish(importer)
    assert rc == 0, err
    assert f"grm data import: store busy: {store_dir} is held by pid {first.pid}" in err and "waiting up to 300s" in err

    store = Store(store_dir)
    verify = subprocess.run([sys.executable, "-m", "flows.cli", "store", "verify", "--store", str(store_dir)],
                            cwd=ROOT, capture_output=True, text=True)
    assert verify.returncode == 0 and "all intact" in verify.stdout, verify.stderr
    assert len(store.list("tables", "items")) == 1 and len(store.list("tables", "imports")) == 1
    solo = run_stage("curate", load_config(ROOT / "configs" / "tiny.yaml", SHRINK), Store(tmp_path / "solo"))
    assert store.table("items").content_hash == solo.artifacts["items"].content_hash  # what a run alone writes
    assert [r["name"] for r in store.read_rows(store.table("imports"))] == ["mine"]

    # the import is curated by the next run; then its output is corrupted, and the run after rebuilds it
    rc, out, err = finish(curate(store_dir, home))
    assert rc == 0 and "curate  Completed" in out, err[-3000:]
    good = store.table("items")
    assert any(i["source"] == "mine" for i in store.read_rows(good))
    truncate(good)
    rc, out, err = finish(curate(store_dir, home))
    assert rc == 0 and "curate  Completed" in out, err[-3000:]  # not Cached: its cached output is bad
    assert f"rebuilding, its cached output is bad: corrupt artifact: table 'items', artifact {Path(good.path).name}" \
           in out + err
    rebuilt = Store(store_dir).table("items")
    assert rebuilt.path != good.path and rebuilt.content_hash == good.content_hash
    verify = subprocess.run([sys.executable, "-m", "flows.cli", "store", "verify", "--store", str(store_dir)],
                            cwd=ROOT, capture_output=True, text=True)
    assert verify.returncode == 1 and f"artifact {Path(good.path).name}, file part-00000.parquet" in verify.stderr
