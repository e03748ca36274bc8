"""Curation: stable ids, exact duplicates, decontamination (synthetic and on the real overlaps), caps, merging."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from flows.cli import main
from grm.curation import cap_per_source, content_key, curate, decontaminate, deduplicate, item_id, ngrams, with_id
from grm.formats.importer import ImportResult, SourceStats


def item(query, responses=("a", "b"), best=0, source="s", split="train", **extra):
    row = {"source": source, "format": "generic", "split": split, "subset": "", "label_kind": "best", "best": best,
           "conversation": [{"role": "user", "content": query}], "responses": list(responses), "ratings": None,
           "meta": json.dumps(extra.pop("meta", {})), **extra}
    return with_id(row)


LONG_Q = "Natalia sold clips to forty eight of her friends in April and then she sold half as many clips in May"


def test_item_id_is_a_stable_hash_of_content_and_source():
    a = item(LONG_Q)
    assert a["item_id"] == item(LONG_Q)["item_id"] == item_id("s", content_key(a))
    assert len(a["item_id"]) == 20
    assert item(LONG_Q, best=1)["item_id"] != a["item_id"]  # the label is content
    assert item(LONG_Q, responses=("a", "c"))["item_id"] != a["item_id"]
    assert item(LONG_Q, source="t")["item_id"] != a["item_id"]
    assert item(LONG_Q, meta={"note": "x"})["item_id"] == a["item_id"]  # meta is not content...
    assert item(LONG_Q, meta={"identity": ["cell", 1]})["item_id"] != a["item_id"]  # ...except its identity


def test_deduplicate_counts_what_it_drops():
    rows = [item("q1", source="a"), item("q1", source="a"), item("q1", source="b"),  # train: b repeats a
            item("q2", source="e1", split="eval"), item("q2", source="e2", split="eval")]  # eval: both kept
    kept, report = deduplicate(rows)
    assert [(r["source"], r["conversation"][0]["content"]) for r in kept] == [("a", "q1"), ("e1", "q2"), ("e2", "q2")]
    assert report.within_source == {"a": 1} and report.across_train == {"b": 1} and report.shared_eval == {"e2": 1}
    assert report.dropped == 2


def test_ngrams_lowercase_words_and_short_texts():
    assert ngrams("The cat, the CAT!", 2) == {("the", "cat"), ("cat", "the")}
    assert ngrams("Hi there", 8) == {("hi", "there")}
    assert ngrams("?!", 3) == set()


@pytest.mark.parametrize("action", ["flag", "drop"])
def test_decontamination_flags_or_drops_train_items_per_source_pair(action):
    rows = [
        item(LONG_Q + " How many clips did she sell", source="eval_math", split="eval"),
        item("Hi there", source="eval_chat", split="eval"),
        item(LONG_Q + " altogether in April and May", source="train_a"),  # most 8-grams shared
        item(LONG_Q.upper(), source="train_b"),  # case does not hide it
        item("A completely different question about the history of jazz music in New Orleans", source="train_a"),
        item("hi there", source="train_b"),  # short: matches only an identical short query
        item("hi there friend", source="train_b"),
    ]
    kept, dropped, report = decontaminate(rows, ngram=8, threshold=0.5, action=action)
    assert report.pairs == {("train_a", "eval_math"): 1, ("train_b", "eval_math"): 1, ("train_b", "eval_chat"): 1}
    assert report.contaminated == {"train_a": 1, "train_b": 2}
    flagged = [r for r in kept + dropped if "contamination" in json.loads(r["meta"])]
    assert len(flagged) == 3 and all(r["split"] == "train" for r in flagged)
    assert json.loads(flagged[0]["meta"])["contamination"]["eval_sources"] == ["eval_math"]
    if action == "drop":
        assert len(kept) == 4 and dropped == flagged
    else:
        assert len(kept) == 7 and dropped == []


def test_decontamination_threshold():
    rows = [item(LONG_Q, source="e", split="eval"), item(LONG_Q.split(" in April")[0] + " on a sunny day in the park "
                                                          "near the river with many other children", source="t")]
    assert decontaminate(rows, ngram=4, threshold=0.9)[2].pairs == {}
    assert decontaminate(rows, ngram=4, threshold=0.2)[2].pairs == {("t", "e"): 1}


def test_cap_per_source_keeps_a_stable_subset_of_train_items():
    rows = [item(f"q{i}", source="big") for i in range(10)] + [item("q", source="small")]
    rows += [item(f"e{i}", source="ev", split="eval") for i in range(5)]
    kept, left_out = cap_per_source(rows, 3)
    assert Counter(r["source"] for r in kept) == {"big": 3, "small": 1, "ev": 5} and left_out == {"big": 7}
    assert {r["item_id"] for r in kept} == {r["item_id"] for r in cap_per_source(rows[::-1], 3)[0]}  # order-free
    assert cap_per_source(rows, None)[0] == rows


def imported(name, rows, split="train"):
    stats = SourceStats(name, "generic", split, read=len(rows), imported=len(rows), items=len(rows))
    return ImportResult(stats, [dict(r, source=name, split=split) for r in rows], [])


def test_curate_merges_generated_items_and_quarantines_unusable_ones():
    generated = [
        {k: v for k, v in item("generated question one", source="miniworld").items() if k != "item_id"},
        {**item("generated question two", source="miniworld"), "best": 7},
    ]
    out = curate([imported("user", [item("q1"), item("q1")])], extra_items=generated,
                 decontamination={"ngram": 8, "threshold": 0.5, "action": "drop"}, max_chars=1000)
    assert Counter(r["source"] for r in out.items) == {"user": 1, "miniworld": 1}
    assert all(r["item_id"] for r in out.items)
    (q,) = out.quarantine
    assert q["source"] == "miniworld" and q["reason"].startswith("best_out_of_range") and q["row_ref"] == "generated#1"
    assert out.report.generated == {"miniworld": 1} and out.report.dedup.within_source == {"user": 1}
    assert "Generated items: miniworld 1" in out.report.markdown()
    with pytest.raises(ValueError, match="repeated: user"):
        curate([imported("user", []), imported("user", [])])


# ---- the real overlaps of ../shared/data --------------------------------------------------------------------
def as_split(rows, split):
    return [dict(r, split=split) for r in rows]


def test_real_overlap_realcritic_and_gsm8k_solutions_are_gsm8k_test_questions(real_imports):
    imp = real_imports
    rows = (as_split(imp["gsm8k_test"].items, "eval") + as_split(imp["llmbar"].items, "eval")
            + as_split(imp["realcritic"].items, "train") + as_split(imp["gsm8k_solutions"].items, "train")
            + as_split(imp["gsm8k_train"].items, "train") + as_split(imp["rm_bench"].items, "train"))
    kept, dropped, report = decontaminate(rows, ngram=8, threshold=0.5, action="drop")
    pairs = dict(report.pairs)
    assert pairs[("realcritic", "gsm8k_test")] == 273  # every RealCritic gsm8k item, and only those
    assert {r["subset"] for r in dropped if r["source"] == "realcritic"} == {"gsm8k"}
    assert pairs[("gsm8k_solutions", "gsm8k_test")] == 4 * 1319  # all four solutions of every test question
    assert pairs[("rm_bench", "llmbar")] == 9 * 12  # 12 RM-Bench chat prompts are MT-Bench questions in LLMBar
    assert pairs[("gsm8k_train", "gsm8k_test")] == 2  # two templated near-copies (same words, other numbers)
    assert len(dropped) == sum(report.contaminated.values()) and len(kept) + len(dropped) == len(rows)


def test_cli_import_registers_a_source_that_curate_reads(tmp_path, capsys):
    """`grm data import` writes no items itself: it registers the source, and `curate` (the one writer of
    `items`) imports it beside the config's sources, deduplicated; each further import changes what curate makes."""
    from grm.config import parse_config
    from storage import Store
    from tasks.runner import run_stage

    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"query": f"q{i}", "chosen": "a", "rejected": "b"}) + "\n" for i in range(5)))
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps({"query": f"q{i}", "chosen": "a", "rejected": "b"}) + "\n" for i in range(3, 8)))
    store = str(tmp_path / "store")
    assert main(["data", "import", "--format", "generic", "--name", "mine", "--store", store, str(data)]) == 0
    assert "read         5" in capsys.readouterr().out
    assert Store(store).table("items") is None  # nothing curated yet

    def curated() -> list[tuple]:
        assert main(["sql", "--store", store, "--format", "csv",
                     "select source, split, count(*) as n from items group by all order by source"]) == 0
        return capsys.readouterr().out.strip().splitlines()[1:]

    run_stage("curate", parse_config({}), Store(store))
    assert curated() == ["mine,train,5"]
    assert main(["data", "import", "--format", "generic", "--name", "mine", "--store", store, str(more)]) == 0
    assert main(["data", "import", "--format", "generic", "--name", "other", "--split", "eval", "--store", store,
                 str(tmp_path / "mine.jsonl")]) == 0
    capsys.readouterr()
    run_stage("curate", parse_config({"data": {"decontamination": {"action": "flag"}}}), Store(store))
    assert curated() == ["mine,train,8", "other,eval,5"]  # q3, q4 read twice: kept once
    assert main(["data", "import", "--format", "llmbar", "--name", "mine", "--store", store, str(data)]) == 2
    assert "registered as generic (train)" in capsys.readouterr().err
    assert main(["data", "formats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("rm_bench ") for line in lines) and any(line.startswith("generic ") for line in lines)


# ---- the curate stage --------------------------------------------------------------------------------------
def stage_config(sources, **data):
    from grm.config import parse_config

    return parse_config({"data": {"sources": sources, **data}})


def run_stage(tmp_path, config):
    from storage import Store
    from tasks.runner import run_stage

    store = Store(tmp_path / "store")
    return store, run_stage("curate", config, store)


def test_curate_stage_writes_items_quarantine_and_a_summary(tmp_path):
    evals = tmp_path / "eval.jsonl"
    evals.write_text("".join(json.dumps({"query": f"{LONG_Q} number {i}", "chosen": "a", "rejected": "b"}) + "\n"
                             for i in range(4)))
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"query": LONG_Q + " number 1", "chosen": "x", "rejected": "y"}) + "\n"
                     + json.dumps({"query": "an unrelated question about rivers", "chosen": "x", "rejected": "y"}) + "\n"
                     + '{"query": "trunc')
    config = stage_config([
        {"name": "bench", "format": "generic", "paths": [str(evals)], "split": "eval"},
        {"name": "mine", "format": "generic", "paths": [str(train)], "split": "train"},
    ], decontamination={"ngram": 8, "threshold": 0.5, "action": "flag"})
    store, out = run_stage(tmp_path, config)
    items = store.read_rows(out.artifacts["items"])
    assert Counter((r["source"], r["split"]) for r in items) == {("bench", "eval"): 4, ("mine", "train"): 2}
    flagged = [r for r in items if "contamination" in json.loads(r["meta"])]
    assert [r["source"] for r in flagged] == ["mine"]
    (q,) = store.read_rows(out.artifacts["quarantine"])
    assert q["reason"].startswith("invalid_json") and q["row_ref"] == f"{train}:3"
    assert "| mine | bench | 1 |" in out.summary_md and "| mine | generic | train | 3 | 2 | 1 | 0 | 2 |" in out.summary_md
    assert (out.rows_in, out.rows_out) == (7, 6)
    assert store.manifest(out.artifacts["items"])["extra"]["curation"]["decontamination"]["pairs"] == [
        {"train_source": "mine", "eval_source": "bench", "items": 1}]


def test_curate_stage_stops_on_a_file_it_cannot_read(tmp_path):
    from grm.formats import SourceReadError

    bad = tmp_path / "bench.json"
    bad.write_text('[{"query": "q", "chosen": "a", "rejected": "b"},')
    config = stage_config([{"name": "bench", "format": "generic", "paths": [str(bad)], "split": "eval"}])
    with pytest.raises(SourceReadError, match="bench.json: not valid JSON"):
        run_stage(tmp_path, config)
