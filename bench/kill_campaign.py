"""Kill `grm run` anywhere, rerun it, compare (issue 19, item 1; RELIABILITY.md). Not a test: a long campaign.

    .venv/bin/python -m bench.kill_campaign [--work DIR] [--seed 0] [--time-chains 2] [--failpoint-chains 2]

The run is tests/test_pipeline.py's shrunk tiny config with small sampling shards (several shards per sampling
call). First an uninterrupted reference run, with every failpoint traced (grm/failpoints.py), and an
uninterrupted control run (the two must agree, or no comparison means anything). Then chains: each chain is a
fresh store on which `grm run` is started again and again, each attempt killed (SIGKILL to the run and every
process it started, as a crash would) at the chain's next kill point, until an attempt completes. Kill points:

- time chains: one kill per stage, at a random moment (uniform over the reference's duration of that stage)
  after the stage starts;
- failpoint chains: one kill per stage at a point drawn from the reference's trace: half way through a Parquet
  part, between a complete staged artifact and its rename (publish), after the rename but before the stage's
  cache entry, after a shard's file but before its log line, half way through a checkpoint.

After each completed chain every published artifact's content hash (the newest of each name) is compared with
the reference's; `runs` (the run log: ids and times) is left out, and `rl_log` is compared without its
wall-clock `seconds` column. Work redone after each kill:

- stages: a stage whose cache entry existed at the kill must be Cached on the next attempt;
- shards: a shard whose file existed at the kill must not be sampled again (its log line appears once);
- checkpoints: a trainer must resume from the last complete checkpoint at the kill (result.json's
  ``resumed_from_step``); the steps between are redone (0 when the kill came after a checkpoint);
- the bootstrap stage has no checkpoints: a kill in it redoes it (reported in seconds).

Prints a per-kill table and the summary; ``--record`` appends them to RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from grm.config import load_config
from storage import Store
from tasks.stages import enabled_stages
from tests.test_pipeline import SMALL

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/tiny.yaml"
OVERRIDES = [*SMALL, "generation.shard_size=4"]  # several shards per sampling call, so a kill can land between them
STAGE_LINE = re.compile(r"stage (\w+): (\w+) in ([\d.]+)s")
VOLATILE = {("tables", "runs")}  # the run log: run ids and times, different on every run by nature
MEASURED_COLUMNS = {"rl_log": ("seconds",)}  # wall-clock seconds per GRPO step: a measurement, compared without


@dataclass
class Attempt:
    rc: int | None
    killed: bool
    seconds: float
    states: dict[str, str]  # stage -> Completed | Cached, as logged
    stage_done_at: dict[str, float]  # stage -> seconds after start its line was logged
    marker: str = ""  # the failpoint the kill landed on


@dataclass
class Kill:
    chain: str
    spec: str  # 'time <stage> +Ns' or the failpoint spec
    stage: str  # the stage running at the kill
    landed: str  # what was in flight, read from the store after the kill
    finished_stages: list[str]
    shards_done: dict[str, tuple[set[int], int]] = field(default_factory=dict)  # work dir -> (shards with a file, log lines)
    checkpoints: dict[str, int] = field(default_factory=dict)  # job dir -> last complete checkpoint step
    stages_redone: list[str] = field(default_factory=list)
    shards_redone: int = 0
    steps_redone: int | None = None
    seconds_redone: float = 0.0


def env_for(home: Path, marker: Path | None, spec: str | None) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2",
           "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    env.pop("GRM_FAILPOINT", None)
    if spec:
        env["GRM_FAILPOINT"] = spec
        env["GRM_FAILPOINT_MARKER"] = str(marker)
    return env


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run and everything it started (trainers and servers run in sessions of their own)."""
    try:
        procs = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)
    proc.wait()


def start_run(store: Path, home: Path, log: Path, marker: Path | None, spec: str | None):
    cmd = [sys.executable, "-m", "flows.cli", "run", "--config", CONFIG, "--store", str(store)]
    for o in OVERRIDES:
        cmd += ["--set", o]
    out = open(log, "a")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env_for(home, marker, spec), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    t0 = time.monotonic()
    done: dict[str, float] = {}
    states: dict[str, str] = {}

    def read():
        for line in proc.stdout:
            out.write(line)
            m = STAGE_LINE.search(line)
            if m:
                done[m.group(1)] = time.monotonic() - t0
                states[m.group(1)] = m.group(2)
        out.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, t0, done, states, reader


