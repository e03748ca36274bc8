"""Training data shaping and the GRPO reward function (no training, fast)."""

from __future__ import annotations

import json

import pytest

from grm.prompts import Templates
from grm.training.examples import draws_per_item, grpo_rows, heldout, load_general_chat, mix_general, sft_example, trainable
from grm.training.grpo import SPCTReward, grpo_config
from grm.training.jobs import common_arguments


def _item(iid, responses, best=None, rating=None):
    return {
        "item_id": iid,
        "conversation": [{"role": "user", "content": f"question {iid}"}],
        "responses": responses,
        "label_kind": "best" if best is not None else "rating",
        "best": best,
        "ratings": [rating] if rating is not None else None,
    }


def test_trainable_needs_a_checkable_label():
    assert trainable(_item("a", ["x", "y"], best=1))
    assert trainable(_item("b", ["x"], rating=1.0)) and trainable(_item("c", ["x"], rating=0.0))
    assert not trainable(_item("d", ["x"], rating=7.0))  # a graded single response has no 0/1 target
    assert not trainable(_item("e", ["x"], best=0))  # one response cannot be the best of several


def test_grpo_rows_shuffle_each_draw_and_keep_the_truth_in_shown_order():
    items = [_item("a", ["r0", "r1", "r2", "r3"], best=2), _item("s", ["only"], rating=1.0)]
    rows = grpo_rows(items, draws=6, seed=0, templates=Templates.default())
    a = [r for r in rows if r["item_id"] == "a"]
    assert len(a) == 6 and len({tuple(r["permutation"]) for r in a}) > 1  # draws see different orders
    for r in a:
        text = r["prompt"][0]["content"]
        shown = [text.index(f"r{p}") for p in r["permutation"]]
        assert shown == sorted(shown)  # the prompt lists the responses in the row's order
        assert r["permutation"][r["best_shown"]] == 2 and r["n_responses"] == 4 and not r["binary"]
    s = [r for r in rows if r["item_id"] == "s"][0]
    assert s["binary"] and s["label"] == 1 and s["best_shown"] is None
    assert draws_per_item(10, max_steps=5, prompts_per_step=4) == 2


def test_spct_reward_is_the_core_rule_on_shown_order(tmp_path):
    reward = SPCTReward(tmp_path / "c.jsonl")
    texts = ["Scores: \\boxed{3, 9}", "\\boxed{9, 3}", "\\boxed{5, 5}", "no box", "\\boxed{1}", "\\boxed{7}"]
    n = [2, 2, 2, 2, 1, 1]
    best = [1, 1, 1, 1, None, None]
    label = [None, None, None, None, 1, 1]
    binary = [False, False, False, False, True, True]
    metrics = {}
    got = reward([[{"role": "assistant", "content": t}] for t in texts], n, best, label, binary,
                 log_metric=lambda k, v: metrics.__setitem__(k, v))
    assert got == [1.0, -1.0, -1.0, -1.0, 1.0, -1.0]  # a tie and a parse failure are -1; 7 is out of the 0/1 range
    assert metrics["parse_rate"] == pytest.approx(4 / 6)
    logged = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in logged] == got


@pytest.mark.parametrize("use_vllm", [False, True])
def test_grpo_config_is_the_original_grpo_with_a_plain_kl_penalty(tmp_path, use_vllm):
    """TRL 1.16 multiplies the k3 KL term by the importance ratio and reweights vLLM rollouts by default; the
    paper's GRPO (Eq. 15, beta = 0.08) has neither, so the trainer config turns both off explicitly."""
    job = {"job_dir": str(tmp_path), "seed": 0,
           "train": {"learning_rate": 4e-7, "batch_size": 8, "per_device_batch_size": 8, "max_steps": 1, "save_steps": 1},
           "params": {"group_size": 4, "beta": 0.08, "loss_type": "grpo", "temperature": 1.0, "max_completion_length": 16,
                      "use_vllm": use_vllm, "vllm_mode": "colocate"}}
    args, _ = common_arguments(job)
    config = grpo_config(job, args)
    assert config.beta == 0.08 and config.num_generations == 4 and config.loss_type == "grpo"
    assert config.use_bias_correction_kl is False
    assert config.vllm_importance_sampling_correction is False
    assert config.use_vllm is use_vllm


def test_mix_general_hits_the_ratio_with_what_exists():
    rm = [sft_example(f"p{i}", f"c{i}") for i in range(20)]
    general = [sft_example(f"g{i}", f"a{i}") for i in range(200)]
    mixed, counts = mix_general(rm, general, 0.8, seed=0)
    assert counts["general_examples"] == 80 and len(mixed) == 100 and counts["general_share"] == pytest.approx(0.8)
    mixed, counts = mix_general(rm, general[:10], 0.8, seed=0)
    assert counts["general_examples"] == 10 and counts["general_wanted"] == 80  # not enough: all that exist


def test_general_chat_bad_rows_are_reported_not_fatal(tmp_path):
    f = tmp_path / "general.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "no answer"}]},
        {"text": "no messages"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    data = load_general_chat(f)
    assert len(data.examples) == 1 and data.examples[0]["completion"][0]["content"] == "hello"
    assert len(data.problems) == 3 and all(str(f) in p for p in data.problems)
    with pytest.raises(ValueError, match=r"rft\.general_data: .*nope\.jsonl"):
        load_general_chat(tmp_path / "nope.jsonl")


def test_general_chat_reads_parquet_and_folders_like_every_source(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    pq.write_table(pa.Table.from_pylist([{"messages": chat}, {"messages": chat[:1]}]), tmp_path / "a.parquet")
    (tmp_path / "b.jsonl").write_text(json.dumps({"messages": chat}) + "\n")
    data = load_general_chat(tmp_path)
    assert len(data.examples) == 2 and len(data.problems) == 1 and "a.parquet" in data.problems[0]


def test_heldout_split_is_by_prompt_and_near_the_fraction():
    def item(q, responses=("a", "b")):
        return {"conversation": [{"role": "user", "content": q}], "responses": list(responses)}

    flags = [heldout(item(f"q{i}"), 0.2, seed=0) for i in range(2000)]
    assert 0.15 < sum(flags) / len(flags) < 0.25
    # Items that share a prompt (other response sets) never straddle the split, for any seed.
    for seed in range(20):
        sides = {heldout(item("q7", r), 0.5, seed) for r in (("a", "b"), ("c", "d"), ("e",))}
        assert len(sides) == 1
    assert len({heldout(item("q7"), 0.5, seed) for seed in range(20)}) == 2  # the seed moves it
