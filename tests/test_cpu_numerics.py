"""models.cpu_numerics (grm/cpu_numerics.py): pinned numerics give the same bits on a CPU with AVX-512 and on the
same CPU made to run as one without it; native numerics do not (which is why the offline default's figures
moved on another machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grm import cpu_numerics

ROOT = Path(__file__).resolve().parents[1]
FLAGS = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
AS_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}

# a few Adam steps of a small transformer layer (GEMMs of odd sizes, softmax, layer norm, GELU): the weights' hash
TRAIN = r"""
import hashlib, os, sys
from grm import cpu_numerics
cpu_numerics.apply(sys.argv[1])
import torch
torch.manual_seed(0)
layer = torch.nn.TransformerEncoderLayer(d_model=72, nhead=3, dim_feedforward=200, activation="gelu", batch_first=True)
opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
x = torch.randn(5, 37, 72)
for _ in range(4):
    opt.zero_grad()
    layer(x).pow(2).mean().backward()
    opt.step()
h = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in layer.parameters())).hexdigest()
print(torch.backends.cpu.get_cpu_capability(), h)
"""


def weights(mode: str, extra_env: dict[str, str]) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {**AS_AVX2, **cpu_numerics.PINNED}}
    env.update({"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2", **extra_env})
    out = subprocess.run([sys.executable, "-c", TRAIN, mode], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    capability, digest = out.stdout.split()
    return capability, digest


@pytest.mark.skipif(" avx2" not in FLAGS, reason="pinned numerics use the AVX2 code paths; this CPU has no AVX2")
def test_pinned_numerics_agree_where_native_numerics_differ():
    pinned = weights("pinned", {})
    pinned_as_avx2 = weights("pinned", AS_AVX2)
    assert pinned[0] == pinned_as_avx2[0] == "AVX2"
    assert pinned[1] == pinned_as_avx2[1]
    if " avx512f" in FLAGS:  # on a CPU without AVX-512, native already is AVX2: nothing to tell apart
        native, native_as_avx2 = weights("native", {}), weights("native", AS_AVX2)
        assert native[0] != "AVX2" and native_as_avx2[0] == "AVX2"
        assert native[1] != native_as_avx2[1], "native numerics did not move with the ISA: the test shows nothing"


def test_pinning_after_torch_has_loaded_is_refused_with_what_to_do(monkeypatch):
    import torch  # noqa: F401  (loaded, as in a notebook that trained something first)

    for k in cpu_numerics.PINNED:
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(cpu_numerics.NumericsError, match="models.cpu_numerics is 'pinned' but torch is already loaded"):
        cpu_numerics.apply("pinned")
    cpu_numerics.apply("native")  # nothing to do
    for k, v in cpu_numerics.PINNED.items():
        monkeypatch.setenv(k, v)
    cpu_numerics.apply("pinned")  # already pinned from the start: fine


def test_the_offline_default_is_pinned():
    from grm.config import load_config

    assert load_config(ROOT / "configs/tiny.yaml").models.cpu_numerics == "pinned"
