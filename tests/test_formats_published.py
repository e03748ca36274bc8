"""Formats of the paper's data that are not on this machine, tested with rows written in each published schema
(dataset cards and loaders: allenai/reward-bench, lmarena-ai/PPE-*, Zhou-Zoey/RMB, ryokamoi/realmistake,
Skywork-Reward-Preference, openbmb/UltraFeedback, nvidia/HelpSteer2 preference, NCSOFT/offsetbias,
hendrycks MATH) and with the generic format."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from grm.formats import FORMATS, SourceReadError
from grm.formats.importer import import_source
from grm.prompts import Templates
from grm.sampling_plan import plan


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def run(tmp_path, fmt, rows, name="data.jsonl", **kw):
    return import_source(fmt, fmt, [write_jsonl(tmp_path / name, rows)], **kw)


def meta(item):
    return json.loads(item["meta"])


def reasons(result):
    return [q["reason"].split(":")[0] for q in result.quarantine]


def test_every_format_has_a_name_and_a_one_line_description():
    assert len(FORMATS) >= 24
    for name, fmt in FORMATS.items():
        assert fmt.name == name and fmt.description and "\n" not in fmt.description
        assert fmt.default_split in ("train", "eval")


def test_rewardbench(tmp_path):
    rows = [{"prompt": "Name a prime.", "chosen": "7", "chosen_model": "gpt-4", "rejected": "8",
             "rejected_model": "llama", "subset": "math-prm", "id": 3},
            {"prompt": "Hi", "chosen": "Hello!", "rejected": "", "subset": "alpacaeval-easy", "id": 4}]
    r = run(tmp_path, "rewardbench", rows)
    (item,) = r.items
    assert item["conversation"] == [{"role": "user", "content": "Name a prime."}]
    assert item["responses"] == ["7", "8"] and item["best"] == 0 and item["subset"] == "math-prm"
    assert item["split"] == "eval" and meta(item)["chosen_model"] == "gpt-4"
    assert reasons(r) == ["empty_text"]


def test_ppe_human_preference(tmp_path):
    base = {"question_id": "q", "model_a": "a", "model_b": "b", "language": "English", "prompt": "Write a haiku."}
    rows = [{**base, "response_1": "one", "response_2": "two", "winner": "model_b"},
            {**base, "response_1": "x", "response_2": "y", "winner": "tie (bothbad)"},
            {**base, "response_1": "x", "response_2": "y", "winner": "model_c"}]
    r = run(tmp_path, "ppe_preference", rows)
    assert [i["best"] for i in r.items] == [1]
    assert reasons(r) == ["tie", "bad_label"]


def test_ppe_correctness_gives_one_item_per_conflict_pair(tmp_path):
    row = {"question_id": 9, "model_name": "m", "prompt": "2+2?", "scores": [True, False, True, False],
           "sampled_conflict_pairs": [[0, 1], [3, 2]], **{f"response_{i}": f"answer {i}" for i in range(1, 5)}}
    bad = {**row, "sampled_conflict_pairs": [[0, 2]]}  # both correct: not a conflict
    r = run(tmp_path / "", "ppe_correctness", [row, bad], name="PPE-MATH-Best-of-K.jsonl")
    assert [(i["responses"], i["best"]) for i in r.items] == [(["answer 1", "answer 2"], 0), (["answer 4", "answer 3"], 1)]
    assert {i["subset"] for i in r.items} == {"MATH"} and meta(r.items[1])["pair"] == [3, 2]
    assert reasons(r) == ["bad_label"]


def rmb_turn(content, role="user"):
    return {"content": content, "language": "English", "role": role}


def test_rmb_pairwise_and_best_of_n(tmp_path):
    pair = {"pair_uid": "11114", "conversation_input": [rmb_turn("q")], "chosen": {"llm_name": "a", "answer": "good"},
            "reject": {"llm_name": "b", "answer": "bad"}, "category_path": "Pairwise_set/Harmlessness/S10"}
    r = run(tmp_path, "rmb_pairwise", [pair])
    assert r.items[0]["subset"] == "Harmlessness/S10" and r.items[0]["responses"] == ["good", "bad"]
    assert r.items[0]["conversation"] == [{"role": "user", "content": "q"}]  # 'language' is dropped
    bon = {"bon_uid": "2366", "conversation_input": [rmb_turn("hi"), rmb_turn("hello", "assistant"), rmb_turn("q")],
           "bon_best": {"llm_name": "a", "answer": "best"},
           "loser_list": [{"llm_name": "b", "answer": "l1"}, {"llm_name": "c", "answer": "l2"}],
           "category_path": "BoN_set/Helpfulness/Chat/Discussion"}
    ends_with_assistant = {**bon, "conversation_input": [rmb_turn("hi"), rmb_turn("hello", "assistant")]}
    r = run(tmp_path, "rmb_bon", [bon, ends_with_assistant])
    (item,) = r.items
    assert item["responses"] == ["best", "l1", "l2"] and item["best"] == 0
    assert item["subset"] == "Helpfulness/Chat/Discussion" and len(item["conversation"]) == 3
    assert reasons(r) == ["bad_conversation"]


def test_realmistake_hub_and_repository_label_fields(tmp_path):
    rows = [{"input": "Write a math problem.", "llm_response": "Problem ...", "error_label": "no_error",
             "human_explanation": "", "error_categories": [], "metadata": {"llm_response_model": "gpt-4-0613"}},
            {"input": "Write a math problem.", "llm_response": "Wrong ...", "label": "error",
             "error_categories": ["Reasoning Correctness"], "metadata": {}},
            {"input": "x", "llm_response": "y", "error_label": "maybe"}]
    r = run(tmp_path / "", "realmistake", rows, name="gpt-4-0613.jsonl")
    assert [i["ratings"] for i in r.items] == [[1.0], [0.0]]
    assert all(i["label_kind"] == "rating" for i in r.items)
    assert reasons(r) == ["bad_label"]


def test_skywork_chosen_rejected_message_lists(tmp_path):
    conv = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]
    rows = [{"chosen": conv + [{"role": "assistant", "content": "good"}],
             "rejected": conv + [{"role": "assistant", "content": "bad"}], "source": "magpie_ultra"},
            {"chosen": conv + [{"role": "assistant", "content": "good"}],
             "rejected": conv[:1] + [{"role": "assistant", "content": "bad"}], "source": "x"},
            {"chosen": "not a list", "rejected": [], "source": "x"}]
    r = run(tmp_path, "skywork", rows)
    (item,) = r.items
    assert item["conversation"] == conv and item["responses"] == ["good", "bad"] and item["split"] == "train"
    assert item["subset"] == "magpie_ultra"
    assert reasons(r) == ["bad_conversation", "wrong_type"]


def uf_completion(response, score):
    return {"model": "m", "response": response, "fine-grained_score": score, "overall_score": 7.0,
            "annotations": {"helpfulness": {"Rating": "4", "Rationale": "..."}}}


def test_ultrafeedback_best_is_the_highest_rated_and_ties_are_quarantined(tmp_path):
    rows = [{"source": "evol_instruct", "instruction": "q",
             "completions": [uf_completion("a", 3.5), uf_completion("b", 4.75), uf_completion("c", None),
                             uf_completion("d", 2.0)]},
            {"source": "sharegpt", "instruction": "q2", "completions": [uf_completion("a", 4.0), uf_completion("b", 4.0)]},
            {"source": "flan", "instruction": "q3", "completions": [uf_completion("a", 4.0)]}]
    r = run(tmp_path, "ultrafeedback", rows)
    (item,) = r.items
    assert item["responses"] == ["a", "b", "d"] and item["best"] == 1 and item["ratings"] == [3.5, 4.75, 2.0]
    assert meta(item)["unrated"] == 1 and item["subset"] == "evol_instruct"
    assert reasons(r) == ["tie", "too_few_responses"]


def test_helpsteer2_preference_keeps_the_strength_for_hints(tmp_path):
    prompt = "Hi<extra_id_1>Assistant\nHello, how can I help?<extra_id_1>User\nWrite a poem."
    rows = [{"split": "train", "prompt": prompt, "response_1": "r1", "response_2": "r2", "preference_strength": -2,
             "preference_statement": "@Response 1 is better.", "preference_elaboration": "..."},
            {"split": "val", "prompt": "q", "response_1": "r1", "response_2": "r2", "preference_strength": 3},
            {"split": "train", "prompt": "q", "response_1": "r1", "response_2": "r2", "preference_strength": 0}]
    r = run(tmp_path, "helpsteer2_preference", rows)
    first, second = r.items
    assert [m["role"] for m in first["conversation"]] == ["user", "assistant", "user"]
    assert first["conversation"][-1]["content"] == "Write a poem."
    assert first["best"] == 0 and meta(first)["preference_strength"] == 2 and meta(first)["hint_strength"] == "better"
    assert second["best"] == 1 and meta(second)["hint_strength"] == "much better"
    assert reasons(r) == ["tie"]
    # the hinted sample's line shows the strength in words, not the label's digit
    requests, planned = plan([second], k=1, seed=0, templates=Templates.default(), tag="rft", hinted=True)
    (hinted,) = [r for r in requests if r.prompt_id.endswith(":hint")]
    assert hinted.messages[-1]["content"].rstrip().endswith("(much better)")
    assert "(3)" not in hinted.messages[-1]["content"]


def test_offsetbias(tmp_path):
    rows = [{"instruction": "q", "output_1": "a", "output_2": "b", "label": 2},
            {"instruction": "q", "output_1": "a", "output_2": "b", "label": 3}]
    r = run(tmp_path, "offsetbias", rows)
    assert [i["best"] for i in r.items] == [1] and r.items[0]["split"] == "train"
    assert reasons(r) == ["bad_label"]


def test_math_problems_take_the_boxed_answer(tmp_path):
    rows = [{"problem": "What is $1+1$?", "level": "Level 1", "type": "Algebra",
             "solution": "We add: $1+1=\\boxed{\\frac{4}{2}}$."},
            {"problem": "p", "solution": "no box here", "level": "Level 2", "type": "Geometry"}]
    r = run(tmp_path, "math", rows)
    (item,) = r.items
    assert meta(item)["answer"] == "\\frac{4}{2}" and item["subset"] == "Algebra" and item["ratings"] == [1.0]
    assert reasons(r) == ["missing_field"]


def test_generic_jsonl_and_parquet(tmp_path):
    rows = [
        {"query": "q1", "responses": ["a", "b", "c"], "best": 2, "subset": "mine"},
        {"prompt": "q2", "chosen": "good", "rejected": "bad"},
        {"conversation": [{"role": "user", "content": "q3"}], "response": "r", "label": True},
        {"query": "q4", "responses": ["a", "b"], "ratings": [1, 5], "meta": {"origin": "team"}},
        {"query": "q5", "responses": ["a", "b"], "best": 5},
        {"query": "q6", "response": "r", "label": "yes"},
        {"responses": ["a", "b"], "best": 0},
    ]
    r = run(tmp_path, "generic", rows)
    assert [(i["label_kind"], i["best"], i["ratings"]) for i in r.items] == [
        ("best", 2, None), ("best", 0, None), ("rating", None, [1.0]), ("best", 1, [1.0, 5.0])]
    assert r.items[0]["subset"] == "mine" and meta(r.items[3]) == {"origin": "team"}
    assert reasons(r) == ["best_out_of_range", "bad_label", "missing_field"]
    table = pa.table({"query": ["q1", "q2"], "chosen": ["x", "y"], "rejected": ["z", "y"]})
    pq.write_table(table, tmp_path / "mine.parquet")
    r = import_source("mine", "generic", [str(tmp_path / "mine.parquet")], "eval")
    assert [i["split"] for i in r.items] == ["eval"] and r.quarantine[0]["row_ref"] == f"{tmp_path}/mine.parquet#1"
    assert reasons(r) == ["tie"]  # chosen and rejected are the same text


def test_hub_dataset_id_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceReadError, match="allenai/reward-bench.*offline"):
        import_source("rb", "rewardbench", ["allenai/reward-bench"])
    with pytest.raises(SourceReadError, match="no such file or folder"):
        import_source("rb", "rewardbench", [str(tmp_path / "missing.jsonl")])


def test_labels_accept_ints_written_as_strings_or_floats_but_not_booleans():
    from grm.formats.base import RowError, boolean, label

    assert [label({"l": v}, "l", {1: 0, 2: 1}) for v in ("2", 2, 2.0, " 1 ")] == [1, 1, 1, 0]
    for bad in (True, 1.5, [1], "two"):
        with pytest.raises(RowError, match="bad_label"):
            label({"l": bad}, "l", {1: 0, 2: 1})
    assert [boolean({"b": v}, "b") for v in (True, 0, "FALSE")] == [True, False, False]
    with pytest.raises(RowError, match="missing_field: b"):
        boolean({}, "b")
