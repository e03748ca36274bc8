"""The `rewardbench2` format (allenai/reward-bench-2, split test), tested with rows written in the published
schema: id, prompt, chosen (list), rejected (list), num_correct, total_completions, subset."""

from __future__ import annotations

import json

from grm.formats import FORMATS
from grm.formats.importer import import_source
from grm.prompts import Templates
from grm.sampling_plan import plan


def rb2_row(rid, subset, chosen, rejected, prompt="Question?", **over):
    row = {"id": rid, "prompt": prompt, "chosen": chosen, "rejected": rejected, "num_correct": len(chosen),
           "total_completions": len(chosen) + len(rejected), "subset": subset}
    row.update(over)
    return row


FACTUALITY = rb2_row("12", "Factuality", ["Paris is the capital."],
                     ["Lyon is the capital.", "Nice is the capital.", "Marseille is the capital."],
                     prompt="What is the capital of France?")
# a Ties pair: the reference prompt has one right answer, the tied prompt several equally right ones
TIES_REF = rb2_row("ref:7", "Ties", ["7"], ["6", "8", "9"], prompt="What is 3 + 4?")
TIES_TIED = rb2_row("tied:7", "Ties", [f"{n} is a prime below 10." for n in (2, 3, 5, 7)],
                    [f"{n} is a prime below 10." for n in (4, 6, 8, 9, 10)],
                    prompt="Name one prime number below 10.")


def import_rows(tmp_path, rows):
    path = tmp_path / "rb2.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return import_source("rewardbench2", "rewardbench2", [str(path)])


def meta(item):
    return json.loads(item["meta"])


def test_each_row_is_one_item_holding_all_its_completions(tmp_path):
    r = import_rows(tmp_path, [FACTUALITY, TIES_REF, TIES_TIED])
    assert not r.quarantine and r.stats.imported == 3 and len(r.items) == 3
    for item, row in zip(r.items, [FACTUALITY, TIES_REF, TIES_TIED]):
        m = meta(item)
        unrolled = row["chosen"] + row["rejected"]  # the harness's unrolled order: the first num_correct correct
        assert item["split"] == "eval" and item["subset"] == row["subset"] and item["label_kind"] == "best"
        assert item["conversation"] == [{"role": "user", "content": row["prompt"]}]
        assert sorted(item["responses"]) == sorted(unrolled)
        assert m["rb2_id"] == row["id"] and m["num_correct"] == row["num_correct"]
        assert m["total_completions"] == row["total_completions"] == len(item["responses"])
        # order maps each item position back to the unrolled list; correct lists where the chosen ones went
        assert [unrolled[u] for u in m["order"]] == item["responses"]
        assert m["correct"] == sorted(m["correct"])
        assert sorted(item["responses"][j] for j in m["correct"]) == sorted(row["chosen"])
        # best is where chosen[0] went: the completion the harness's ratings mode credits (scores[0])
        assert item["responses"][item["best"]] == row["chosen"][0] and item["best"] in m["correct"]
    tied = meta(r.items[2])
    assert tied["num_correct"] == 4 and len(tied["correct"]) == 4 and tied["total_completions"] == 9


def test_the_order_is_seeded_by_the_row_id_and_the_correct_one_is_not_always_first(tmp_path):
    rows = [rb2_row(str(i), "Math", [f"right {i}"], [f"wrong {i}.{j}" for j in range(3)], prompt=f"q{i}")
            for i in range(40)]
    first = import_rows(tmp_path, rows)
    again = import_rows(tmp_path, rows)
    assert [i["responses"] for i in first.items] == [i["responses"] for i in again.items]
    assert [i["item_id"] for i in first.items] == [i["item_id"] for i in again.items]
    assert {i["best"] for i in first.items} == {0, 1, 2, 3}
    # the same completions under another id get their own order (the seed is the id, not the content)
    moved = [dict(row, id=f"x{row['id']}") for row in rows]
    orders = [meta(i)["order"] for i in import_rows(tmp_path, moved).items]
    assert orders != [meta(i)["order"] for i in first.items]


def test_a_ties_item_is_fed_to_the_grm_as_one_prompt_with_every_completion(tmp_path):
    (item,) = import_rows(tmp_path, [TIES_TIED]).items
    for shuffle in (False, True):
        requests, planned = plan([item], k=1, seed=0, templates=Templates.default(), tag="judge:grm", shuffle=shuffle)
        assert len(requests) == 1 and len(planned) == 1
        prompt = "\n".join(m["content"] for m in requests[0].messages)
        assert all(c in prompt for c in item["responses"])
        assert len(planned[0].permutation) == 9
        if not shuffle:  # an unshuffled read sees the item's own (seeded) order
            assert list(planned[0].permutation) == list(range(9))


def test_malformed_rows_are_quarantined_with_a_reason(tmp_path):
    bad = {
        "num_correct_mismatch": rb2_row("1", "Math", ["a"], ["b", "c"], num_correct=2),
        "total_mismatch": rb2_row("2", "Math", ["a"], ["b", "c"], total_completions=4),
        "no_rejected": rb2_row("3", "Focus", ["a"], []),
        "no_chosen": rb2_row("4", "Focus", [], ["b"]),
        "empty_completion": rb2_row("5", "Safety", ["a"], ["  "]),
        "non_text_completion": rb2_row("6", "Safety", ["a"], [3]),
        "chosen_not_a_list": rb2_row("7", "Safety", "a", ["b"], num_correct=1, total_completions=2),
        "bool_count": rb2_row("8", "Precise IF", ["a"], ["b"], num_correct=True),
        "missing_prompt": {k: v for k, v in rb2_row("9", "Math", ["a"], ["b"]).items() if k != "prompt"},
        "bad_ties_id": rb2_row("7", "Ties", ["a"], ["b"]),
        "both_chosen_and_rejected": rb2_row("10", "Factuality", ["a"], ["b", "a"]),
    }
    r = import_rows(tmp_path, [FACTUALITY, *bad.values()])
    assert len(r.items) == 1 and r.stats.read == 1 + len(bad) == r.stats.imported + r.stats.quarantined_total
    got = dict(zip(bad, (q["reason"] for q in r.quarantine)))
    assert got["num_correct_mismatch"].startswith("wrong_type: chosen has 1 completions but num_correct=2")
    assert got["total_mismatch"] == "wrong_type: chosen + rejected hold 3 completions but total_completions=4"
    assert got["no_rejected"].startswith("too_few_responses: no incorrect completion")
    assert got["no_chosen"].startswith("too_few_responses: no correct completion")
    assert got["empty_completion"] == "empty_text: rejected[0]"
    assert got["non_text_completion"].startswith("non_text: rejected[0]")
    assert got["chosen_not_a_list"].startswith("wrong_type: chosen is str")
    assert got["bool_count"].startswith("wrong_type: num_correct=True")
    assert got["missing_prompt"] == "missing_field: prompt"
    assert got["bad_ties_id"].startswith("bad_label: Ties id '7'")
    assert got["both_chosen_and_rejected"].startswith("bad_label: a completion is both chosen and rejected")
    # the raw row is kept with its reason
    assert all(json.loads(q["raw"])["id"] for q in r.quarantine)


def test_the_format_is_registered_with_the_hub_test_split():
    fmt = FORMATS["rewardbench2"]
    assert fmt.default_split == "eval" and fmt.hf_split == "test"
    assert "ALL its completions" in fmt.description and "\n" not in fmt.description
