"""Bad-input fuzz campaign (not a test): at least ``--inputs`` generated inputs for each target of
tests/input_fuzz.py: the GRM output parser, every dataset format adapter through the importer, the source file
readers, and config files. Stops at the first broken promise (an exception escaping, a row not accounted for, a
config message not naming the file and field) with hypothesis's shrunk example; prints inputs and outcomes per
target.

    .venv/bin/python -m bench.input_fuzz [--inputs 100000] [--seed 0] [--only NAME ...] [--jobs 2]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

from tests import input_fuzz

ROWS_PER_EXAMPLE = 10  # a format example: a batch of up to 10 rows, then their neighbourhoods, a third repeated


# inputs one hypothesis example brings with its neighbourhood (about): how many examples to ask for
PER_EXAMPLE = {"parser": 25, "config": 4, "readers": 40}
PER_FORMAT_EXAMPLE = 500


def run_target(target: str, inputs: int, rng_seed: int) -> tuple[str, dict, float, int]:
    """Rounds of hypothesis examples (each with its neighbourhood) until ``inputs`` inputs were tried."""
    t0 = time.perf_counter()
    counts, examples = input_fuzz.Counter(), 0
    while counts["inputs"] < inputs:
        n = max(10, (inputs - counts["inputs"]) // PER_EXAMPLE.get(target, PER_FORMAT_EXAMPLE))
        s = rng_seed + examples
        if target == "parser":
            counts.update(input_fuzz.parser_campaign(n, s, neighbours=True))
            counts["inputs"] = sum(v for k, v in counts.items() if k != "inputs")
        elif target == "config":
            counts.update(input_fuzz.config_campaign(n, s, neighbours=True))
        elif target == "readers":
            counts.update(input_fuzz.reader_campaign(n, s, neighbours=True))
        else:
            counts.update(input_fuzz.format_campaign(target, n, s, ROWS_PER_EXAMPLE, neighbours=True))
        examples += n
    return target, dict(counts), time.perf_counter() - t0, examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=100_000, help="inputs per target, at least")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="targets: parser, config, readers, or format names")
    ap.add_argument("--jobs", type=int, default=2, help="targets run in parallel processes")
    a = ap.parse_args()
    targets = a.only or ["parser", "config", "readers", *sorted(input_fuzz.FORMATS)]
    t0 = time.perf_counter()
    total = 0
    with ProcessPoolExecutor(a.jobs) as pool:
        for target, counts, secs, examples in pool.map(run_target, targets, [a.inputs] * len(targets),
                                                       [a.seed] * len(targets)):
            n = counts.pop("inputs")
            total += n
            print(f"{target}: {n} inputs ({examples} hypothesis examples with their neighbourhoods) in {secs:.0f} s, "
                  f"no exception escaped, every row accounted for; {dict(sorted(counts.items()))}", flush=True)
    print(f"total: {total} inputs over {len(targets)} targets in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
