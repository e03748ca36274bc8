from hypothesis import given, settings
from hypothesis import strategies as st

from grm.parsing import BINARY, PARSE_STATUSES, parse_judgment, parse_scores


def test_scores_come_from_the_last_box():
    text = "Scores must look like \\boxed{x, x}.\nAnalysis: first \\boxed{1, 2}\nScores: \\boxed{8, 9}"
    assert parse_scores(text, 2) == ("ok", (8, 9))


def test_specific_parse_statuses():
    assert parse_scores("no box here", 2) == ("no_box", None)
    assert parse_scores("\\boxed{8}", 2) == ("wrong_count", None)
    assert parse_scores("\\boxed{}", 1) == ("wrong_count", None)
    assert parse_scores("\\boxed{8, 11}", 2) == ("out_of_range", None)
    assert parse_scores("\\boxed{0, 3}", 2) == ("out_of_range", None)
    assert parse_scores("\\boxed{8.5, 3}", 2) == ("not_integer", None)
    assert parse_scores("\\boxed{eight, 3}", 2) == ("not_integer", None)
    assert parse_scores("\\boxed{\\text{8}, 3}", 2) == ("not_integer", None)
    assert parse_scores("\\boxed{1}", 1, BINARY) == ("ok", (1,))
    assert parse_scores("\\boxed{7}", 1, BINARY) == ("out_of_range", None)
    assert parse_scores("Scores: \\boxed{ 10 ,1 }", 2) == ("ok", (10, 1))


def test_an_unclosed_final_box_is_truncated_and_never_falls_back_to_an_earlier_box():
    assert parse_scores("\\boxed{3, 4} then \\boxed{5, ", 2) == ("truncated", None)
    # a maths answer quoted in the critique, then the output cut off inside its 0/1 scores box
    cut = "Specific Criteria: c\nAnalysis: the answer is \\boxed{1}, as the response says.\nScores: \\boxed{"
    assert parse_judgment(cut, 1, BINARY).status == "truncated"


def test_scores_come_only_from_a_box_that_follows_the_critique():
    quoted = "Specific Criteria: c\nAnalysis: the answer is \\boxed{1}, as the response"
    assert parse_scores(quoted, 1, BINARY) == ("no_box", None)  # cut off inside the critique
    assert parse_scores(quoted + " says.\nScores: ", 1, BINARY) == ("no_box", None)  # cut off before the box
    assert parse_scores(quoted + " says.\nScores: \\boxed{0}", 1, BINARY) == ("ok", (0,))
    assert parse_scores("Specific Criteria: \\boxed{7}\nAnalysis: cut", 1) == ("no_box", None)  # box before the critique
    assert parse_scores("Analysis: a\n### Output:\n\\boxed{10, 7}", 2) == ("ok", (10, 7))  # the paper's case study


def test_principles_and_critique_are_split_out():
    text = (
        "Specific Criteria:\n1. Accuracy (Weight: 60%)\n2. Clarity (Weight: 40%)\n"
        "Analysis:\nResponse 1 is right, Response 2 is wrong.\n"
        "Scores: \\boxed{9, 2}"
    )
    p = parse_judgment(text, 2)
    assert p.ok and p.scores == (9, 2)
    assert p.principles.startswith("1. Accuracy") and "Clarity" in p.principles
    assert p.critique == "Response 1 is right, Response 2 is wrong."
    bold = parse_judgment("**Specific Criteria**: c\n**Analysis**: a\n**Scores**: \\boxed{4, 5}", 2)
    assert (bold.principles, bold.critique, bold.scores) == ("c", "a", (4, 5))


@settings(max_examples=300)
@given(st.text(), st.integers(min_value=1, max_value=5))
def test_never_raises_on_any_string(text, n):
    p = parse_judgment(text, n)
    assert p.status in PARSE_STATUSES
    assert (p.scores is None) == (p.status != "ok")


@settings(max_examples=200)
@given(
    st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=6),
    st.text(alphabet=st.characters(blacklist_characters="\\{}"), max_size=200),
    st.text(alphabet=st.characters(blacklist_characters="\\{}"), max_size=200),
)
def test_round_trips_well_formed_outputs(scores, principles, analysis):
    text = f"Specific Criteria: {principles}\nAnalysis: {analysis}\nScores: \\boxed{{{', '.join(map(str, scores))}}}"
    p = parse_judgment(text, len(scores))
    assert p.ok and p.scores == tuple(scores)


def test_non_string_input_is_a_parse_failure():
    assert parse_judgment(None, 2).status == "no_box"  # type: ignore[arg-type]


_CRITIQUE_TEXT = st.text(alphabet=st.characters(blacklist_characters="\\{}:"), max_size=120)
_QUOTED_BOXES = st.lists(st.integers(min_value=0, max_value=10).map(lambda v: f"\\boxed{{{v}}}"), max_size=3)


def _output(principles, critique, quoted, scores):
    """A well-formed GRM output whose critique quotes complete boxes (e.g. maths answers)."""
    return (f"Specific Criteria: {principles}\nAnalysis: {critique} " + " ".join(quoted)
            + f" {critique}\nScores: \\boxed{{{', '.join(map(str, scores))}}}")


@settings(max_examples=300)
@given(_CRITIQUE_TEXT, _CRITIQUE_TEXT, _QUOTED_BOXES, st.lists(st.integers(1, 10), min_size=1, max_size=5), st.data())
def test_an_output_cut_anywhere_never_scores_with_an_earlier_box(principles, critique, quoted, scores, data):
    text = _output(principles, critique, quoted, scores)
    n = len(scores)
    assert parse_scores(text, n) == ("ok", tuple(scores))  # the whole output: its final box
    cut = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    status, got = parse_scores(text[:cut], n)
    assert got is None and status != "ok"  # every proper prefix ends before the scores box is closed
    if text.rfind("\\boxed{") + len("\\boxed{") <= cut:  # the cut fell inside the final box
        assert status == "truncated"


@settings(max_examples=200)
@given(_CRITIQUE_TEXT, _QUOTED_BOXES, st.integers(0, 1), st.text(alphabet="0123456789, ", max_size=4))
def test_a_cut_binary_output_never_earns_a_label_from_its_critique(critique, quoted, label, partial):
    """RL on 0/1 items: a quoted \\boxed{1} in the critique must not stand in for a cut-off scores box."""
    text = f"Specific Criteria: c\nAnalysis: {critique} " + " ".join(quoted) + f"\nScores: \\boxed{{{partial}"
    assert parse_judgment(text, 1, BINARY).status == "truncated"
    assert parse_scores(text + "}", 1, BINARY)[1] in (None, (0,), (1,))
    assert parse_scores(f"{text[: text.rindex('Scores')]}Scores: \\boxed{{{label}}}", 1, BINARY) == ("ok", (label,))
