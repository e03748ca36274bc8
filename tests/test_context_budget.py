"""Context budgets (paper config: Gemma-2's 8192 tokens): a meta-RM input too long for the meta RM loses the
middle of its longest response, never its start or the GRM's scores, and is counted; eval prompts over the
generation budget are reported per benchmark in ``results``."""

from __future__ import annotations

from tests.eval_fixtures import greedy, item, judgment, value
from tests.test_evaluate import _evaluate, evaluate_rows


def test_a_meta_rm_input_too_long_loses_the_middle_of_its_longest_response(tmp_path):
    """Never the start of the sequence (where a BOS token sits), the query, the other responses or the GRM's
    output with its scores; the cut inputs are counted."""
    from transformers import AutoTokenizer

    from grm.prompts import CUT_MARK, Templates, metarm_input
    from grm.reward import HFMetaScorer
    from grm.training.metarm import _ids, encode
    from tests.tiny_lm import build_tiny_lm

    folder = build_tiny_lm(tmp_path / "lm", max_positions=256)
    tok = AutoTokenizer.from_pretrained(folder)
    long = " ".join(f"step{i} of the long answer" for i in range(120)) + " FINAL_LINE"
    judgment = "Specific Criteria: accuracy.\nAnalysis: response 2 rambles.\nScores: \\boxed{8, 3}"
    text = metarm_input([{"role": "user", "content": "QUERY what is 2+2?"}], ["SHORT four", long], judgment, Templates.default())
    full = _ids(tok, text)
    short_text = metarm_input([{"role": "user", "content": "QUERY what is 2+2?"}], ["SHORT four", "5"], judgment,
                              Templates.default())
    limit = 400
    assert len(full) > limit >= len(_ids(tok, short_text))
    enc, cut = encode(tok, [text, short_text], limit)
    assert cut == [True, False] and len(enc["input_ids"][0]) <= limit and enc["input_ids"][1] == _ids(tok, short_text)
    got = tok.decode(enc["input_ids"][0])
    assert enc["input_ids"][0][0] == full[0]  # the first token of the chat stays
    assert "QUERY what is 2+2?" in got and "SHORT four" in got and CUT_MARK.strip() in got
    assert "step0 of" in got and "FINAL_LINE" in got and "step60 of" not in got  # the middle went
    assert got.rstrip().endswith(tok.decode(full[-12:]).rstrip()) and "\\boxed{8, 3}" in got

    huge = metarm_input([{"role": "user", "content": "QUERY " + "very " * 800}], ["a", "b"], judgment, Templates.default())
    enc, cut = encode(tok, [huge], limit)
    ids = enc["input_ids"][0]
    whole = _ids(tok, huge)
    assert len(ids) == limit and ids[: limit // 4] == whole[: limit // 4] and ids[limit // 4:] == whole[-(limit - limit // 4):]
    assert cut == [True]

    scorer = HFMetaScorer(str(folder), device="cpu", max_length=limit)
    scores, flags = scorer.score([text, short_text])
    assert len(scores) == 2 and flags == [True, False]


def test_eval_prompts_over_the_budget_are_counted_per_benchmark_in_results(tmp_path):
    items = [item(f"{s}{i}", s, "x", ["a", "bb"], best=0) for s in ("llmbar", "mtbench") for i in range(3)]
    skipped = {"model": "grm", "scores": None, "parse_status": "skipped", "completion": ""}
    judgments = [greedy(i["item_id"], [8, 2]) for i in items]
    judgments[0] = {**judgments[0], **skipped}  # one llmbar prompt was too long for greedy decoding
    for i in items:
        for j in range(2):
            judgments.append(judgment("grm", i["item_id"], [8, 2], idx=j))
    judgments[-1] = {**judgments[-1], **skipped}  # and one mtbench prompt for sampling (one of its samples)
    rows = evaluate_rows(_evaluate(tmp_path, items, judgments, plot=False))
    got = {(r["benchmark"], r["method"], r["k"]): (r["value"], r["n"]) for r in rows if r["metric"] == "skipped_prompts"}
    assert got == {("llmbar", "greedy", None): (1, 3), ("mtbench", "greedy", None): (0, 3),
                   ("llmbar", "voting", 2): (0, 3), ("mtbench", "voting", 2): (1, 3)}
    assert value(rows, benchmark="llmbar", subset="x", method="greedy", metric="failed_rate") > 0  # still a failure
