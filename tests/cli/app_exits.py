"""A module that exits when imported (a script used as a job module): for the tests."""

import sys

sys.exit(3)


def record(value: object) -> None:  # never reached
    pass
