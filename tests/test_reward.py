"""The GRM as a reward: shuffled samples mapped back, voting, meta-RM selection, the TRL reward function, and
`grm score` on a tiny model."""

from __future__ import annotations

import json
import re

import pytest

from flows.cli import main as grm_main
from grm.generation.base import Backend, Result, Sample
from grm.reward import GRMReward, JudgeInputError

_SHOWN = re.compile(r"\[Start of Response \d+\]\n(.*?)\n\[End of Response \d+\]", re.S)


class DigitJudge(Backend):
    """A scripted GRM: scores each shown response with the digit at its end (so a correct mapping back to
    the original order is visible), except that sample j of a request fails to parse when j is in ``fail``."""

    name = "digits"

    def __init__(self, fail=(), bonus_first=0):
        self.fail, self.bonus_first, self.calls = set(fail), bonus_first, []

    def generate(self, requests, params):
        self.calls.append((list(requests), params))
        out = []
        for req in requests:
            shown = _SHOWN.findall(req.messages[-1]["content"])
            samples = []
            for j in range(req.n):
                scores = [int(r[-1]) for r in shown]
                scores[0] = min(10, scores[0] + self.bonus_first)  # position bias on the first shown response
                text = "Specific Criteria: digits.\nAnalysis: read them.\nScores: " + (
                    "none" if (req.seed + j) in self.fail else "\\boxed{" + ", ".join(map(str, scores)) + "}")
                samples.append(Sample(text, req.seed + j))
            out.append(Result(req.prompt_id, samples))
        return out


CONV = [{"role": "user", "content": "pick the best"}]


def test_greedy_is_one_unshuffled_sample():
    backend = DigitJudge()
    [j] = GRMReward(backend, k=1).score([(CONV, ["resp 3", "resp 7"])])
    (requests, params), = backend.calls
    assert params.temperature == 0 and len(requests) == 1 and requests[0].n == 1
    assert j.scores == [3, 7] and j.best == 1 and j.n_used == 1 and not j.tied
    assert j.samples[0].permutation == [0, 1] and j.samples[0].principles == "digits." and j.samples[0].critique == "read them."


def test_voting_maps_shuffled_scores_back_and_sums_them():
    backend = DigitJudge(bonus_first=3)  # favours whatever it sees first: shuffling spreads that out
    judge = GRMReward(backend, k=8, seed=1)
    [j] = judge.score([(CONV, ["a 2", "b 5", "c 4"])])
    assert backend.calls[0][1].temperature == 0.5
    firsts = [s.permutation[0] for s in j.samples]
    assert len(set(tuple(s.permutation) for s in j.samples)) > 1  # orders differ across samples
    expected = [8 * d + 3 * firsts.count(i) for i, d in enumerate([2, 5, 4])]
    assert j.scores == expected
    assert j.mean_scores == [t / 8 for t in expected]
    for s in j.samples:  # every sample's scores are in the original order
        assert [x - (3 if s.permutation[0] == i else 0) for i, x in enumerate(s.scores)] == [2, 5, 4]


def test_parse_failures_are_left_out_and_counted():
    probe = DigitJudge()
    GRMReward(probe, k=4).score([(CONV, ["x 1", "y 9"])])
    seeds = sorted(r.seed + j for r in probe.calls[0][0] for j in range(r.n))  # the seed of every sample
    [j] = GRMReward(DigitJudge(fail=seeds[:2]), k=4).score([(CONV, ["x 1", "y 9"])])
    assert j.n_failed == 2 and j.n_used == 2 and j.scores == [2, 18] and j.best == 1
    assert sorted(s.parse_status for s in j.samples) == ["no_box", "no_box", "ok", "ok"]
    assert sum(s.used for s in j.samples) == 2


def test_meta_rm_keeps_the_best_rated_samples():
    backend = DigitJudge(bonus_first=5)
    # a meta RM that prefers judgments which saw "b 5" first (and, among those, longer texts)
    def meta(texts):
        return [float(len(t)) if "[Start of Response 1]\n\x1fb 5" in t else 0.0 for t in texts]

    judge = GRMReward(backend, k=6, meta_scorer=meta, seed=3)
    assert judge.k_meta == 3 and judge.tag == "metarm@6/3"
    [j] = judge.score([(CONV, ["a 6", "b 5"])])
    kept = [s for s in j.samples if s.used]
    assert len(kept) == 3
    assert j.n_used == 3 and j.n_discarded == 3 and j.n_failed == 0  # left out by the meta RM, not failed
    # the kept samples are those with the highest meta scores (ties: earlier sample first)
    ranked = sorted(j.samples, key=lambda s: (-s.meta_score, s.sample_idx))[:3]
    assert {s.sample_idx for s in kept} == {s.sample_idx for s in ranked}
    assert j.scores == [sum(s.scores[0] for s in kept), sum(s.scores[1] for s in kept)]


