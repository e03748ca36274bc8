"""Children that stop when the run that started them is gone (docs/design.md, "House rules").

A run stopped with Ctrl-C or SIGTERM stops its children itself; one killed outright (SIGKILL, the out-of-memory
killer) cannot, and its trainer, `vllm serve` or Prefect's temporary server would run on, holding the GPU, the
job folder a rerun resumes in, or a port. So each such child watches the run: the parent puts its pid in
``GRM_PARENT_PID`` (``child_env``), the child calls ``watch_from_env`` first thing (trainers, the vllm CLI), or
is started through ``python -m grm.parent_watch PID -m MODULE ARGS...`` (a program we do not write, such as
uvicorn). When the watched process is gone the child gets SIGTERM (its own graceful stop), then SIGKILL.

Standard library only: it also runs in the vLLM environment.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

PARENT_PID = "GRM_PARENT_PID"
GRACE_S = 30.0  # after SIGTERM, how long a child may take to stop before SIGKILL


def child_env() -> dict[str, str]:
    """Environment entries that make a child started now watch this process."""
    return {PARENT_PID: str(os.getpid())}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists (another user's)
        return True
    return True


def watch(pid: int, *, interval_s: float = 1.0) -> threading.Thread:
    """Stop this process once ``pid`` is gone (a daemon thread); a no-op when ``pid`` is this process."""
    me, parent = os.getpid(), os.getppid()

    def run() -> None:
        # the parent of a direct child changes when it dies (re-parented); for a grandchild the pid itself is checked
        while alive(pid) and (pid != parent or os.getppid() == parent):
            time.sleep(interval_s)
        os.kill(me, signal.SIGTERM)
        time.sleep(GRACE_S)
        os.kill(me, signal.SIGKILL)

    thread = threading.Thread(target=run, name=f"watch-{pid}", daemon=True)
    if pid != me:
        thread.start()
    return thread


def watch_from_env() -> None:
    pid = os.environ.get(PARENT_PID, "")
    if pid.isdigit():
        watch(int(pid))


def main(argv: list[str]) -> None:
    """``python -m grm.parent_watch PID -m MODULE ARGS...``: run MODULE as ``python -m`` would, watching PID."""
    if len(argv) < 3 or not argv[0].isdigit() or argv[1] != "-m":
        sys.exit("usage: python -m grm.parent_watch PID -m MODULE [ARGS...]")
    watch(int(argv[0]))
    sys.argv = [argv[2], *argv[3:]]
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
