"""Process-wide runtime settings of a serving process: gunicorn workers (wsgi.py) and the
`fhir-agenda` commands (the bulk loader, the worker).

Python's cyclic garbage collector makes a pass every 700 allocations of containers, and its
passes walk every object still alive in the generations they cover. A write allocates
hundreds of thousands of short-lived dicts and lists, which reference counting frees at once;
what the passes mostly walk are the objects that live as long as the process (modules, the
FHIR models, memoised shapes). Once the application is built, those are frozen (`gc.freeze`:
no pass walks them again) and the first generation is made larger, so passes are rarer:
10–15 % of a 1,000-Slot update Bundle's time in-process (bench/README.md, "Writes"). Cyclic
garbage is still collected, a little later.
"""

from __future__ import annotations

import gc

FIRST_GENERATION = 20_000  # allocations between two passes (CPython's default: 700)


def tune_garbage_collector() -> None:
    """Call once the application is built, before serving."""
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION, second, third)
