"""Pipeline benchmark (not a test): a whole run, each stage's wall time and peak memory, the share of time
outside model work, and the cached rerun.

    .venv/bin/python -m bench.pipeline [--config configs/tiny.yaml] [--store DIR] [--set PATH=VALUE ...] [--record]

Runs `grm run --config CONFIG` twice in fresh processes (the second must be all Cached) while sampling the
resident memory of the whole process tree every 0.2 s; a stage's peak is the highest sample between the end of
the stage before it and its own end (the flow's "stage NAME: STATE in S" line, printed as it comes). With
``--store`` an interrupted run resumes there: its finished stages are Cached. Model work is the time spent generating
(the shard logs' start/end) and training (trainer and bootstrap runtimes from the model manifests);
everything else (process start-up, Prefect, data curation, prompt building, parsing, Parquet, DuckDB) is
"outside model work". ``--record`` appends the table to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from storage import Store

ROOT = Path(__file__).resolve().parents[1]


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(stat[1]), []).append(int(d.name))
            rss[int(d.name)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


STAGE_LINE = re.compile(r"stage (\w+): (\w+) in ([\d.]+)s")


def run(config: str, store: Path, home: Path, overrides: list[str]) -> tuple[float, int, str, list[tuple]]:
    """One `grm run`: wall seconds, peak bytes of the process tree, its output, and per stage
    (name, state, seconds, peak bytes)."""
    env = {**os.environ, "PREFECT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "flows.cli", "run", "--config", config, "--store", str(store)]
    cmd += [x for o in overrides for x in ("--set", o)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = stage_peak = 0
    done = threading.Event()

    def watch():
        nonlocal peak, stage_peak
        while not done.is_set():
            rss = tree_rss(proc.pid)
            peak, stage_peak = max(peak, rss), max(stage_peak, rss)
            time.sleep(0.2)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out, stages = [], []
    for line in proc.stdout:
        out.append(line)
        if m := STAGE_LINE.search(line):
            stages.append((m[1], m[2], float(m[3]), stage_peak))
            stage_peak = 0
            print(f"  {m[1]:<14} {m[2]:<10} {float(m[3]):8.1f} s  peak {stages[-1][3] / 2**30:.2f} GiB", flush=True)
    proc.wait()
    done.set()
    t.join()
    if proc.returncode:
        raise SystemExit(f"grm run failed:\n{''.join(out)[-4000:]}")
    return time.perf_counter() - t0, peak, "".join(out), stages


def generation_by_stage(store: Store, since: float, until: float) -> dict[str, float]:
    """Seconds spent inside the sampling shards (the backend generating, from the shard logs), per stage, of the
    shards sampled between ``since`` and ``until`` (epoch seconds): a resumed or cached stage's older shards, and
    those of an interrupted attempt under another work key, are not this run's work."""
    out: dict[str, float] = {}
    for log in (store.root / "work").rglob("shards.jsonl"):
        stage = log.relative_to(store.root / "work").parts[0]
        for line in log.read_text().splitlines():
            e = json.loads(line)
            if since <= e["started"] and e["ended"] <= until:
                out[stage] = out.get(stage, 0.0) + e["ended"] - e["started"]
    return out


def model_seconds(store: Store, since: float, until: float, stages: list[tuple]) -> dict[str, float]:
    """Generation seconds (the shard logs of the run between ``since`` and ``until``) and training seconds (the
    wall of the stages that train a model and ran, not Cached, less their own sampling shards, e.g. rl's
    too-easy filter: the manifests keep losses, not run times)."""
    from tasks.stages import graph

    gen = generation_by_stage(store, since, until)
    trainers = {graph().producers[name][0].name for name in graph().model_artifacts}
    train = sum(secs - gen.get(name, 0.0) for name, state, secs, _ in stages if name in trainers and state == "Completed")
    return {"generation": sum(gen.values()), "training": train}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/tiny.yaml")
    ap.add_argument("--store")
    ap.add_argument("--set", action="append", dest="overrides", default=[], metavar="PATH=VALUE")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(args.store or Path(tmp) / "store")
        home = Path(tmp) / "prefect"
        since = time.time()
        first_s, first_peak, _, stages = run(args.config, store_dir, home, args.overrides)
        until = time.time()
        store = Store(store_dir)
        model = model_seconds(store, since, until, stages)
        by_stage = generation_by_stage(store, since, until)
        second_s, second_peak, out, _ = run(args.config, store_dir, home, args.overrides)
        summary = out.split("\nrun ", 1)[-1]
        states = re.findall(r"^\s+(\w+)\s+(\w+)$", summary, re.M)
        cached = f"{sum(st == 'Cached' for _, st in states)} of {len(states)} stages Cached"
    work = model["generation"] + model["training"]
    rows = [
        ("first run, wall", f"{first_s:.1f} s"),
        ("first run, peak memory (process tree)", f"{first_peak / 2**30:.2f} GiB"),
        ("model work: generation (sampling shards) / training (training stages' wall)", f"{model['generation']:.1f} s / {model['training']:.1f} s"),
        ("outside model work (start-up, Prefect, curation, parsing, storage, evaluation)",
         f"{first_s - work:.1f} s ({100 * (first_s - work) / first_s:.0f}%)"),
        ("identical rerun, wall (every stage Cached)", f"{second_s:.1f} s ({100 * second_s / first_s:.1f}% of the first run; {cached})"),
    ]
    rows += [(f"stage {name} ({state}): wall / peak memory" + (" / inside sampling shards" if name in by_stage else ""),
              f"{secs:.1f} s / {rss / 2**30:.2f} GiB" + (f" / {by_stage[name]:.1f} s" if name in by_stage else ""))
             for name, state, secs, rss in stages]
    for k, v in rows:
        print(f"{k:<85} {v}")
    if args.record:
        with open(ROOT / "BENCHMARKS.md", "a") as f:
            f.write(f"\n### Pipeline: {args.config} ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
                    f"{os.cpu_count()} cores, load {os.getloadavg()[2]:.1f} over the last 15 min)\n\n")
            sets = " ".join(f"--set '{o}'" for o in args.overrides)
            f.write(f"Command: `.venv/bin/python -m bench.pipeline --config {args.config} {sets} --record`\n\n"
                    "| what | value |\n|---|---|\n")
            for k, v in rows:
                f.write(f"| {k} | {v} |\n")


if __name__ == "__main__":
    main()