def test_trl_reward_function_pointwise_and_grouped():
    judge = GRMReward(DigitJudge(), k=2)
    reward = judge.reward_function()
    prompts = ["q1", "q1", [{"role": "user", "content": "q2"}]]
    completions = ["ans 4", "ans 9", [{"role": "assistant", "content": "ans 6"}]]
    assert reward(prompts=prompts, completions=completions) == [4.0, 9.0, 6.0]
    grouped = judge.reward_function(group=True)
    assert grouped(prompts=prompts, completions=completions) == [4.0, 9.0, 6.0]
    # the grouped function judges completions of one prompt together: one request for q1 with both answers
    backend = DigitJudge()
    GRMReward(backend, k=1).reward_function(group=True)(prompts=prompts, completions=completions)
    shown = [_SHOWN.findall(r.messages[-1]["content"]) for r in backend.calls[0][0]]
    assert sorted(map(len, shown)) == [1, 2]


def test_unscorable_completions_get_the_failure_reward():
    class Mute(DigitJudge):
        def generate(self, requests, params):
            return [Result(r.prompt_id, [Sample("no scores here", r.seed + j) for j in range(r.n)]) for r in requests]

    judge = GRMReward(Mute(), k=2)
    assert judge.reward_function()(prompts=["q"], completions=["a"]) == [None]
    assert judge.reward_function(failure_reward=-1.0)(prompts=["q"], completions=["a"]) == [-1.0]


@pytest.mark.parametrize(
    "bad",
    [(CONV, []), (CONV, ["ok", 3]), ([], ["a"]), ([{"role": "user"}], ["a"])],
)
def test_bad_input_names_the_item(bad):
    with pytest.raises(JudgeInputError, match="item 1"):
        GRMReward(DigitJudge()).score([(CONV, ["fine 1"]), bad])


def test_grm_judge_cli_on_a_tiny_model(tmp_path, capsys):
    from tests.tiny_lm import build_tiny_lm

    model = build_tiny_lm(tmp_path / "lm", max_positions=1024)
    rc = grm_main(["score", "--model", str(model), "--k", "2", "--query", "2+2?", "--response", "4", "--response", "5",
                   "--max-new-tokens", "8", "--device", "cpu", "--raw"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "voting@2" and len(out["samples"]) == 2
    for s in out["samples"]:
        assert set(s) >= {"scores", "principles", "critique", "parse_status", "permutation", "text"}
        assert sorted(s["permutation"]) == [0, 1]
    # a random tiny model rarely writes a valid box: whatever it wrote is counted, never a crash
    assert out["n_used"] + out["n_failed"] == 2
    assert (out["best"] is None) == (out["n_used"] == 0)


def test_grm_judge_cli_rejects_a_missing_model(tmp_path, capsys):
    rc = grm_main(["score", "--model", "nothing-here", "--store", str(tmp_path), "--query", "q", "--response", "a"])
    assert rc == 2
    assert "is neither a model folder (with a config.json) nor a model in the store" in capsys.readouterr().err


def test_hf_meta_scorer_scores_texts_with_a_shared_prefix_as_separate_forwards_would(tmp_path):
    from grm.reward import HFMetaScorer
    from tests.tiny_lm import build_tiny_lm

    folder = build_tiny_lm(tmp_path / "lm", max_positions=512)
    query = "Query: " + " ".join(f"word{i}" for i in range(60)) + "\nResponse 1: yes.\nResponse 2: no.\n"
    # four samples of one prompt (one of them a prefix of another), another prompt, and a text alone
    texts = [query + "Analysis: fine. \\boxed{3, 7}", query + "Analysis: poor. \\boxed{8, 2}", query + "A",
             query + "Analysis: fine. \\boxed{3, 7} and more", "Other " + query + "\\boxed{1, 2}",
             "Other " + query + "\\boxed{5, 5}", "short"]
    scorer = HFMetaScorer(str(folder), device="cpu", batch_size=3)  # an untrained head: random, fixed per load
    got = scorer.score(texts)
    # groups of at most batch_size texts: the first prompt's four as 3 + 1, the second prompt's two
    assert scorer.forwards == {"shared": 5, "single": 2}
    scorer.shared_prefix = False
    want = scorer.score(texts)
    assert scorer.forwards == {"shared": 5, "single": 9}
    assert got[1] == want[1] and got[0] == pytest.approx(want[0], abs=1e-5)
    assert len(set(round(x, 5) for x in want[0])) == len(texts)  # the texts differ, so do their scores


def test_hf_meta_scorer_gives_one_logit_per_text_whatever_the_batch(tmp_path):
    import math

    from grm.reward import HFMetaScorer
    from tests.tiny_lm import build_tiny_lm

    folder = build_tiny_lm(tmp_path / "lm", max_positions=256)
    texts = ["a short judgment", "a much longer judgment text with \\boxed{3, 7} at its end", "x"]
    scorer = HFMetaScorer(str(folder), device="cpu", batch_size=1)  # an untrained head: random, fixed per load
    one = scorer(texts)
    scorer.batch_size = 3
    many = scorer(texts)
    assert len(one) == 3 and all(math.isfinite(x) for x in one)
    assert many == pytest.approx(one, abs=1e-4)  # padding does not change a text's score
    assert len(set(round(x, 6) for x in one)) > 1
    judge = GRMReward(DigitJudge(), k=4, meta_scorer=scorer)
    [j] = judge.score([(CONV, ["a 3", "b 8"])])
    assert sum(s.used for s in j.samples) == 2 and all(s.meta_score is not None for s in j.samples)
