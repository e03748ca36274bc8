import pytest

from grm.prompts import TemplateError, Templates, grm_prompt, metarm_input, metarm_turns, pairwise_judge_prompt

CONV = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]


def test_grm_prompt_lists_responses_in_order_and_asks_for_one_box():
    t = Templates.default()
    p = grm_prompt(CONV, ["four", "5", "IV"], t)
    assert p.index("[Start of Response 1]\nfour") < p.index("[Start of Response 2]\n5") < p.index("[Start of Response 3]\nIV")
    assert "\\boxed{x, x, x}" in p  # the example box has one slot per response
    assert "User: What is 2+2?" in p and "System: Be brief." in p
    assert "Specific Criteria" in p and "Analysis" in p
    assert "best response is" not in p


def test_hinted_variant_names_the_best_response_and_strength():
    t = Templates.default()
    p = grm_prompt(CONV, ["a", "b"], t, hint_best=1, hint_strength="much better")
    assert p.rstrip().endswith("The best response is: Response 2 (much better)")
    with pytest.raises(ValueError):
        grm_prompt(CONV, ["a", "b"], t, hint_best=2)


def test_single_response_binary_variant_asks_for_zero_or_one():
    t = Templates.default()
    p = grm_prompt(CONV, ["4"], t, binary=True)
    assert "\\boxed{1}" in p and "0 if it is not" in p
    with pytest.raises(ValueError):
        grm_prompt(CONV, ["4", "5"], t, binary=True)


def test_user_template_file_replaces_wording_and_keeps_latex_braces(tmp_path):
    f = tmp_path / "paper.txt"
    f.write_text("Judge this.\n{{conversation}}\n{{responses}}\nScores like \\boxed{x, x} for {{n}} responses.")
    t = Templates.load({"grm": str(f)})
    p = grm_prompt(CONV, ["a", "b"], t, hint_best=0)
    assert p.startswith("Judge this.") and "\\boxed{x, x} for 2 responses" in p
    assert p.rstrip().endswith("The best response is: Response 1")  # no {{hint}} field: appended


def test_bad_template_files_fail_with_the_file_named(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("{{conversation}} {{responses}} {{oops}}")
    with pytest.raises(TemplateError, match=r"oops.*|t\.txt"):
        Templates.load({"grm": str(f)})
    with pytest.raises(TemplateError, match="cannot read"):
        Templates.load({"grm": str(tmp_path / "missing.txt")})
    g = tmp_path / "g.txt"
    g.write_text("no fields at all")
    with pytest.raises(TemplateError, match="lacks required"):
        Templates.load({"metarm": str(g)})


def test_metarm_and_pairwise_inputs():
    t = Templates.default()
    m = metarm_input(CONV, ["a", "b"], "Analysis: ok\nScores: \\boxed{3, 9}", t)
    assert "\\boxed{3, 9}" in m and "[Start of Response 2]\n\x1fb\x1f\n" in m  # each response's text marked
    # as in the paper, the GRM's output is the response of the meta RM's chat, query and responses its prompt
    user, assistant = metarm_turns(m)
    assert user["role"] == "user" and "[Start of Response 2]\nb" in user["content"] and "boxed" not in user["content"]
    assert assistant == {"role": "assistant", "content": "Analysis: ok\nScores: \\boxed{3, 9}"}
    assert metarm_turns("plain text") == [{"role": "user", "content": "plain text"}]  # older stores' texts
    assert "\\boxed{2}" in pairwise_judge_prompt(CONV, ["a", "b"], t)


def test_response_block_template_renders_every_prompt_kind(tmp_path):
    f = tmp_path / "response.txt"
    f.write_text("Response {{i}}: {{response}}\n")
    t = Templates.load({"response": f})
    p = grm_prompt(CONV, ["four", "5"], t)
    assert "Response 1: four\nResponse 2: 5\n" in p and "[Start of Response" not in p
    assert "Response 2: b" in metarm_turns(metarm_input(CONV, ["a", "b"], "Scores: \\boxed{1, 2}", t))[0]["content"]
    assert "Response 1: a\nResponse 2: b" in pairwise_judge_prompt(CONV, ["a", "b"], t)
    f.write_text("Response {{n}}: {{response}}")
    with pytest.raises(TemplateError, match="response"):
        Templates.load({"response": f})


def test_readme_lists_every_template_the_released_checkpoints_read():
    """Driving the released DeepSeek-GRM checkpoints needs the paper's wording in every template their inputs
    are made of (the pairwise-judge baseline is not one of them)."""
    import re
    from dataclasses import fields
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    paragraph = readme[readme.index("To drive the released DeepSeek-GRM"):].split("\n\n")[0]
    named = set(re.findall(r"`prompts\.(\w+)`", paragraph))
    assert {f.name for f in fields(Templates)} - {"pairwise_judge"} <= named
