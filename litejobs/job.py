"""Job definitions: a function plus its defaults (queue, priority, attempts, timeout, retry policy,
uniqueness)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from .handler import callable_path
from .retry import RetryPolicy

#: A retry policy as given: a :class:`RetryPolicy`, a list of intervals (s), or a function
#: ``attempts -> seconds``.
RetrySpec = RetryPolicy | Sequence[float] | Callable[[int], float]


@dataclass(eq=False)
class Job:
    """A function registered as a job. Calling it (or ``.perform``) runs it inline, now.

    Workers import the job by ``path`` (``module:qualname``) and run the wrapped ``func``.
    ``keep_result``: store its return value (JSON) for ``jobs.result(id)``; ``keep_succeeded``
    / ``keep_failed``: seconds to keep the finished row (``None``: the manager's rule).
    """

    func: Callable[..., Any]
    queue: str = "default"
    priority: int = 50
    max_attempts: int | None = None
    name: str = ""
    adapter: str | None = None
    keep_result: bool = False
    keep_succeeded: float | None = None
    keep_failed: float | None = None
    hooks: dict[str, list[Callable[..., Any]]] = field(default_factory=dict, repr=False)
    max_runtime: float | timedelta | None = None
    retry: RetryPolicy | None = None  # the decorator's policy (a function is fine: not stored)
    unique_for: float | timedelta | None = None
    unique_states: Sequence[str] | None = None
    _path: str | None = field(default=None, repr=False)
    #: Marks a job definition for :func:`litejobs.handler.resolve` (which unwraps ``func``)
    #: without that lower layer importing this module.
    is_litejobs_job: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not self.name:
            self.name = getattr(self.func, "__name__", type(self.func).__name__)
        self.__doc__ = getattr(self.func, "__doc__", None)
        self.__wrapped__ = self.func

    @property
    def path(self) -> str:
        """Import path workers use; validated on first use (lambdas etc. are rejected)."""
        if self._path is None:
            self._path = callable_path(self.func)
        return self._path

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        """Run the job inline in this process (async functions are run to completion)."""
        result = self.func(*args, **kwargs)
        if inspect.isawaitable(result):
            import asyncio  # only here: the CLI's start-up does not pay for it

            return asyncio.run(_await(result))
        return result

    __call__ = perform


async def _await(awaitable: Any) -> Any:
    return await awaitable
