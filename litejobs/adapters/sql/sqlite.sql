-- Every statement litejobs runs on SQLite, by name.
--
-- The Python side (litejobs/adapters/sql/__init__.py) loads this file once and runs statements
-- by name with named parameters (:name). Times are fixed-width ISO 8601 UTC text
-- ('2030-01-01T00:00:00.000000Z'): they sort correctly and a person can read the file. Job states
-- and their transitions are documented in litejobs/adapters/base.py and docs/glossary.md. The
-- statements that read the same on both databases are in common.sql; every one here has a twin
-- of the same name in postgres.sql.
--
-- Read-then-write transactions run in BEGIN IMMEDIATE (see sqlite.py): a deferred one cannot
-- wait for the write lock and fails with SQLITE_BUSY however long the busy timeout is.


-- ============================================================================ schema ==========

-- name: migration_1
-- Jobs and workers. An explicit `state` keeps not-yet-due jobs out of the claim indexes:
-- otherwise a claim ordered by priority steps over every future job that sorts ahead.
CREATE TABLE IF NOT EXISTS background_jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER,
    handler      TEXT    NOT NULL,
    queue        TEXT    NOT NULL DEFAULT 'default',
    priority     INTEGER NOT NULL DEFAULT 50,
    run_at       TEXT,
    locked_at    TEXT,
    locked_by    TEXT,
    last_error   TEXT,
    failed_at    TEXT,
    unique_key   TEXT,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS background_jobs_ready_by_queue
    ON background_jobs (queue, priority, run_at, id) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS background_jobs_ready
    ON background_jobs (priority, run_at, id) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS background_jobs_scheduled
    ON background_jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS background_jobs_running
    ON background_jobs (locked_by) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS background_jobs_queue_state
    ON background_jobs (queue, state);
CREATE UNIQUE INDEX IF NOT EXISTS background_jobs_unique_active
    ON background_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'ready', 'running');
CREATE TABLE IF NOT EXISTS litejobs_workers (
    name         TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);

-- name: migration_2
-- Recurring ticks; the primary key is what makes a tick fire once across all workers.
CREATE TABLE IF NOT EXISTS litejobs_recurring_ticks (
    name         TEXT NOT NULL,
    tick_at      TEXT NOT NULL,
    job_id       INTEGER,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (name, tick_at)
) WITHOUT ROWID;

-- name: migration_3
-- Worker identity: a lock names a worker's token (one per worker per process), not its name;
-- each worker row carries its identity (machine boot, PID namespace, pid and its start time)
-- and its own deadline and settings. Reserved jobs (claimed, not started, no attempt counted).
-- Locks taken by an older litejobs get a token no worker holds: rescued after the orphan grace.
ALTER TABLE background_jobs ADD COLUMN lock_token TEXT;
ALTER TABLE background_jobs ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;
UPDATE background_jobs SET lock_token = 'legacy:' || coalesce(locked_by, '')
    WHERE state = 'running';
DROP INDEX IF EXISTS background_jobs_running;
CREATE INDEX background_jobs_held
    ON background_jobs (lock_token) WHERE state IN ('reserved', 'running');
DROP INDEX IF EXISTS background_jobs_unique_active;
CREATE UNIQUE INDEX background_jobs_unique_active
    ON background_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'ready', 'reserved', 'running');
DROP TABLE IF EXISTS litejobs_workers;
CREATE TABLE litejobs_workers (
    token         TEXT PRIMARY KEY,
    name          TEXT    NOT NULL,
    host          TEXT    NOT NULL,
    boot_id       TEXT    NOT NULL,
    pid_ns        TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    pid_start     INTEGER,
    queues        TEXT    NOT NULL,
    started_at    TEXT    NOT NULL,
    heartbeat_at  TEXT    NOT NULL,
    beat_mono     REAL    NOT NULL,
    expires_at    TEXT    NOT NULL,
    stale_after   REAL    NOT NULL,
    max_attempts  INTEGER NOT NULL,
    delete_failed INTEGER NOT NULL
);
CREATE INDEX litejobs_workers_name ON litejobs_workers (name);

