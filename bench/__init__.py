"""Benchmarks of the SAS slot search on a synthetic national-scale PostgreSQL dataset.

`python -m bench.generate` builds the dataset, `python -m bench.run` measures; see README.md.
"""
