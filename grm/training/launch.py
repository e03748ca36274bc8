"""Run a trainer in a child process, so that a crash or an out-of-memory kill fails only the stage.

The child is ``accelerate launch --config_file CFG -m grm.training.<trainer> JOB_DIR`` when an accelerate
(multi-GPU / DeepSpeed / FSDP) config is given, and ``python -m grm.training.<trainer> JOB_DIR`` otherwise.
The job folder persists between runs: a rerun of a killed job resumes from its last complete checkpoint.
The parent never imports torch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from grm import parent_watch
from grm.training.jobs import job_paths

TRAINERS = ("sft", "grpo", "metarm")
PID_FILE = "child.pid"
STDERR_FILE = "stderr.log"
STDOUT_FILE = "stdout.log"
TAIL_LINES = 40
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TrainingError(RuntimeError):
    """The trainer child failed; the message carries the tail of its stderr."""


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _exit_reason(rc: int) -> str:
    if rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        return f"killed by signal {name}" + (" (out of memory?)" if -rc == signal.SIGKILL else "")
    return f"exit code {rc}"


def command(trainer: str, job_dir: Path, accelerate_config: str | None, python: str) -> list[str]:
    module = f"grm.training.{trainer}"
    if accelerate_config:
        if not Path(accelerate_config).is_file():
            raise TrainingError(f"accelerate config {accelerate_config} does not exist (training.accelerate_config)")
        return [python, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config), "-m", module, str(job_dir)]
    return [python, "-m", module, str(job_dir)]


def write_data(job_dir: Path, rows: Iterable[Mapping] | pa.Table) -> int:
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows))
    path = job_paths(job_dir)["data"]
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return table.num_rows


def run_job(
    trainer: str,
    job_dir: str | Path,
    spec: Mapping,
    data: Iterable[Mapping] | pa.Table,
    *,
    accelerate_config: str | None = None,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict:
    """Write the job, run the trainer child to completion and return its result (result.json).

    ``spec`` holds ``model``, ``train`` (a TrainerConfig dump), ``seed``, ``params`` (trainer specific) and
    ``card`` (model card fields). Raises TrainingError with the child's stderr tail when it fails."""
    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer {trainer!r}; trainers: {TRAINERS}")
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    paths = job_paths(job_dir)
    write_data(job_dir, data)
    paths["job"].write_text(json.dumps({**spec, "trainer": trainer}, indent=2, default=str))
    paths["result"].unlink(missing_ok=True)
    if paths["model"].exists():  # a model left by an earlier, interrupted publish: the child writes it again
        shutil.rmtree(paths["model"])
    child_env = dict(os.environ, **(env or {}), **parent_watch.child_env())  # it stops if this process is killed
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), child_env.get("PYTHONPATH", "")) if p)
    child_env.setdefault("TOKENIZERS_PARALLELISM", "false")
    cmd = command(trainer, job_dir, accelerate_config, python or sys.executable)
    with open(job_dir / STDOUT_FILE, "ab") as out, open(job_dir / STDERR_FILE, "wb") as err:
        # its own process group, so that an interrupt stops every process of the job (accelerate's workers too)
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env, cwd=str(_PROJECT_ROOT), start_new_session=True)
        (job_dir / PID_FILE).write_text(str(proc.pid))
        try:
            rc = proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)  # the stage was interrupted: do not leave an orphan trainer behind
            proc.wait()
            raise
        finally:
            (job_dir / PID_FILE).unlink(missing_ok=True)
    if rc != 0 or not paths["result"].is_file():
        why = _exit_reason(rc) if rc != 0 else "exited without writing result.json"
        raise TrainingError(
            f"trainer '{trainer}' failed ({why}); checkpoints kept in {paths['checkpoints']} for a resume.\n"
            f"command: {' '.join(cmd)}\nlast lines of its stderr ({job_dir / STDERR_FILE}):\n{_tail(job_dir / STDERR_FILE)}"
        )
    result = json.loads(paths["result"].read_text())
    result["model_dir"] = str(paths["model"])  # the trained model folder (HF format, with README.md)
    return result


def running_child_pid(job_dir: str | Path) -> int | None:
    """The pid of the trainer child of a job while it runs (for monitoring, or for killing it)."""
    p = Path(job_dir) / PID_FILE
    try:
        return int(p.read_text())
    except (OSError, ValueError):
        return None


def clear_checkpoints(job_dir: str | Path) -> None:
    """Free the disk once a job's model has been published."""
    shutil.rmtree(job_paths(job_dir)["checkpoints"], ignore_errors=True)