def run_attempt(store: Path, home: Path, log: Path, stages: list[str], kill: tuple | None,
                ref_times: dict[str, tuple[float, float]]) -> Attempt:
    """One `grm run`; ``kill``: ('time', stage, fraction) or ('failpoint', spec) or None (run to the end)."""
    marker = store.parent / "failpoint.marker"
    marker.unlink(missing_ok=True)
    spec = kill[1] if kill and kill[0] == "failpoint" else None
    proc, t0, done, states, reader = start_run(store, home, log, marker, spec)
    killed, landed = False, ""
    while proc.poll() is None:
        time.sleep(0.02)
        if kill is None:
            continue
        if kill[0] == "failpoint" and marker.exists():
            landed = marker.read_text().strip()
            kill_tree(proc)
            killed = True
        elif kill[0] == "time":
            _, stage, fraction = kill
            i = stages.index(stage)
            start = done.get(stages[i - 1]) if i else ref_times[stage][0]  # the first stage: after start-up
            if start is not None and time.monotonic() - t0 >= start + fraction * ref_times[stage][1]:
                kill_tree(proc)
                killed = True
    reader.join(timeout=30)
    return Attempt(proc.returncode, killed, time.monotonic() - t0, dict(states), dict(done), landed)


# ---- reading the store ----------------------------------------------------------------------------------
def artifact_hashes(store: Path) -> dict[tuple[str, str], str]:
    st = Store(store)
    out = {}
    for kind in ("tables", "models", "files"):
        d = store / kind
        for name in sorted(p.name for p in d.iterdir()) if d.is_dir() else []:
            ref = st.newest(kind, name)
            if ref is None or (kind, name) in VOLATILE:
                continue
            out[(kind, name)] = ref.content_hash
            if kind == "tables" and name in MEASURED_COLUMNS:
                rows = st.read_table(ref).drop_columns(list(MEASURED_COLUMNS[name])).to_pylist()
                out[(kind, name)] = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    return out


def finished_stages(store: Path, stages: list[str]) -> list[str]:
    return [s for s in stages if any((store / "work" / "_cache" / s).glob("*.json"))]


def shard_files(store: Path) -> dict[str, tuple[set[int], int]]:
    """Per sampling work folder: the shards whose file is complete, and how many lines its shard log has."""
    out = {}
    for d in {p.parent for p in (store / "work").rglob("shard-*.parquet")}:
        out[str(d)] = ({int(p.name.split("-")[1]) for p in d.glob("shard-*.parquet")}, len(shard_log(str(d))))
    return out


def shard_log(work: str) -> list[int]:
    path = Path(work) / "shards.jsonl"
    return [json.loads(line)["shard"] for line in path.read_text().splitlines()] if path.is_file() else []


