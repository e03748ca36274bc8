"""The registry of dataset formats: name -> adapter, with a one-line description each."""

from __future__ import annotations

from grm.formats import generic, listwise, pairwise, single, solutions
from grm.formats.base import Format

_ALL = [
    # evaluation benchmarks
    Format("rewardbench", "RewardBench (allenai/reward-bench): prompt, chosen, rejected, subset", pairwise.rewardbench,
           "eval", hf_split="filtered"),
    Format("rewardbench2", "RewardBench 2 (allenai/reward-bench-2): one item per row with ALL its completions "
           "(chosen + rejected, Ties up to 20+) in one prompt, in an order seeded by the row id; meta.correct, "
           "num_correct, rb2_id for scoring; prompts over the judge's context are skipped and counted",
           listwise.rewardbench2, "eval", hf_split="test"),
    Format("rm_bench", "RM-Bench: 3 chosen x 3 rejected style variants -> 9 pairs per prompt (3x3 style matrix)",
           listwise.rm_bench, "eval"),
    Format("judgebench", "JudgeBench: question, response_A, response_B, label 'A>B' | 'B>A'", pairwise.judgebench, "eval"),
    Format("llmbar", "LLMBar (+ processed FairEval, LLMEval^2, MT-Bench): input, output_1, output_2, label 1|2; "
           "subset from the folder", pairwise.llmbar, "eval"),
    Format("pandalm", "PandaLM test set: majority of 3 annotators (1|2; ties and splits quarantined)", pairwise.pandalm,
           "eval"),
    Format("autoj_pairwise", "Auto-J pairwise test: prompt, 'response 1', 'response 2', label 0|1 (2 = tie, "
           "quarantined)", pairwise.autoj_pairwise, "eval"),
    Format("evalbiasbench", "EvalBiasBench: {bias type: [instruction, response1, response2, label]}",
           pairwise.evalbiasbench, "eval"),
    Format("ppe_preference", "PPE human preference (lmarena-ai/PPE-Human-Preference-V1): winner model_a|model_b "
           "(ties quarantined)", pairwise.ppe_preference, "eval", hf_split="test"),
    Format("ppe_correctness", "PPE correctness best-of-K: one pair per sampled_conflict_pair (correct vs incorrect)",
           listwise.ppe_correctness, "eval"),
    Format("rmb_pairwise", "RMB pairwise set: conversation_input, chosen, reject, category_path",
           pairwise.rmb_pairwise, "eval"),
    Format("rmb_bon", "RMB best-of-N set: bon_best beats every answer in loser_list", listwise.rmb_bon, "eval"),
    Format("realmistake", "ReaLMistake: input, llm_response, error_label error|no_error -> single-response rating",
           single.realmistake, "eval"),
    Format("finegrained_qa", "FineGrainedRLHF qa-feedback: 4 answers ranked by 6 pairwise preferences "
           "(inconsistent or no single best quarantined)", listwise.finegrained_qa, "eval"),
    Format("qwen_math_bon", "Qwen2.5-Math best-of-8: each solution a 0/1 correctness item, grouped by problem",
           listwise.qwen_math_bon, "eval"),
    Format("realcritic", "RealCritic: question, reasoning, previous_score [true|false] -> single-response rating; "
           "subset from the folder", single.realcritic, "eval"),
    Format("gsm8k_solutions", "GSM8K example_model_solutions: 4 model solutions per question with is_correct, "
           "each a single-response rating (pairs: gsm8k_solution_pairs)",
           single.gsm8k_solutions, "eval"),
    # training data
    Format("gsm8k", "GSM8K train/test: question + worked answer '#### n' -> reference solution rated correct "
           "(as a data.math_samples source: the problems whose sampled solutions are paired)",
           single.gsm8k, "train"),
    Format("math", "MATH (hendrycks): problem, solution (\\boxed answer), level, type -> reference solution rated "
           "correct (as a data.math_samples source: the problems whose sampled solutions are paired)",
           single.math_problems, "train"),
    # the paper's math data: judged solutions -> a correct vs an incorrect solution of the same problem
    Format("gsm8k_solution_pairs", "GSM8K example_model_solutions as training pairs: a correct vs an incorrect "
           "solution of each question (all correct / all incorrect quarantined)", solutions.gsm8k_solution_pairs,
           "train"),
    Format("sampled_solutions", "rows of the math_samples table (solutions sampled for math/gsm8k problems, judged "
           "against the ground truth) -> correct-vs-incorrect pairs", solutions.sampled_solutions, "train"),
    Format("hh_rlhf", "Anthropic HH-RLHF: chosen/rejected transcripts split into turns", pairwise.hh_rlhf, "train"),
    Format("ultrafeedback", "UltraFeedback: per-completion fine-grained_score, best = highest (ties quarantined)",
           listwise.ultrafeedback, "train"),
    Format("offsetbias", "OffsetBias: instruction, output_1, output_2, label 1|2", pairwise.offsetbias, "train"),
    Format("skywork", "Skywork-Reward-Preference: chosen/rejected message lists", pairwise.skywork, "train"),
    Format("helpsteer2_preference", "HelpSteer2-Preference: preference_strength -3..3 (0 = tie, quarantined); "
           "strength kept for hinted sampling", pairwise.helpsteer2_preference, "train"),
    # users' own data
    Format("generic", "your own JSONL/JSON/Parquet: query|conversation + responses & best|ratings, chosen & "
           "rejected, or response & label", generic.generic, "train"),
]

FORMATS: dict[str, Format] = {f.name: f for f in _ALL}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; formats: {', '.join(sorted(FORMATS))}") from None
