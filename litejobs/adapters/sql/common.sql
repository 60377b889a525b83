-- The statements litejobs runs the same way on SQLite and PostgreSQL, by name.
--
-- Loaded together with the dialect's own file (sqlite.sql, postgres.sql) by __init__.py next to
-- it: a name is defined here or in both dialect files, never in both places. {s}. is the schema
-- prefix: PostgreSQL's quoted schema, nothing on SQLite. What stands here must mean the same on
-- both: standard SQL only, booleans written true/false, times passed as parameters (each
-- dialect's adapter encodes them), no locking clause (SQLite's BEGIN IMMEDIATE already holds
-- the write lock; where PostgreSQL needs FOR UPDATE the statement lives in postgres.sql).


-- ========================================================================= enqueueing ========

-- name: find_active_unique
SELECT id FROM {s}.background_jobs
WHERE unique_key = :unique_key AND state IN ('scheduled', 'ready', 'reserved', 'running');

-- name: tick_last
SELECT max(tick_at) FROM {s}.litejobs_recurring_ticks WHERE name = :name;

-- name: tick_insert
INSERT INTO {s}.litejobs_recurring_ticks (name, tick_at, job_id, created_at)
VALUES (:name, :tick_at, :job_id, :now);

-- name: tick_trim
-- Only the latest tick matters for deciding; keep a short history for people.
DELETE FROM {s}.litejobs_recurring_ticks
WHERE name = :name AND tick_at < (SELECT tick_at FROM {s}.litejobs_recurring_ticks
                                  WHERE name = :name ORDER BY tick_at DESC LIMIT 1 OFFSET 9);

-- name: last_ticks
SELECT name, max(tick_at) FROM {s}.litejobs_recurring_ticks GROUP BY name;

-- name: unique_window
-- The latest job enqueued with a key held for a period, while the period runs, and its state
-- now (NULL: its row is gone: deleted after success, or by a person).
SELECT u.job_id, j.state FROM {s}.litejobs_unique_keys AS u
LEFT JOIN {s}.background_jobs AS j ON j.id = u.job_id
WHERE u.unique_key = :unique_key AND u.expires_at > :now;

-- name: unique_hold
INSERT INTO {s}.litejobs_unique_keys (unique_key, job_id, enqueued_at, expires_at)
VALUES (:unique_key, :job_id, :now, :expires_at)
ON CONFLICT (unique_key) DO UPDATE
SET job_id = excluded.job_id, enqueued_at = excluded.enqueued_at, expires_at = excluded.expires_at;

-- name: unique_expire
DELETE FROM {s}.litejobs_unique_keys WHERE expires_at <= :now;


-- =========================================================================== claiming =======

-- name: ready_queues
-- The queues that have ready jobs, one index seek each (a loose index scan of the ready-by-queue
-- index): what a claim picks from when some queue is paused or limited, however many jobs the
-- paused queues hold.
WITH RECURSIVE q(queue) AS (
    SELECT (SELECT min(queue) FROM {s}.background_jobs WHERE state = 'ready')
    UNION ALL
    SELECT (SELECT min(b.queue) FROM {s}.background_jobs AS b
            WHERE b.state = 'ready' AND b.queue > q.queue)
    FROM q WHERE q.queue IS NOT NULL
)
SELECT queue FROM q WHERE queue IS NOT NULL;

-- name: due_queues
-- Queues with scheduled jobs whose time has come (promoted to ready at the next claim).
SELECT DISTINCT queue FROM {s}.background_jobs WHERE state = 'scheduled' AND run_at <= :now;


-- ========================================================================== recording =======

-- name: record_delete
DELETE FROM {s}.background_jobs
WHERE id = :id AND lock_token = :token AND locked_at = :locked_at AND attempts = :stored_attempts
  AND state IN ('reserved', 'running');

-- name: record_succeeded
UPDATE {s}.background_jobs
SET state = 'succeeded', attempts = :attempts, lock_token = NULL, locked_by = NULL,
    locked_at = NULL, run_at = NULL, last_error = NULL, suspect = false, updated_at = :now,
    finished_at = :now, keep_until = :keep_until, result = :result
WHERE id = :id AND lock_token = :token AND locked_at = :locked_at AND attempts = :stored_attempts
  AND state IN ('reserved', 'running');

-- name: record_errored
UPDATE {s}.background_jobs
SET state = :state, attempts = :attempts, lock_token = NULL, locked_by = NULL, locked_at = NULL,
    run_at = :retry_at, last_error = :error, suspect = false, updated_at = :now
WHERE id = :id AND lock_token = :token AND locked_at = :locked_at AND attempts = :stored_attempts
  AND state IN ('reserved', 'running');

-- name: record_failed
UPDATE {s}.background_jobs
SET state = 'failed', attempts = :attempts, lock_token = NULL, locked_by = NULL,
    locked_at = NULL, run_at = NULL, failed_at = :now, last_error = :error, suspect = false,
    updated_at = :now, finished_at = :now, keep_until = :keep_until