def complete_checkpoints(store: Path) -> dict[str, int]:
    out = {}
    for ckdir in (store / "work").rglob("checkpoints"):
        steps = [int(p.name.split("-")[1]) for p in ckdir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
        out[str(ckdir.parent)] = max(steps, default=0)
    return out


def in_flight(store: Path) -> str:
    """What the kill interrupted, read from what it left: staging folders, half checkpoints, shard temp files."""
    found = []
    for d in sorted((store / ".tmp").iterdir()) if (store / ".tmp").is_dir() else []:
        files = [p.name for p in d.rglob("*") if p.is_file()]
        found.append("staged artifact, not yet renamed (mid-publish)" if "manifest.json" in files
                     else f"staged artifact being written ({len(files)} files, mid-write)")
    for ck in (store / "work").rglob("checkpoint-*"):
        if ck.is_dir() and not (ck / "trainer_state.json").is_file():
            found.append(f"half-written {ck.name} (mid-checkpoint)")
    for tmp in (store / "work").rglob(".shard-*.tmp"):
        found.append("shard file being written (mid-shard)")
    return "; ".join(found) or "-"


# ---- the campaign ---------------------------------------------------------------------------------------
def reference(work: Path, stages: list[str]) -> tuple[dict, dict, list[tuple[float, str, str]], float]:
    """The uninterrupted run with every failpoint traced: stage windows, hashes and the trace."""
    store, home = work / "reference" / "store", work / "reference" / "prefect"
    shutil.rmtree(work / "reference", ignore_errors=True)
    store.parent.mkdir(parents=True)
    trace = work / "reference" / "trace.txt"
    proc, t0, done, states, reader = start_run(store, home, work / "reference" / "log.txt", trace, "trace")
    wall0 = time.time()
    proc.wait()
    reader.join(timeout=30)
    if proc.returncode != 0 or set(states) != set(stages):
        raise SystemExit(f"the reference run failed (rc {proc.returncode}); see {work / 'reference' / 'log.txt'}")
    durations = {m.group(1): float(m.group(3)) for m in STAGE_LINE.finditer((work / "reference" / "log.txt").read_text())}
    windows = {s: (done[s] - durations[s], durations[s]) for s in stages}  # (start after launch, duration)
    events = []
    for line in trace.read_text().splitlines() if trace.exists() else []:
        t, where, pid = line.split()
        elapsed = float(t) - wall0
        stage = next((s for s in stages if done[s] >= elapsed), stages[-1])
        events.append((stage, where, pid))
    return windows, artifact_hashes(store), events, time.monotonic() - t0


def failpoint_specs(events: list[tuple[str, str, str]], stages: list[str], rng: random.Random) -> list[str]:
    """One failpoint per stage that has any, as 'POINT/DETAIL#N' (N counted per process, as failpoints does)."""
    counts: Counter = Counter()
    by_stage: dict[str, list[str]] = {}
    for stage, where, pid in events:
        counts[(pid, where)] += 1
        by_stage.setdefault(stage, []).append(f"{where}#{counts[(pid, where)]}")
    return [rng.choice(by_stage[s]) for s in stages if s in by_stage]


def run_chain(name: str, work: Path, stages: list[str], kills: list[tuple], windows, ref_hashes) -> tuple[list[Kill], dict]:
    base = work / name
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    store, home, log = base / "store", base / "prefect", base / "log.txt"
    done_kills: list[Kill] = []
    queue = list(kills)
    attempts = 0
    while True:
        kill = queue.pop(0) if queue else None
        a = run_attempt(store, home, log, stages, kill, windows)
        attempts += 1
        if done_kills:  # the work this attempt redid of what the previous kill left finished
            prev = done_kills[-1]
            prev.stages_redone = [s for s in prev.finished_stages if a.states.get(s) == "Completed"]
            for wdir, (finished, logged_before) in prev.shards_done.items():
                again = shard_log(wdir)[logged_before:]
                prev.shards_redone += sum(1 for i in again if i in finished)
        if not a.killed:
            if a.rc != 0:
                raise SystemExit(f"chain {name}: an attempt failed without a kill (rc {a.rc}); see {log}")
            break
        running = next((s for s in stages if s not in a.stage_done_at), stages[-1])
        spec = f"time {kill[1]} +{kill[2] * windows[kill[1]][1]:.1f}s" if kill[0] == "time" else kill[1]
        k = Kill(name, spec, running, in_flight(store), finished_stages(store, stages),
                 shard_files(store), complete_checkpoints(store))
        if running == "bootstrap":  # no checkpoints: all of it is redone
            k.seconds_redone = a.seconds - a.stage_done_at.get(stages[stages.index("bootstrap") - 1], 0.0)
        if a.marker:
            k.landed = f"{a.marker.split()[0]}: {k.landed}"
        done_kills.append(k)
        print(f"  {name} kill {len(done_kills)}: {spec} in {running}; {k.landed}", flush=True)
    # checkpoints: the trainers' final result says where they resumed from
    for k in done_kills:
        for job, step in k.checkpoints.items():
            result = Path(job) / "result.json"
            if result.is_file() and f"/work/{k.stage}/" in job:
                resumed = json.loads(result.read_text())["metrics"].get("resumed_from_step", 0)
                k.steps_redone = max(0, step - resumed)
    hashes = artifact_hashes(store)
    diff = {f"{kind}/{n}" for (kind, n) in set(ref_hashes) | set(hashes) if ref_hashes.get((kind, n)) != hashes.get((kind, n))}
    return done_kills, {"chain": name, "attempts": attempts, "identical": not diff, "differs": sorted(diff)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/kill-campaign")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-chains", type=int, default=2)
    ap.add_argument("--failpoint-chains", type=int, default=2)
    ap.add_argument("--chains", nargs="+", help="run only these chains (drawn as in a full campaign), e.g. failpoint-0")
    ap.add_argument("--no-control", action="store_true", help="skip the uninterrupted control run")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    work = Path(args.work)
    rng = random.Random(args.seed)
    stages = [s.name for s in enabled_stages(load_config(ROOT / CONFIG, OVERRIDES))]
    windows, ref_hashes, events, ref_s = reference(work, stages)
    print(f"reference: {ref_s:.0f} s, {len(ref_hashes)} artifacts, {len(events)} failpoints traced", flush=True)
    summaries = []
    if not args.no_control:
        _, control = run_chain("control", work, stages, [], windows, ref_hashes)
        summaries.append(control)
        print(f"control (uninterrupted): identical {control['identical']} {control['differs']}", flush=True)
    chains = [(f"time-{i}", [("time", s, rng.uniform(0.05, 0.95)) for s in stages]) for i in range(args.time_chains)]
    chains += [(f"failpoint-{i}", [("failpoint", spec) for spec in failpoint_specs(events, stages, rng)])
               for i in range(args.failpoint_chains)]
    if args.chains:
        chains = [(name, plan) for name, plan in chains if name in args.chains]
    kills = []
    for name, plan in chains:
        ks, summary = run_chain(name, work, stages, plan, windows, ref_hashes)
        kills += ks
        summaries.append(summary)
        print(f"{name}: {len(ks)} kills, {summary['attempts']} attempts, identical {summary['identical']} "
              f"{summary['differs']}", flush=True)
    md = report(kills, summaries, stages, ref_s, args)
    print(md)
    if args.record:
        with open(ROOT / "RELIABILITY.md", "a") as f:
            f.write("\n" + md + "\n")
    return 0 if all(s["identical"] for s in summaries) else 1


def report(kills: list[Kill], summaries: list[dict], stages: list[str], ref_s: float, args) -> str:
    hit = Counter(k.stage for k in kills)
    kinds = Counter(("mid-write" if "mid-write" in k.landed else "mid-publish" if "mid-publish" in k.landed
                     else "after publish" if k.landed.startswith("store.published") else "mid-checkpoint"
                     if "mid-checkpoint" in k.landed else "between shards" if k.landed.startswith("sampling.shard")
                     else "other moment") for k in kills)
    lines = [
        f"### Kill anywhere: {len(kills)} SIGKILLs ({time.strftime('%Y-%m-%d')})", "",
        f"Command: `.venv/bin/python -m bench.kill_campaign --seed {args.seed} --time-chains {args.time_chains} "
        f"--failpoint-chains {args.failpoint_chains}" + (f" --chains {' '.join(args.chains)}" if args.chains else "")
        + (" --no-control" if args.no_control else "") + f"` (reference run {ref_s:.0f} s).", "",
        "| chain | kills | attempts | identical to the reference | artifacts that differ |", "|---|---|---|---|---|",
        *[f"| {s['chain']} | {sum(k.chain == s['chain'] for k in kills)} | {s['attempts']} | {'yes' if s['identical'] else 'NO'} "
          f"| {', '.join(s['differs']) or '-'} |" for s in summaries], "",
        "Stages hit: " + ", ".join(f"{s} {hit[s]}" for s in stages) + ".",
        "What the kills interrupted: " + ", ".join(f"{n} {c}" for n, c in kinds.most_common()) + ".",
        f"Work redone: stages finished before a kill and rerun {sum(len(k.stages_redone) for k in kills)}, "
        f"finished shards sampled again {sum(k.shards_redone for k in kills)}, checkpointed training steps redone "
        f"{sum(k.steps_redone or 0 for k in kills)} (over {sum(k.steps_redone is not None for k in kills)} kills in a "
        f"trainer), bootstrap seconds redone (no checkpoints there) {sum(k.seconds_redone for k in kills):.0f}.", "",
        "| # | chain | kill | stage | in flight at the kill | stages redone | shards redone | steps redone |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {i} | {k.chain} | `{k.spec}` | {k.stage} | {k.landed} | {', '.join(k.stages_redone) or 0} | {k.shards_redone} "
          f"| {'-' if k.steps_redone is None else k.steps_redone} |" for i, k in enumerate(kills, 1)],
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
