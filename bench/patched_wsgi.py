"""`gunicorn bench.patched_wsgi:app`: the app with the BENCH_PATCHES of bench/experiments.py."""

from bench.experiments import build_app

app = build_app()
