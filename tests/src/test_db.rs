//! Throwaway databases: each test gets its own PostgreSQL database (unique name) or SQLite file,
//! dropped or deleted when the handle goes out of scope.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait as _};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

/// The two back ends every schema test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Production: the local server named by `TEST_POSTGRES_URL`.
    Postgres,
    /// The embedded default: a SQLite file in the temporary folder.
    Sqlite,
}

/// The administrative PostgreSQL URL test databases are created from.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    /// A pool on the database.
    pub db: DatabaseConnection,
    /// Its URL.
    pub url: String,
    backend: Backend,
    name: String,
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "t_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn url_with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    if query.is_empty() {
        format!("{prefix}/{name}")
    } else {
        format!("{prefix}/{name}?{query}")
    }
}

impl TestDb {
    /// A new empty database.
    pub async fn empty(backend: Backend) -> anyhow::Result<Self> {
        let name = unique_name();
        let url = match backend {
            Backend::Postgres => {
                let admin = migration::connect(&postgres_admin_url(), 1)
                    .await
                    .context("connecting to TEST_POSTGRES_URL")?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await?;
                admin.close().await?;
                url_with_database(&postgres_admin_url(), &name)
            }
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                format!("sqlite://{}?mode=rwc", path.display())
            }
        };
        let db = migration::connect(&url, 4).await?;
        Ok(Self {
            db,
            url,
            backend,
            name,
        })
    }

    /// A new database with every migration applied.
    pub async fn migrated(backend: Backend) -> anyhow::Result<Self> {
        let test_db = Self::empty(backend).await?;
        Migrator::up(&test_db.db, None).await?;
        Ok(test_db)
    }

    /// Which back end this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The sea-orm back end.
    pub fn db_backend(&self) -> DbBackend {
        match self.backend {
            Backend::Postgres => DbBackend::Postgres,
            Backend::Sqlite => DbBackend::Sqlite,
        }
    }

    /// A statement in this back end's placeholder style: write `$1`, `$2`… and they become `?` on SQLite.
    pub fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        let sql = match self.backend {
            Backend::Postgres => sql.to_owned(),
            Backend::Sqlite => {
                let mut text = sql.to_owned();
                for index in (1..=values.len()).rev() {
                    text = text.replace(&format!("${index}"), "?");
                }
                text
            }
        };
        Statement::from_sql_and_values(self.db_backend(), sql, values)
    }

    /// Runs one statement with values and returns the rows it affected.
    pub async fn execute(&self, sql: &str, values: Vec<Value>) -> Result<u64, sea_orm::DbErr> {
        Ok(self
            .db
            .execute_raw(self.statement(sql, values))
            .await?
            .rows_affected())
    }

    /// Runs a query that returns one integer (a count).
    pub async fn count(&self, sql: &str, values: Vec<Value>) -> anyhow::Result<i64> {
        let row = self
            .db
            .query_one_raw(self.statement(sql, values))
            .await?
            .context("the count query returned no row")?;
        Ok(row.try_get_by_index::<i64>(0)?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self.backend {
            Backend::Sqlite => {
                let path = self
                    .url
                    .trim_start_matches("sqlite://")
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            Backend::Postgres => {
                let name = self.name.clone();
                // Drop runs inside the test's runtime, which must not block: use a runtime of its own.
                let _ = std::thread::spawn(move || -> anyhow::Result<()> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async move {
                        let admin = migration::connect(&postgres_admin_url(), 1).await?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await?;
                        anyhow::Ok(())
                    })
                })
                .join();
            }
        }
    }
}