WHERE id = :id AND lock_token = :token AND locked_at = :locked_at AND attempts = :stored_attempts
  AND state IN ('reserved', 'running');

-- name: record_released
-- Given back unstarted: ready again in its old place (run_at kept), its attempt not counted.
UPDATE {s}.background_jobs
SET state = 'ready', attempts = :attempts, lock_token = NULL, locked_by = NULL,
    locked_at = NULL, updated_at = :now
WHERE id = :id AND lock_token = :token AND locked_at = :locked_at AND attempts = :stored_attempts
  AND state IN ('reserved', 'running');

-- name: record_snoozed
-- The job asked to run again later: its attempt is given back (as a release does).
UPDATE {s}.background_jobs
SET state = :state, attempts = :attempts, lock_token = NULL, locked_by = NULL, locked_at = NULL,
    run_at = :retry_at, suspect = false, updated_at = :now
WHERE id = :id AND lock_token = :token AND locked_at = :locked_at AND attempts = :stored_attempts
  AND state IN ('reserved', 'running');

-- name: record_cancelled
-- Stopped for good: a person's cancel carried out, or the job raised Cancel. Kept, like a
-- failed job; `cancelled_at` keeps the time the person asked.
UPDATE {s}.background_jobs
SET state = 'cancelled', attempts = :attempts, lock_token = NULL, locked_by = NULL,
    locked_at = NULL, run_at = NULL, cancelled_at = coalesce(cancelled_at, :now),
    last_error = :error, suspect = false, updated_at = :now, finished_at = :now,
    keep_until = :keep_until
WHERE id = :id AND lock_token = :token AND locked_at = :locked_at AND attempts = :stored_attempts
  AND state IN ('reserved', 'running');

-- name: start_reserved
UPDATE {s}.background_jobs
SET state = 'running', attempts = :attempts, suspect = false, updated_at = :now
WHERE id = :id AND lock_token = :token AND locked_at = :locked_at AND attempts = :stored_attempts
  AND state = 'reserved';


-- ============================================================================ workers =======

-- name: workers_all
SELECT token, name, host, boot_id, pid_ns, pid, pid_start, queues, started_at, heartbeat_at,
       beat_mono, expires_at, stale_after, max_attempts, delete_failed
FROM {s}.litejobs_workers ORDER BY name, started_at;

-- name: worker_insert
INSERT INTO {s}.litejobs_workers (token, name, host, boot_id, pid_ns, pid, pid_start, queues,
                                  started_at, heartbeat_at, beat_mono, expires_at, stale_after,
                                  max_attempts, delete_failed)
VALUES (:token, :name, :host, :boot_id, :pid_ns, :pid, :pid_start, :queues, :now, :now,
        :beat_mono, :expires_at, :stale_after, :max_attempts, :delete_failed);

-- name: worker_beat
-- The whole identity, not just the time: a stand-in row an observer wrote for this worker's
-- orphaned locks (see litejobs/liveness.py) becomes the worker's own again.
UPDATE {s}.litejobs_workers
SET name = :name, host = :host, boot_id = :boot_id, pid_ns = :pid_ns, pid = :pid,
    pid_start = :pid_start, queues = :queues, heartbeat_at = :now, beat_mono = :beat_mono,
    expires_at = :expires_at, stale_after = :stale_after, max_attempts = :max_attempts,
    delete_failed = :delete_failed
WHERE token = :token;

-- name: worker_delete
DELETE FROM {s}.litejobs_workers WHERE token = :token;

-- name: give_back_held
-- Everything a worker holds back to ready, unstarted: its claim failed, but may have committed.
UPDATE {s}.background_jobs
SET state = 'ready', attempts = CASE WHEN state = 'running' THEN attempts - 1 ELSE attempts END,
    lock_token = NULL, locked_by = NULL, locked_at = NULL, updated_at = :now
WHERE lock_token = :token AND state IN ('reserved', 'running');

-- name: give_back_cancelled
-- What a worker gives back that a person asked to cancel meanwhile ends cancelled.
UPDATE {s}.background_jobs
SET state = 'cancelled', run_at = NULL, lock_token = NULL, locked_by = NULL, locked_at = NULL,
    updated_at = :now, finished_at = :now
WHERE lock_token = :token AND state IN ('reserved', 'running') AND cancelled_at IS NOT NULL;

-- name: held_tokens
SELECT lock_token, min(locked_by) FROM {s}.background_jobs
WHERE state IN ('reserved', 'running') GROUP BY lock_token;


-- ========================================================================= inspection =======

-- name: job_get
SELECT id, state, queue, priority, attempts, max_attempts, handler, run_at, locked_at, locked_by,
       last_error, failed_at, created_at, updated_at, unique_key, lock_token, max_runtime, retry,
       cancelled_at, finished_at, keep_until, keep_result, result
