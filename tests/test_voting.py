import random

from hypothesis import given, settings
from hypothesis import strategies as st

from grm.metrics import accuracy, best_beats_all, picked_best, roc_auc
from grm.shuffling import permutation, shown, shown_index, to_original
from grm.voting import default_k_meta, metarm_select, metarm_vote, vote


def test_paper_worked_example_votes_20_vs_27():
    # Table 17: (8, 8) in the original order, (9, 5) and (10, 7) on the reversed order.
    reversed_perm = [1, 0]
    samples = [[8, 8], to_original([9, 5], reversed_perm), to_original([10, 7], reversed_perm)]
    v = vote(samples, 2)
    assert v.totals == (20, 27) and v.best == 1 and v.n_used == 3


def test_parse_failures_are_left_out_and_counted():
    v = vote([[3, 9], None, [7, 2], None], 2)
    assert v.totals == (10, 11) and v.n_used == 2 and v.n_failed == 2
    assert vote([None, None], 2).best is None


def test_ties_break_at_random_but_reproducibly():
    picks = {vote([[5, 5]], 2, seed=0, key=f"item{i}").best for i in range(40)}
    assert picks == {0, 1}  # both sides win some ties
    assert vote([[5, 5]], 2, seed=3, key="x") == vote([[5, 5]], 2, seed=3, key="x")
    assert vote([[5, 5]], 2, key="x").tied


def test_metarm_vote_keeps_the_top_k_meta_samples():
    samples = [[9, 1], [1, 9], [2, 8], None]
    meta = [-5.0, 2.0, 1.0, 9.0]  # the failed sample's high meta score does not count
    assert metarm_select(meta, [s is not None for s in samples], 2) == [1, 2]
    v = metarm_vote(samples, meta, 2, 2)
    assert v.totals == (3, 17) and v.best == 1 and v.n_used == 2
    assert v.n_failed == 1 and v.n_discarded == 1  # the unparsed sample failed; the parsed [9, 1] was discarded
    assert default_k_meta(8) == 4 and default_k_meta(1) == 1


def test_permutation_round_trip_and_seeding():
    perm = permutation(4, 0, "item", 3)
    assert sorted(perm) == [0, 1, 2, 3]
    assert perm == permutation(4, 0, "item", 3)
    assert len({tuple(permutation(4, 0, "item", j)) for j in range(30)}) > 5
    resp = ["a", "b", "c", "d"]
    seen = shown(resp, perm)
    assert seen[shown_index(2, perm)] == "c"
    shown_scores = [10 * (resp.index(r) + 1) for r in seen]  # each response scored by its identity
    assert to_original(shown_scores, perm) == [10, 20, 30, 40]


score_lists = st.integers(min_value=2, max_value=5).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.one_of(st.none(), st.lists(st.integers(1, 10), min_size=n, max_size=n)), min_size=1, max_size=12),
    )
)


@settings(max_examples=200)
@given(score_lists, st.randoms())
def test_sample_order_does_not_change_the_vote(data, rnd):
    n, samples = data
    shuffled = list(samples)
    rnd.shuffle(shuffled)
    assert vote(samples, n, key="k") == vote(shuffled, n, key="k")


@settings(max_examples=200)
@given(score_lists, st.integers(0, 4))
def test_a_sample_giving_the_best_response_the_top_score_never_flips_a_correct_vote(data, best_raw):
    n, samples = data
    best = best_raw % n
    v = vote(samples, n, key="k")
    if v.best != best or v.tied:
        return
    extra = [1] * n
    extra[best] = 10
    assert vote(samples + [extra], n, key="k").best == best


@settings(max_examples=100)
@given(st.integers(1, 6), st.integers(0, 1000), st.text(max_size=8))
def test_permutation_is_always_a_permutation(n, seed, key):
    perm = permutation(n, seed, key)
    scores = list(range(n))
    assert to_original(shown(scores, perm), perm) == scores


def test_metrics_with_counts():
    m = accuracy([True, False, True, True])
    assert (m.value, m.n) == (75.0, 4)
    assert picked_best(1, 1) and not picked_best(None, 0)
    assert best_beats_all((20, 27, 3), 1) and not best_beats_all((27, 27, 3), 1) and not best_beats_all(None, 0)


def test_roc_auc_matches_pairwise_definition():
    rng = random.Random(0)
    scores = [rng.randint(1, 10) for _ in range(60)]
    labels = [rng.randint(0, 1) for _ in range(60)]
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    expected = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))
    m = roc_auc(scores, labels)
    assert abs(m.value - 100 * expected) < 1e-9 and m.n == 60
    assert roc_auc([1, 2, 3], [0, 1, 1]).value == 100.0
    assert roc_auc([1, 2], [1, 1]).value != roc_auc([1, 2], [1, 1]).value  # NaN: one class only
