//! Our job queue, `job_queue`: syncs, health checks, refreshes, webhook processing and cleanup,
//! claimed through the database (`FOR UPDATE SKIP LOCKED` on PostgreSQL) so each job runs once
//! however many server replicas there are. `job_key` makes enqueueing idempotent: the same cron tick
//! from several replicas, or the same webhook delivery twice, yields one row.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "CREATE TABLE IF NOT EXISTS job_queue (
            id {uuid} PRIMARY KEY {uuid_default},
            queue VARCHAR(100) NOT NULL DEFAULT 'default',
            kind VARCHAR(100) NOT NULL,
            payload {json} NOT NULL DEFAULT '{}',
            job_key TEXT,
            status VARCHAR(20) NOT NULL DEFAULT 'queued'
                CONSTRAINT chk_job_queue_status
                CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            priority INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0 CONSTRAINT chk_job_queue_attempts CHECK (attempts >= 0),
            max_attempts INTEGER NOT NULL DEFAULT 5 CONSTRAINT chk_job_queue_max_attempts CHECK (max_attempts >= 1),
            run_at {tstz} NOT NULL DEFAULT {now},
            locked_by TEXT,
            locked_until {tstz},
            last_error TEXT,
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now},
            finished_at {tstz},
            CONSTRAINT uq_job_queue_job_key UNIQUE (job_key)
        )",
    ),
    // What a worker's claim reads: due jobs of a queue, highest priority first.
    Both(
        "CREATE INDEX IF NOT EXISTS idx_job_queue_ready ON job_queue (queue, priority DESC, run_at)
            WHERE status = 'queued'",
    ),
    // Finds running jobs whose lock expired (a crashed worker).
    Both(
        "CREATE INDEX IF NOT EXISTS idx_job_queue_running ON job_queue (locked_until) WHERE status = 'running'",
    ),
    Postgres("ALTER TABLE job_queue ENABLE ROW LEVEL SECURITY"),
    Postgres("DROP TRIGGER IF EXISTS set_job_queue_updated_at ON job_queue"),
    Postgres(
        "CREATE TRIGGER set_job_queue_updated_at BEFORE UPDATE ON job_queue
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
];

const DOWN: &[Stmt] = &[Both("DROP TABLE IF EXISTS job_queue")];