FROM {s}.background_jobs WHERE id = :id;

-- name: counts
SELECT queue, CASE WHEN state = 'scheduled' AND run_at <= :now THEN 'ready' ELSE state END AS s,
       count(*)
FROM {s}.background_jobs GROUP BY queue, s;

-- name: oldest_ready
SELECT min(run_at) FROM {s}.background_jobs
WHERE state = 'ready' OR (state = 'scheduled' AND run_at <= :now);

-- name: has_ready_any
SELECT EXISTS(SELECT 1 FROM {s}.background_jobs WHERE state = 'ready')
    OR EXISTS(SELECT 1 FROM {s}.background_jobs WHERE state = 'scheduled' AND run_at <= :now);

-- name: has_ready_queue
SELECT EXISTS(SELECT 1 FROM {s}.background_jobs WHERE state = 'ready' AND queue = :queue)
    OR EXISTS(SELECT 1 FROM {s}.background_jobs
              WHERE state = 'scheduled' AND run_at <= :now AND queue = :queue);

-- name: next_run_any
SELECT min(run_at) FROM {s}.background_jobs WHERE state = 'scheduled';


-- ===================================================================== administration =======

-- name: retry_one
-- A failed, cancelled or kept job starts over with 0 attempts; a scheduled one keeps its attempts.
UPDATE {s}.background_jobs
SET state = 'ready', failed_at = NULL, cancelled_at = NULL, run_at = :now, suspect = false,
    attempts = CASE WHEN state = 'scheduled' THEN attempts ELSE 0 END, updated_at = :now,
    finished_at = NULL, keep_until = NULL, result = NULL
WHERE id = :id;

-- name: delete_job
DELETE FROM {s}.background_jobs WHERE id = :id;


-- ====================================================================== job control =========

-- name: cancel_now
-- A job that has not started is cancelled at once (a reserved one's start is then fenced off).
UPDATE {s}.background_jobs
SET state = 'cancelled', cancelled_at = :now, run_at = NULL, lock_token = NULL, locked_by = NULL,
    locked_at = NULL, suspect = false, updated_at = :now, finished_at = :now
WHERE id = :id AND state IN ('scheduled', 'ready', 'reserved');

-- name: cancel_request
-- A running job: its worker stops it (the keeper thread watches for this).
UPDATE {s}.background_jobs SET cancelled_at = coalesce(cancelled_at, :now), updated_at = :now
WHERE id = :id AND state = 'running';

-- name: cancel_requested
SELECT EXISTS(SELECT 1 FROM {s}.background_jobs
              WHERE id = :id AND lock_token = :token AND state = 'running'
                AND cancelled_at IS NOT NULL);

-- name: queue_controls
SELECT queue, paused_at, held_limit FROM {s}.litejobs_queues ORDER BY queue;

-- name: queue_resume
UPDATE {s}.litejobs_queues SET paused_at = NULL, updated_at = :now
WHERE queue = :queue AND paused_at IS NOT NULL;

-- name: queue_limit
INSERT INTO {s}.litejobs_queues (queue, held_limit, updated_at) VALUES (:queue, :limit, :now)
ON CONFLICT (queue) DO UPDATE
SET held_limit = excluded.held_limit, updated_at = excluded.updated_at;

-- name: queue_forget
-- A queue neither paused nor limited has no row (claims then take the plain path).
DELETE FROM {s}.litejobs_queues
WHERE queue = :queue AND paused_at IS NULL AND held_limit IS NULL;


-- ============================================================================ history =======

-- name: has_expired
-- A read first: a worker's pass takes the write lock only when something is due.
SELECT EXISTS(SELECT 1 FROM {s}.background_jobs WHERE keep_until <= :now);


-- ========================================================================= statistics =======

-- name: stats_since
SELECT minute, queue, series, bucket, sum(n), sum(seconds) FROM {s}.litejobs_stats
WHERE minute >= :since GROUP BY minute, queue, series, bucket ORDER BY minute;

-- name: stats_totals
SELECT queue, series, bucket, sum(n), sum(seconds) FROM {s}.litejobs_stats
GROUP BY queue, series, bucket;

-- name: stats_oldest
SELECT min(minute) FROM {s}.litejobs_stats WHERE minute > :epoch;

-- name: stats_fold
INSERT INTO {s}.litejobs_stats (minute, queue, series, bucket, shard, n, seconds)
SELECT :epoch, queue, series, bucket, 0, sum(n), sum(seconds) FROM {s}.litejobs_stats
WHERE minute > :epoch AND minute < :before GROUP BY queue, series, bucket
ON CONFLICT (minute, queue, series, bucket, shard)
DO UPDATE SET n = {s}.litejobs_stats.n + excluded.n,
              seconds = {s}.litejobs_stats.seconds + excluded.seconds;

-- name: stats_drop
DELETE FROM {s}.litejobs_stats WHERE minute > :epoch AND minute < :before;
