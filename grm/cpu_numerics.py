"""Pinned CPU numerics: the same floating-point results on any x86 CPU with AVX2 (docs/design.md, "Numerics").

By default MKL, oneDNN and ATen's own kernels pick the widest instructions the CPU has (AVX-512 on one machine,
AVX2 on another) and round differently, so training on another CPU takes another path (the offline default's
figures did not reproduce on an AMD EPYC without AVX-512). ``models.cpu_numerics: pinned`` makes every process
of a run use the AVX2 code paths with MKL's conditional numerical reproducibility. The libraries read these
settings when they load, so they go into the environment before torch is imported (``grm run`` does it first
thing; trainer children inherit them). bench/cpu_numerics.py measures what it costs and whether it makes an
AVX-512 machine agree with one made to run as AVX2.

Standard library only.
"""

from __future__ import annotations

import os
import sys

PINNED = {
    "MKL_CBWR": "AVX2,STRICT",  # MKL's conditional numerical reproducibility, on its AVX2 branch
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels (softmax, norms, elementwise)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's kernels
}


class NumericsError(RuntimeError):
    pass


def apply(mode: str) -> None:
    """Put ``mode``'s settings in this process's environment (and so its children's). 'native' changes
    nothing. Pinning after torch has loaded would pin only the children: refused, with what to do instead."""
    if mode == "native":
        return
    if mode != "pinned":
        raise NumericsError(f"models.cpu_numerics: unknown mode {mode!r} (native | pinned)")
    if all(os.environ.get(k) == v for k, v in PINNED.items()):
        return
    if "torch" in sys.modules:
        raise NumericsError(
            "models.cpu_numerics is 'pinned' but torch is already loaded in this process, so its numerics can no "
            "longer change: run through `grm run`, or set " + " ".join(f"{k}={v}" for k, v in PINNED.items())
            + " in the environment before starting Python")
    os.environ.update(PINNED)
