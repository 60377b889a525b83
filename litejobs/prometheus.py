"""The Prometheus text exposition of a database's jobs: ``litejobs metrics`` prints it, and a
web dashboard serves the same bytes.

Built on the maintained client library (``prometheus_client``, the ``metrics`` extra), which
owns the format: escaping, ``HELP``/``TYPE`` lines, histogram conventions, OpenMetrics. Nothing
is kept in this process: every scrape reads storage, so any process (a cron job, the dashboard,
a sidecar) serves the same numbers, summed over every worker and host.

* ``litejobs_jobs{queue,state}``: jobs per queue and state now (a gauge).
* ``litejobs_oldest_ready_age_seconds``: how far behind the workers are.
* ``litejobs_workers{alive}``: registered workers, alive or provably gone.
* ``litejobs_job_outcomes_total{queue,outcome}``: runs per outcome, since the database began
  (minutes folded into the totals keep counting: the counter never goes back).
* ``litejobs_job_run_seconds{queue}`` and ``litejobs_job_wait_seconds{queue}``: histograms of
  run times and of waits from due to started; ``histogram_quantile()`` reads percentiles. Their
  ``le`` bounds are powers of 4 of litejobs' own buckets (:mod:`litejobs.metrics`), so every
  count is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .adapters.base import JOB_STATES, Adapter
from .errors import ConfigurationError
from .metrics import BUCKETS_PER_OCTAVE, COUNTED, Histogram, summarize, upper_bound

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

#: Histogram ``le`` bounds: 2^-12 s (0.24 ms) to 2^14 s (4.6 h), a factor of 4 apart.
LE_BOUNDS = [upper_bound(i * BUCKETS_PER_OCTAVE) for i in range(-12, 15, 2)]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def require_client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "the Prometheus exposition needs prometheus_client: pip install 'litejobs[metrics]'"
        ) from None
    return prometheus_client


def exposition(adapter: Adapter) -> bytes:
    """The text format (version 0.0.4) for ``adapter``'s database, read now."""
    client = require_client()
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector(adapter))
    data: bytes = client.generate_latest(registry)
    return data


class JobsCollector:
    """A ``prometheus_client`` collector reading storage on every ``collect()``."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        yield self._jobs(GaugeMetricFamily)
        yield from self._workers(GaugeMetricFamily)
        stats = summarize(row[1:] for row in self.adapter.stats_rows(None))
        outcomes = CounterMetricFamily(
            "litejobs_job_outcomes",
            "Runs of jobs per outcome (succeeded, errored: will retry, failed, cancelled).",
            labels=["queue", "outcome"],
        )
        run = HistogramMetricFamily(
            "litejobs_job_run_seconds", "How long jobs ran, in seconds.", labels=["queue"]
        )
        wait = HistogramMetricFamily(
            "litejobs_job_wait_seconds",
            "How long jobs waited from due to started, in seconds.",
            labels=["queue"],
        )
        for queue, one in stats.items():
            for kind in COUNTED:
                outcomes.add_metric([queue, kind], one.counts.get(kind, 0))
            run.add_metric([queue], _buckets(one.run), one.run.total)
            wait.add_metric([queue], _buckets(one.wait), one.wait.total)
        yield from (outcomes, run, wait)

    def _jobs(self, gauge: Any) -> Metric:
        jobs = gauge("litejobs_jobs", "Jobs per queue and state now.", labels=["queue", "state"])
        for queue, counts in sorted(self.adapter.counts().items()):
            for state in JOB_STATES:
                jobs.add_metric([queue, state], counts.get(state, 0))
        return jobs  # type: ignore[no-any-return]

    def _workers(self, gauge: Any) -> Iterator[Metric]:
        from .inspection import gone_workers

        now = self.adapter.clock.now()
        oldest = self.adapter.oldest_ready_at()
        yield gauge(
            "litejobs_oldest_ready_age_seconds",
            "Age of the oldest job waiting for a worker (0: none waits).",
            value=0.0 if oldest is None else max(0.0, now - oldest),
        )
        rows = self.adapter.workers()
        gone = gone_workers(self.adapter, rows)
        workers = gauge("litejobs_workers", "Registered workers.", labels=["alive"])
        workers.add_metric(["true"], len(rows) - len(gone))
        workers.add_metric(["false"], len(gone))
        yield workers


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs, ``+Inf`` last, as the client library wants them."""
    from prometheus_client.utils import floatToGoString

    counts = histogram.cumulative(LE_BOUNDS)
    pairs: list[tuple[str, float]] = [
        (str(floatToGoString(b)), float(c))  # type: ignore[no-untyped-call]
        for b, c in zip(LE_BOUNDS, counts, strict=True)
    ]
    return [*pairs, ("+Inf", float(histogram.count))]
