"""Processes the test suite started that are still alive: the check run when the whole test session ends
(tests/conftest.py, pytest_sessionfinish), and the helpers the interrupt tests use.

A process is the suite's when it descends from the pytest process, or when it carries the session's tag in
its environment (``GRM_TEST_SESSION``, inherited by every child that gets ``os.environ``), or when it was
re-parented to init after the session began and its command line names the session's temporary folder: an
orphan whose parent was killed (a Prefect server left by a SIGKILLed `grm run`) is found by the last two.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

import psutil

TAG = "GRM_TEST_SESSION"


@dataclass(frozen=True)
class Leftover:
    pid: int
    ppid: int
    age_s: float
    cmdline: str

    def __str__(self) -> str:
        return f"pid {self.pid} (parent {self.ppid}, {self.age_s:.0f} s old): {self.cmdline[:300]}"


def start_session() -> tuple[str, float]:
    """Tag this process's environment (children inherit it); returns (tag, start time)."""
    tag = os.environ.setdefault(TAG, f"{os.getpid()}-{uuid.uuid4().hex[:12]}")
    return tag, time.time()


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if _alive(p)]
    except psutil.Error:
        return []


def session_processes(tag: str, since: float, folders: tuple[str, ...] = ()) -> list[psutil.Process]:
    """Every live process the session started (but this one), by descent, by tag, or as an orphan naming one
    of ``folders``."""
    me = os.getpid()
    found = {p.pid: p for p in descendants(me)}
    for p in psutil.process_iter(["pid", "ppid", "create_time", "cmdline"]):
        if p.pid == me or p.pid in found or p.info["create_time"] is None or p.info["create_time"] < since - 1:
            continue
        try:
            if p.environ().get(TAG) == tag:
                found[p.pid] = p
                continue
        except psutil.Error:  # another user's process: not ours
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if p.info["ppid"] == 1 and folders and any(f in cmd for f in folders):
            found[p.pid] = p
    return [p for p in found.values() if _alive(p)]


def describe(procs: list[psutil.Process]) -> list[Leftover]:
    out = []
    for p in procs:
        try:
            out.append(Leftover(p.pid, p.ppid(), time.time() - p.create_time(), " ".join(p.cmdline())))
        except psutil.Error:
            pass
    return out


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still alive after up to ``timeout`` seconds."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if _alive(p)]


def kill(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)


def stop_in_process_services() -> None:
    """What this process would stop at exit anyway, stopped now so that the check sees only real leaks:
    Prefect's temporary server (started by flows and tasks run in-process), a local Ray, and multiprocessing's
    helper processes (the resource tracker and fork server that spawned workers start)."""
    import sys

    server = sys.modules.get("prefect.server.api.server")
    if server is not None:
        # what is queued for the server goes first (as at exit): a worker still sending would start it again
        for _ in range(3):
            for module, worker in (("prefect.logging.handlers", "APILogWorker"), ("prefect.events.worker", "EventsWorker")):
                if module in sys.modules:
                    getattr(sys.modules[module], worker).drain_all(timeout=30)
            instances = list(server.SubprocessASGIServer._instances.values())
            if not any(i.server_process for i in instances):
                break
            for instance in instances:
                instance.stop()
            time.sleep(1)
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    for module, helper in (("multiprocessing.resource_tracker", "_resource_tracker"), ("multiprocessing.forkserver", "_forkserver")):
        if module in sys.modules:
            getattr(sys.modules[module], helper)._stop()