-- name: migration_4
-- Job control. A job's own hard timeout (s) and retry policy (JSON data); `cancelled_at`: when a
-- person cancelled it (state 'cancelled'), or asked to cancel it while it runs (state 'running'
-- until its worker stops it). Queues that are paused or limited (at most `held_limit` of their
-- jobs reserved or running at once, across every worker and host): a row only while either is
-- set, so a claim with no row to read takes the plain path. Unique keys held for a period after
-- enqueue (`unique_for`): the latest job enqueued with the key, until `expires_at`.
ALTER TABLE background_jobs ADD COLUMN max_runtime REAL;
ALTER TABLE background_jobs ADD COLUMN retry TEXT;
ALTER TABLE background_jobs ADD COLUMN cancelled_at TEXT;
CREATE TABLE litejobs_queues (
    queue        TEXT PRIMARY KEY,
    paused_at    TEXT,
    held_limit   INTEGER,
    updated_at   TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE litejobs_unique_keys (
    unique_key   TEXT PRIMARY KEY,
    job_id       INTEGER NOT NULL,
    enqueued_at  TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX litejobs_unique_keys_expiry ON litejobs_unique_keys (expires_at);
-- name: migration_5
-- Job history: when a job finished, until when it is kept
-- (NULL: until a person prunes it), whether it asked to keep its result, and the result. Only
-- finished jobs with an expiry enter the expiry index, so enqueue and claim pay nothing for it.
-- Outcome statistics: per minute, queue and series (an outcome kind, or 'wait'), a histogram
-- bucket of run (or wait) times, with the count and the sum of the seconds in it; `shard`
-- spreads concurrent writers over rows (always 0 on SQLite: one writer at a time).
ALTER TABLE background_jobs ADD COLUMN finished_at TEXT;
ALTER TABLE background_jobs ADD COLUMN keep_until TEXT;
ALTER TABLE background_jobs ADD COLUMN keep_result INTEGER NOT NULL DEFAULT 0;
ALTER TABLE background_jobs ADD COLUMN result TEXT;
UPDATE background_jobs SET finished_at = coalesce(failed_at, updated_at)
    WHERE state IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX background_jobs_expiry
    ON background_jobs (keep_until) WHERE keep_until IS NOT NULL;
CREATE TABLE litejobs_stats (
    minute  TEXT    NOT NULL,
    queue   TEXT    NOT NULL,
    series  TEXT    NOT NULL,
    bucket  INTEGER NOT NULL,
    shard   INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    seconds REAL    NOT NULL,
    PRIMARY KEY (minute, queue, series, bucket, shard)
) WITHOUT ROWID;


-- ========================================================================= enqueueing ========

-- name: insert_job
INSERT INTO background_jobs (state, handler, queue, priority, run_at, max_attempts, unique_key,
                             max_runtime, retry, keep_result, created_at, updated_at)
VALUES (:state, :handler, :queue, :priority, :run_at, :max_attempts, :unique_key,
        :max_runtime, :retry, :keep_result, :now, :now);

-- name: insert_run
-- One run of a batch (jobs differing only in their arguments): json_each splits the run's
-- arguments (one JSON array, element i is job i's) and SQLite builds each handler as
-- head || element || tail. `value` is the element's own text (Python's encoding is already
-- minified), so the handler is byte for byte what one-by-one enqueueing stores. Rows come out
-- of the scan in array order.
INSERT INTO background_jobs (state, handler, queue, priority, run_at, max_attempts, unique_key,
                             max_runtime, retry, keep_result, created_at, updated_at)
SELECT :state, :head || value || :tail, :queue, :priority, :run_at, :max_attempts, NULL,
       :max_runtime, :retry, :keep_result, :now, :now
FROM json_each(:items);

-- =========================================================================== claiming =======

-- name: promote_due
UPDATE background_jobs SET state = 'ready' WHERE state = 'scheduled' AND run_at <= :now;

-- name: claim_candidates_any
SELECT priority, run_at, id FROM background_jobs WHERE state = 'ready'
ORDER BY priority, run_at, id LIMIT :limit;

-- name: claim_candidates_queue
-- One index seek per queue (the caller merges): an IN list over queues would read every ready
-- job of those queues and sort them.
SELECT priority, run_at, id FROM background_jobs WHERE state = 'ready' AND queue = :queue
ORDER BY priority, run_at, id LIMIT :limit;

-- name: claim_take
-- The first job of a claim starts (its attempt counted); the rest are reserved.
UPDATE background_jobs
SET state = CASE WHEN id = :first THEN 'running' ELSE 'reserved' END,
    attempts = attempts + (id = :first),
    suspect = CASE WHEN id = :first THEN 0 ELSE suspect END,
    lock_token = :token, locked_by = :name, locked_at = :now, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id, handler, queue, priority, attempts, max_attempts, run_at, suspect, state,
          max_runtime, retry, keep_result;


-- name: claim_take_one
-- A claim of one job (an idle worker woken for it): the same change, found by its id alone
-- (the list form builds a temporary index for its IN, a tenth of a millisecond).
UPDATE background_jobs
SET state = 'running', attempts = attempts + 1, suspect = 0,
    lock_token = :token, locked_by = :name, locked_at = :now, updated_at = :now
WHERE id = :first
RETURNING id, handler, queue, priority, attempts, max_attempts, run_at, suspect, state,
          max_runtime, retry, keep_result;


-- name: held_in_queue
-- How many of a limited queue's jobs are held (reserved or running) now.
SELECT count(*) FROM background_jobs WHERE queue = :queue AND state IN ('reserved', 'running');

-- ========================================================================== recording =======
-- Every outcome is fenced by its claim: the row must still be held by this token, since this
-- claim (locked_at), at this attempt. A worker presumed dead cannot overwrite a rescued job.

-- name: settle_cancels
-- After outcomes that let a job run again (errored, released, snoozed): a job a person asked to
-- cancel meanwhile never runs again.
UPDATE background_jobs
SET state = 'cancelled', run_at = NULL, updated_at = :now, finished_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND cancelled_at IS NOT NULL
  AND state IN ('scheduled', 'ready');

-- ============================================================================ rescue ========
-- The jobs of a worker that is gone (or stopping): reserved ones go back uncounted; started
-- ones are released with their attempt counted, or failed if it was their last (deleted if its
-- group deletes failed jobs). All are marked suspect: any of them may have killed the worker,
-- so each is charged before it starts again, even inside a batch (a crash loop runs out).

-- name: rescue_cancelled
-- A gone worker's running job that a person asked to cancel ends cancelled, not ready again.
UPDATE background_jobs
SET state = 'cancelled', run_at = NULL,
    last_error = :reason || ': worker ' || coalesce(locked_by, '?') || ' stopped during attempt '
                 || attempts || ' (cancelled)',
    lock_token = NULL, locked_by = NULL, locked_at = NULL, updated_at = :now, finished_at = :now
WHERE lock_token = :token AND state = 'running' AND cancelled_at IS NOT NULL
RETURNING id;

-- name: rescue_reserved
UPDATE background_jobs
SET state = 'ready', lock_token = NULL, locked_by = NULL, locked_at = NULL, suspect = 1,
    updated_at = :now
WHERE lock_token = :token AND state = 'reserved'
RETURNING id;

-- name: rescue_delete_spent
DELETE FROM background_jobs
WHERE lock_token = :token AND state = 'running' AND attempts >= coalesce(max_attempts, :max_attempts)
RETURNING id, queue;

-- name: rescue_running
UPDATE background_jobs
SET state = CASE WHEN attempts >= coalesce(max_attempts, :max_attempts) THEN 'failed'
                 ELSE 'ready' END,
    failed_at = CASE WHEN attempts >= coalesce(max_attempts, :max_attempts) THEN :now END,
    finished_at = CASE WHEN attempts >= coalesce(max_attempts, :max_attempts) THEN :now END,
    run_at = CASE WHEN attempts >= coalesce(max_attempts, :max_attempts) THEN NULL
                  ELSE :now END,
    last_error = :reason || ': worker ' || coalesce(locked_by, '?') || ' stopped during attempt '
                 || attempts,
    lock_token = NULL, locked_by = NULL, locked_at = NULL, suspect = 1,
    updated_at = :now
WHERE lock_token = :token AND state = 'running'
RETURNING id, state, queue;


-- ========================================================================= inspection =======

-- name: jobs_list
-- Filters are optional (NULL: any). `states` is a JSON array of states as people see them: a
-- scheduled job whose time has come is ready.
SELECT id, state, queue, priority, attempts, max_attempts, handler, run_at, locked_at, locked_by,
       last_error, failed_at, created_at, updated_at, unique_key, lock_token, max_runtime, retry,
       cancelled_at, finished_at, keep_until, keep_result, result
FROM background_jobs
WHERE (:queue IS NULL OR queue = :queue)
  AND (:name IS NULL OR json_extract(handler, '$.name') = :name)
  AND (:states IS NULL
       OR CASE WHEN state = 'scheduled' AND run_at <= :now THEN 'ready' ELSE state END
          IN (SELECT value FROM json_each(:states)))
ORDER BY id LIMIT coalesce(:limit, -1);

-- name: jobs_list_newest
SELECT id, state, queue, priority, attempts, max_attempts, handler, run_at, locked_at, locked_by,
       last_error, failed_at, created_at, updated_at, unique_key, lock_token, max_runtime, retry,
       cancelled_at, finished_at, keep_until, keep_result, result
FROM background_jobs
WHERE (:queue IS NULL OR queue = :queue)
  AND (:name IS NULL OR json_extract(handler, '$.name') = :name)
  AND (:states IS NULL
       OR CASE WHEN state = 'scheduled' AND run_at <= :now THEN 'ready' ELSE state END
          IN (SELECT value FROM json_each(:states)))
ORDER BY id DESC LIMIT coalesce(:limit, -1);

-- name: jobs_count
SELECT count(*) FROM background_jobs
WHERE (:queue IS NULL OR queue = :queue)
  AND (:name IS NULL OR json_extract(handler, '$.name') = :name)
  AND (:states IS NULL
       OR CASE WHEN state = 'scheduled' AND run_at <= :now THEN 'ready' ELSE state END
          IN (SELECT value FROM json_each(:states)));

-- name: next_run_queues
SELECT min(run_at) FROM background_jobs
WHERE state = 'scheduled' AND queue IN (SELECT value FROM json_each(:queues));


-- ===================================================================== administration =======

-- name: retry_read
SELECT state, run_at, unique_key FROM background_jobs WHERE id = :id;

-- name: retry_failed_candidates
SELECT id, unique_key FROM background_jobs
WHERE state = 'failed' AND (:queue IS NULL OR queue = :queue) ORDER BY id;

-- name: retry_failed_some
UPDATE background_jobs
SET state = 'ready', failed_at = NULL, run_at = :now, attempts = 0, suspect = 0, updated_at = :now,
    finished_at = NULL, keep_until = NULL, result = NULL
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: clear
DELETE FROM background_jobs
WHERE (:queue IS NULL OR queue = :queue) AND (NOT :failed_only OR state = 'failed');


-- ====================================================================== job control =========

-- name: job_state
-- A job's state as people see it (a scheduled job whose time has come is ready).
SELECT CASE WHEN state = 'scheduled' AND run_at <= :now THEN 'ready' ELSE state END
FROM background_jobs WHERE id = :id;

-- name: queue_control
SELECT paused_at, held_limit FROM litejobs_queues WHERE queue = :queue;

-- name: queue_pause
INSERT INTO litejobs_queues (queue, paused_at, updated_at) VALUES (:queue, :now, :now)
ON CONFLICT (queue) DO UPDATE
SET paused_at = coalesce(litejobs_queues.paused_at, excluded.paused_at),
    updated_at = excluded.updated_at;

-- ============================================================================ history =======
-- Finished jobs are pruned a small batch per transaction, so the write lock is never held long
-- (measured: docs/performance.md). `finished_at IS NOT NULL` is what makes a row finished;
-- nothing here touches a job that is still to run.

-- name: prune_expired
-- Kept jobs whose time is up (keep_until: the worker set it from the retention rules).
DELETE FROM background_jobs
WHERE id IN (SELECT id FROM background_jobs
             WHERE keep_until <= :now AND finished_at IS NOT NULL
             ORDER BY keep_until LIMIT :limit);

-- name: prune_candidates
-- What `litejobs prune --older-than` deletes, read outside the write lock (a scan); the deletes
-- below re-check every condition, so a job retried meanwhile stays.
SELECT id FROM background_jobs
WHERE finished_at < :before
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
ORDER BY id;

-- name: prune_ids
DELETE FROM background_jobs
WHERE id IN (SELECT value FROM json_each(:ids))
  AND finished_at < :before
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)));

-- name: last_job_id
-- The highest id ever issued (AUTOINCREMENT ids are never reused): an id at or below it that
-- has no row was a job that is gone, not a typo.
SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'background_jobs'), 0);


-- ========================================================================= statistics =======
-- Outcome statistics (litejobs/metrics.py): one row per minute, queue, series and histogram
-- bucket. `rows` is a JSON array of [queue, series, bucket, n, seconds], sorted, so concurrent
-- writers take the rows in one order. The row of minute :epoch holds the totals of pruned
-- minutes: counters never go back.

-- name: stats_add
INSERT INTO litejobs_stats (minute, queue, series, bucket, shard, n, seconds)
SELECT :minute, value ->> 0, value ->> 1, value ->> 2, :shard, value ->> 3, value ->> 4
FROM json_each(:rows) WHERE true
ON CONFLICT (minute, queue, series, bucket, shard)
DO UPDATE SET n = n + excluded.n, seconds = seconds + excluded.seconds;
