"""Evaluation of judgments: votes, per-benchmark credit, ``results`` rows and the report (docs/design.md).

- ``benchmarks``  the benchmarks as data: names, sections, section weights (module-level constants)
- ``protocols``   one scoring function per benchmark with its tie / failure rules, registered in PROTOCOLS
- ``methods``     which voting methods are evaluated (greedy, voting@k, metaRM@k) and the k / k_meta grids
- ``aggregates``  what the SQL hands to the Python scoring (EvalData)
- ``sql``         the vote and credit SQL, run over a DuckDB connection the caller opens through ``storage``
- ``results``     aggregates -> ``results`` rows (common rows + the benchmark's own protocol rows)
- ``report``      the scaling plot and the markdown summary

The voting rule itself stays in ``grm.voting``: it is the paper's rule (Eq. 14, meta-RM-guided voting) that
the GRM applies whenever it is used as a reward (``grm.reward``, ``grm score``), not only here; ``sql`` is its
DuckDB twin and a test checks that both agree. Nothing here imports ``storage``, ``tasks``, ``flows`` or Prefect.
"""
