"""Run independent shard jobs on Prefect's task runner: threads by default, Ray through prefect-ray.

Each job becomes a Prefect task run (visible in the UI, with its own state). Results are handed back as each
job finishes, so the caller can persist a shard before the others are done. This works inside a flow run
and from a plain function (Prefect then records the task runs on its own temporary server).
No scheduler of our own: concurrency, placement and GPUs are the task runner's business.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Iterator, Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

import flows.temporary_server  # noqa: F401  (Prefect's temporary server stops when this process is gone)
from grm.config import TaskRunnerConfig


@task(name="shard", cache_policy=NO_CACHE, persist_result=False, retries=0)
def _run_job(fn: Callable[..., Any], args: tuple) -> Any:
    return fn(*args)


def _runner(cfg: TaskRunnerConfig):
    if cfg.kind == "threads":
        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    from prefect_ray.task_runners import RayTaskRunner

    init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if cfg.address is None:  # a local Ray sized to the configured workers
        init["num_cpus"] = cfg.workers
    return RayTaskRunner(address=cfg.address, init_kwargs=init)


def _start_api() -> None:
    """Outside a flow run, connect to Prefect's API (starting its temporary server when none is configured) in
    this thread: worker threads that each find it not started race to start it, and one of two servers is
    left running, untracked, after the process exits."""
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        from prefect.client.orchestration import get_client

        get_client(sync_client=True)


def map_jobs(
    fn: Callable[..., Any], jobs: Sequence[tuple], cfg: TaskRunnerConfig, *, name: str = "shard"
) -> Iterator[tuple[int, Any, BaseException | None]]:
    """Run ``fn(*job)`` for every job; yield ``(index, value, None)`` or ``(index, None, error)`` in the
    order the jobs finish. A failing job does not stop the others."""
    if not jobs:
        return
    _start_api()
    with ExitStack() as stack:
        runner = stack.enter_context(_runner(cfg))
        if cfg.kind == "ray":
            from prefect_ray.context import remote_options

            stack.enter_context(remote_options(num_cpus=1, num_gpus=cfg.gpus_per_task))
        futures = {}
        for i, job in enumerate(jobs):
            t = _run_job.with_options(task_run_name=f"{name}-{i}")
            futures[runner.submit(t, {"fn": fn, "args": tuple(job)})] = i
        for fut in as_completed(list(futures)):
            i = futures[fut]
            try:
                value = fut.result(raise_on_failure=True)
            except BaseException as e:  # the job's own exception, re-raised by Prefect
                yield i, None, e
            else:
                yield i, value, None
