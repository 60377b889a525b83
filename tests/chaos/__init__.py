"""A multi-process chaos test: producers, workers, and a killer sending ``SIGKILL``.

Run it alone with a size, e.g. ``python -m tests.chaos --jobs 20000 --workers 4 --kills 50``;
``tests/chaos/test_chaos.py`` runs a small size in the suite. See :mod:`tests.chaos.run`.
"""
