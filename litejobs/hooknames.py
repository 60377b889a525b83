"""The lifecycle hooks' names and type, apart from the executor that runs them.

The manager needs the names to check a job's options, and every command of the CLI builds a
manager; importing the executor for them would load its timeout machinery (``asyncio``,
signals) into ``litejobs list``, ~20 ms at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import JobContext

HOOK_NAMES = ("before_perform", "after_perform", "after_success", "after_failure", "after_cancel")
Hook = Callable[[JobContext], Any]
