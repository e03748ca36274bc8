"""The trainer launcher: child processes, failures with the trainer's message, CPU settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grm.training import launch
from grm.training.jobs import device_settings, job_paths, last_checkpoint

TRAIN = {"learning_rate": 1e-3, "batch_size": 6, "per_device_batch_size": 4, "max_steps": 2, "save_steps": 1, "bf16": None}


def test_a_failing_trainer_fails_the_job_with_its_message(tmp_path):
    with pytest.raises(launch.TrainingError) as e:
        launch.run_job("sft", tmp_path / "job", {"model": "unused", "train": TRAIN, "seed": 0}, [{"prompt": [], "completion": []}])
    msg = str(e.value)
    assert "exit code 1" in msg and "batch_size 6 is not a multiple of per_device_batch_size" in msg  # the child's error
    assert launch.running_child_pid(tmp_path / "job") is None


def test_accelerate_config_runs_the_trainer_under_accelerate_launch(tmp_path):
    cfg = tmp_path / "ds.yaml"
    cfg.write_text("compute_environment: LOCAL_MACHINE\n")
    cmd = launch.command("grpo", tmp_path, str(cfg), sys.executable)
    assert cmd[1:4] == ["-m", "accelerate.commands.launch", "--config_file"] and cmd[-3:] == ["-m", "grm.training.grpo", str(tmp_path)]
    assert launch.command("grpo", tmp_path, None, sys.executable)[1:] == ["-m", "grm.training.grpo", str(tmp_path)]
    with pytest.raises(launch.TrainingError, match="does not exist"):
        launch.command("sft", tmp_path, str(tmp_path / "missing.yaml"), sys.executable)


def test_cpu_runs_get_what_cpu_needs_even_when_bf16_is_asked():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CPU-only behaviour")
    args, notes = device_settings({"bf16": True})
    assert args["bf16"] is False and args["use_cpu"] is True and args["activation_checkpointing"] is False
    assert notes and "CPU" in notes[0]


def test_resume_skips_a_half_written_checkpoint(tmp_path):
    ckpts = job_paths(tmp_path)["checkpoints"]
    (ckpts / "checkpoint-2").mkdir(parents=True)
    (ckpts / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (ckpts / "checkpoint-10").mkdir()  # killed while saving: no trainer_state.json
    assert last_checkpoint(ckpts).name == "checkpoint-2"
    assert not (ckpts / "checkpoint-10").exists()


def test_a_job_killed_after_its_last_checkpoint_takes_it_and_trains_no_step_more(tmp_path):
    """Killed after the final checkpoint (e.g. while publishing): the rerun takes that checkpoint as it is.
    transformers alone would run a third step of two (here at learning rate 0, the end of the linear decay; with
    a constant rate it would move the weights)."""
    import hashlib

    from tests.tiny_lm import build_tiny_lm

    model = build_tiny_lm(tmp_path / "lm")
    train = {**TRAIN, "batch_size": 4}
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
             "completion": [{"role": "assistant", "content": f"It is {2 * i}."}]} for i in range(12)]
    spec = {"model": str(model), "train": train, "seed": 0, "dtype": "float32", "params": {"max_length": 64}}
    weights = lambda r: hashlib.sha256((Path(r["model_dir"]) / "model.safetensors").read_bytes()).hexdigest()
    first = launch.run_job("sft", tmp_path / "job", spec, rows)
    assert first["metrics"]["steps"] == 2 and last_checkpoint(job_paths(tmp_path / "job")["checkpoints"]).name == "checkpoint-2"
    again = launch.run_job("sft", tmp_path / "job", spec, rows)  # the checkpoints are still there, as after a kill
    assert again["metrics"]["steps"] == 2 and again["metrics"]["resumed_from_step"] == 2
    assert weights(again) == weights(first)
