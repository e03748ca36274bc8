"""bench/paper_cost.py: the cost arithmetic on hand-computed cases, and the script on the paper's config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.paper_cost import Work, implied_mfu, main, paper_stages, stage_cost, work_flops, work_gpu_hours
from grm.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIG = ROOT / "configs" / "paper-gemma2-27b.yaml"
PEAK = 312e12


def test_training_is_six_n_per_token_and_hours_divide_by_peak_times_mfu():
    w = Work(params=1e9, trained=1e6)
    assert work_flops(w) == pytest.approx(6e15)
    # 6e15 / (312e12 x 0.5 x 3600) = 0.0106838 h
    assert work_gpu_hours(w, PEAK, mfu=0.5, decode_efficiency=0.25) == pytest.approx(6e15 / (312e12 * 0.5 * 3600))
    assert work_gpu_hours(w, PEAK, mfu=0.5, decode_efficiency=0.25) == pytest.approx(0.0106838, rel=1e-5)


def test_forward_is_two_n_per_token_and_decode_runs_at_mfu_times_decode_efficiency():
    w = Work(params=2e9, generated=1e6, forward=3e6)
    assert work_flops(w) == pytest.approx(2 * 2e9 * 4e6)  # 1.6e16
    decode_h = 2 * 2e9 * 1e6 / (PEAK * 0.4 * 0.5 * 3600)  # 4e15 at 20% of peak
    prefill_h = 2 * 2e9 * 3e6 / (PEAK * 0.4 * 3600)  # 1.2e16 at 40%
    assert work_gpu_hours(w, PEAK, mfu=0.4, decode_efficiency=0.5) == pytest.approx(decode_h + prefill_h)


def test_a_stage_sums_its_models_and_the_implied_mfu_inverts_the_hours():
    s = stage_cost("x", [Work(1e9, trained=1e6), Work(3e9, generated=2e6)], peak_flops=PEAK, mfu=0.5,
                   decode_efficiency=1.0, paper_gpu_hours=10.0)
    assert (s.generated, s.forward, s.trained) == (2e6, 0, 1e6)
    assert s.flops == pytest.approx(6e15 + 1.2e16)
    assert s.gpu_hours == pytest.approx(1.8e16 / (PEAK * 0.5 * 3600))
    assert s.implied_mfu == pytest.approx(1.8e16 / (10.0 * 3600 * PEAK))  # 0.16%
    # the hours at an MFU, fed back, give that MFU
    assert implied_mfu(s.flops, s.gpu_hours, PEAK) == pytest.approx(0.5)


def test_the_paper_config_gives_a_row_per_stage_with_positive_numbers():
    rows = paper_stages(load_config(PAPER_CONFIG))
    stages = [r.stage.split(" (")[0] for r in rows]
    assert stages == ["MATH solutions", "RFT sampling", "RFT training", "RL too-easy filter", "Online RL",
                      "Meta-RM data", "Meta-RM training", "Judge / eval"]
    for r in rows:
        assert r.flops > 0 and r.gpu_hours > 0 and r.generated + r.forward + r.trained > 0, r
    by = dict(zip(stages, rows))
    # the two stages the paper reports: 128 A100s x 19.2 h and x 15.6 h
    assert by["RFT training"].paper_gpu_hours == pytest.approx(128 * 19.2)
    assert by["Online RL"].paper_gpu_hours == pytest.approx(128 * 15.6)
    assert 0 < by["RFT training"].implied_mfu < 1 and 0 < by["Online RL"].implied_mfu < 1
    # RFT training trains batch x steps examples from the config, nothing generated
    assert by["RFT training"].generated == 0 and by["RFT training"].trained > 1024 * 900 * 100


def test_the_script_prints_the_table_for_the_paper_config():
    out = subprocess.run([sys.executable, "-m", "bench.paper_cost", "--config", str(PAPER_CONFIG)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| stage | tokens generated |")
    assert len(lines) == 1 + 8 + 1  # header, 8 stages, total
    assert "| 2,457.6 |" in out.stdout and "| 1,996.8 |" in out.stdout


def test_a_base_model_of_unknown_size_is_one_clear_message(capsys):
    assert main(["--config", str(ROOT / "configs" / "tiny.yaml")]) == 2
    err = capsys.readouterr().err
    assert "models.base is 'scratch'" in err and "MODEL_PARAMS" in err
