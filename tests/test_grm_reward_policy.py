"""The trained GRM as the reward of a policy (issue 16): examples/grm_reward_grpo.py at tiny size.

A tiny random policy takes GRPO steps on real HH-RLHF prompts with ``GRMReward.reward_function(group=True)`` as
its reward. The GRM is a tiny chat LM taught the GRM output format with the miniature world's pre-training loop
(grm.miniworld.bootstrap.pretrain) on the compact templates of configs/tiny.yaml: it writes the same judgment,
``\\boxed{8, 3}``, for any pair, so its scores favour the first completion shown (k = 1 keeps the original order)
and every group has a reward spread for the policy to learn from. A random GRM would write no box: every reward
None, zero advantages, and weights that do not move (TRL's zero-advantage step), which is what the last
assertions would catch. About 15 s on 2 cores.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from examples.grm_reward_grpo import load_prompts, main, run
from grm.config import load_config
from grm.prompts import Templates

ROOT = Path(__file__).resolve().parents[1]
HH = "hh_rlhf/harmless-base/test.jsonl.gz"
JUDGMENT = "Specific Criteria: helpfulness.\nAnalysis: brief.\nScores: \\boxed{8, 3}"
GROUP = 2
SIZES = dict(max_completion_length=12, prompts_per_step=2)  # two prompts x two completions per step


@pytest.fixture(scope="module")
def prompts(shared_data):
    return load_prompts(shared_data / HH, limit=8, max_chars=200)


@pytest.fixture(scope="module")
def templates():
    return Templates.configured(load_config(ROOT / "configs" / "tiny.yaml"))


@pytest.fixture(scope="module")
def tiny_grm(tmp_path_factory, prompts, templates):
    """A tiny LM taught to answer any GRM prompt over two responses with JUDGMENT."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grm.config import BootstrapConfig, TrainerConfig
    from grm.miniworld.bootstrap import Example, encode, pretrain
    from grm.prompts import as_chat, grm_prompt
    from tests.tiny_lm import build_tiny_lm

    base = build_tiny_lm(tmp_path_factory.mktemp("grm_base"), seed=2, max_positions=1024, eos_boost=1.0, with_scores=True)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    rng = random.Random(0)

    def noise() -> str:  # responses as garbled as a random policy's
        return tok.decode([rng.randrange(len(tok)) for _ in range(rng.randint(1, 16))], skip_special_tokens=True)

    examples = [Example(as_chat(grm_prompt(c, [noise(), noise()], templates)), JUDGMENT, "careful", True)
                for _ in range(4) for c in prompts.prompts]
    cfg = BootstrapConfig(train=TrainerConfig(learning_rate=3e-3, batch_size=4, per_device_batch_size=4, max_steps=60))
    pretrain(model, tok, encode(tok, examples, 1024), cfg, seed=0, log=lambda _: None)
    folder = tmp_path_factory.mktemp("grm")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    from tests.tiny_lm import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("policy"), seed=1, max_positions=1024)


def test_prompts_are_distinct_hh_conversations_ending_in_a_user_turn(prompts):
    assert len(prompts.prompts) == 8 and prompts.read == 2312 and prompts.usable >= 8
    assert prompts.too_long > prompts.usable  # most HH conversations are longer than 200 characters
    assert prompts.quarantined < 10  # the importer's count of rows it could not use, reported as it is
    assert len({json.dumps(p) for p in prompts.prompts}) == 8
    for p in prompts.prompts:
        assert p[-1]["role"] == "user" and sum(len(m["content"]) for m in p) <= 200
        assert [m["role"] for m in p] == ["user", "assistant"] * (len(p) // 2) + ["user"]


def test_grm_rewards_reach_grpo_and_move_the_policy(tiny_policy, tiny_grm, prompts, templates, tmp_path):
    from grm.generation.hf import HFBackend
    from grm.reward import GRMReward

    class RecordingReward(GRMReward):
        """The real GRMReward; it also keeps every batch it was asked to judge."""

        batches: list = []

        def score(self, batch):
            self.batches.append([(list(c), list(r)) for c, r in batch])
            return super().score(batch)

    lines: list[str] = []
    reward = RecordingReward(HFBackend(str(tiny_grm), device="cpu"), k=1, max_new_tokens=64, templates=templates)
    summary, trainer = run(str(tiny_policy), reward, prompts.prompts, out_dir=tmp_path / "out", steps=2,
                           group_size=GROUP, print_fn=lines.append, **SIZES)

    assert summary.steps == 2 and [c.step for c in summary.calls] == [1, 2]
    for call, batch in zip(summary.calls, reward.batches, strict=True):
        assert call.group_sizes == [GROUP, GROUP]  # TRL handed over two prompts' groups...
        assert [len(responses) for _, responses in batch] == [GROUP, GROUP]  # ...each judged as one listwise item
        assert all(conversation in prompts.prompts for conversation, _ in batch)
    rewards = [r for c in summary.calls for r in c.rewards]
    assert sum(r is not None for r in rewards) > len(rewards) // 2, rewards
    # what the reward function returned is what the trainer logged, step by step
    assert summary.logged_rewards == pytest.approx([c.mean for c in summary.calls])
    unscored = [h["grm_unscored"] for h in trainer.state.log_history if "grm_unscored" in h]
    assert unscored == pytest.approx([c.unscored / len(c.rewards) for c in summary.calls])
    assert [ln.split(":")[0] for ln in lines[:2]] == ["step 1/2", "step 2/2"] and "rewards None" in lines[0]
    assert summary.weight_change > 0 and "relative L2 change" in lines[-1]


def test_the_example_runs_from_its_command_line(tiny_policy, tiny_grm, shared_data, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["--policy", str(tiny_policy), "--grm", str(tiny_grm), "--config", str(ROOT / "configs" / "tiny.yaml"),
               "--prompts", str(shared_data / HH), "--num-prompts", "4", "--max-prompt-chars", "200",
               "--steps", "1", "--group-size", str(GROUP), "--prompts-per-step", "2", "--k", "1",
               "--judge-max-new-tokens", "64", "--max-completion-length", "12", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "prompts: 4 from" in printed and "step 1/1: mean reward" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["calls"][0]["group_sizes"] == [GROUP, GROUP]
    assert summary["logged_rewards"][0] is not None and summary["weight_change"] > 0
    assert summary["prompts"]["read"] == 2312


def test_the_example_names_a_missing_model(tmp_path, shared_data, capsys):
    rc = main(["--policy", str(tmp_path / "nope"), "--grm", str(tmp_path / "nope"), "--store", str(tmp_path / "store"),
               "--prompts", str(shared_data / HH), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "policy" in capsys.readouterr().err
