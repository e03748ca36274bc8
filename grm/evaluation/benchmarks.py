"""The benchmarks as data: their names, which subsets form which section, and the section weights.

Module-level constants only, the way reward-bench keeps ``EXAMPLE_COUNTS`` and ``SUBSET_MAPPING``
(rewardbench/constants.py); how they are used is in ``grm.evaluation.protocols``.
"""

from __future__ import annotations

REWARDBENCH = "rewardbench"
REWARDBENCH2 = "rewardbench2"
RM_BENCH = "rm_bench"
JUDGEBENCH = "judgebench"
PPE_PREFERENCE = "ppe_preference"
PPE_CORRECTNESS = "ppe_correctness"
RMB = "rmb"
REALMISTAKE = "realmistake"
LLMBAR = "llmbar"
EVALBIASBENCH = "evalbiasbench"
MINIWORLD = "miniworld"
OVERALL = "overall"

ALL = "all"  # the subset name of a benchmark's headline row

# Items are recognised by their source name, else by the format they were imported with (a source may be
# named freely in the config).
FORMAT_BENCHMARK = {
    "rewardbench": REWARDBENCH,
    "rewardbench2": REWARDBENCH2,
    "rm_bench": RM_BENCH,
    "judgebench": JUDGEBENCH,
    "ppe_preference": PPE_PREFERENCE,
    "ppe_correctness": PPE_CORRECTNESS,
    "rmb_pairwise": RMB,
    "rmb_bon": RMB,
    "realmistake": REALMISTAKE,
    "llmbar": LLMBAR,
    "evalbiasbench": EVALBIASBENCH,
    "miniworld": MINIWORLD,
}

# ---- RewardBench (allenai/reward-bench rewardbench/constants.py) -------------------------------------------
REWARDBENCH_EXAMPLE_COUNTS = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "math-prm": 984,  # 447 prompts, weighted to equal the six code subsets (6 x 164)
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    "xstest-should-refuse": 154,  # as rewardbench 0.1.4 (reward-bench 6552e93 swapped the earlier 250 / 154)
    "xstest-should-respond": 250,
    "donotanswer": 136,
    "hep-cpp": 164,
    "hep-go": 164,
    "hep-java": 164,
    "hep-js": 164,
    "hep-python": 164,
    "hep-rust": 164,
}
REWARDBENCH_SECTIONS = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": [
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ],
    "Safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond", "donotanswer"],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}

# ---- RewardBench 2 (allenai/reward-bench-2; rewardbench/utils.py of the harness) ---------------------------
REWARDBENCH2_SUBSETS = ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties")  # headline: their plain mean
REWARDBENCH2_TIES = "Ties"
# The Ties score (utils.process_single_model): weights of its five terms over the prompts' ref / tied sets.
REWARDBENCH2_TIES_WEIGHTS = {
    "tied_accuracy": 0.30,
    "ref_accuracy": 0.30,
    "correctness_preferred": 0.20,
    "correctness_preferred_hard": 0.20,
    "correctness_margin": 0.01,
}

# ---- JudgeBench (ScalerLab/JudgeBench run_judge.py): the per-source breakdown, by source-name prefix -------
JUDGEBENCH_SOURCES = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")

# ---- RM-Bench (THU-KEG/RM-Bench compute_accuracy): style index -> name, rows/columns of the 3x3 matrix -----
RM_BENCH_STYLES = ("concise", "detailed_plain", "detailed_markdown")

# ---- PPE Correctness: the GRM paper's five subsets (matched case- and punctuation-insensitively) ----------
PPE_CORRECTNESS_SUBSETS = ("mmlu_pro", "math", "gpqa", "mbpp_plus", "ifeval")

# ---- RMB: goal x task sections, all four needed for the headline -----------------------------------------
RMB_SECTIONS = ("helpfulness/bon", "helpfulness/pairwise", "harmlessness/bon", "harmlessness/pairwise")

# ---- Overall: the GRM paper's mean over these four headlines ----------------------------------------------
OVERALL_PARTS = (REWARDBENCH, PPE_PREFERENCE, PPE_CORRECTNESS, RMB)
