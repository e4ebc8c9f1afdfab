//! Opening the database named by a URL, with the right options for each back end, and reading where
//! its schema stands relative to this build's migrations.

use std::time::Duration;

use sea_orm_migration::MigratorTrait;
use sea_orm_migration::sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    Statement,
};

use crate::Migrator;

/// The embedded default when `DATABASE_URL` is unset: a SQLite file under `data/`, created on demand.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/platform.db?mode=rwc";

/// Why a database could not be opened. Messages never contain the URL's password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names a back end this platform does not run on.
    #[error("unsupported database URL scheme `{0}`: use postgres://… or sqlite:…")]
    UnsupportedScheme(String),
    /// The SQLite file's folder could not be created.
    #[error("cannot create the folder for SQLite database {path}: {source}")]
    SqliteFolder {
        /// The folder that could not be created.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server did not answer or refused the connection.
    #[error("cannot connect to the database at {target}: {source}")]
    Unreachable {
        /// Host, port and database, without credentials.
        target: String,
        /// The driver's error.
        source: DbErr,
    },
}

/// How long a pooled connection may sit idle before it is pinged at checkout.
pub const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// Opens a pool on `url` (`postgres://…`, `postgresql://…` or `sqlite:…`). SQLite in memory gets one
/// connection (each connection would otherwise see its own empty database); a SQLite file gets its
/// folder created.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, ConnectError> {
    let scheme = url.split(':').next().unwrap_or_default();
    let max_connections = match scheme {
        "postgres" | "postgresql" => max_connections,
        "sqlite" if url.contains(":memory:") || url.contains("mode=memory") => 1,
        "sqlite" => {
            create_sqlite_folder(url)?;
            max_connections
        }
        _ => return Err(ConnectError::UnsupportedScheme(scheme.to_owned())),
    };
    if matches!(scheme, "postgres" | "postgresql") {
        probe_server(url).await?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections.max(1))
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        // A connection is pinged before use only after a second idle, not at every checkout (a
        // round trip per statement): SQLx already pings it when it returns to the pool, so a
        // hot connection was seen alive under a second ago. One the server closed within that
        // second fails its statement as a statement in flight would (the caller's retry path)
        // and is discarded. Webhook intake gained ~14% (bench/NOTES.md).
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        .sqlx_logging(false);
    if scheme == "sqlite" && max_connections > 1 {
        // Write-ahead logging lets the server's readers run while a worker writes.
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
        });
    }
    let connection =
        Database::connect(options)
            .await
            .map_err(|source| ConnectError::Unreachable {
                target: redacted_target(url),
                source,
            })?;
    // A lazy pool may not have dialed yet: make "unreachable" fail here, not at the first query.
    connection
        .execute_unprepared("SELECT 1")
        .await
        .map_err(|source| ConnectError::Unreachable {
            target: redacted_target(url),
            source,
        })?;
    Ok(connection)
}

/// Dials the PostgreSQL server once, so a refused or unanswered connection is reported at once and
/// by its cause, rather than as a pool timeout after retries.
async fn probe_server(url: &str) -> Result<(), ConnectError> {
    let target = redacted_target(url);
    let host_port = target.split('/').next().unwrap_or_default();
    // Unix sockets and multi-host URLs are left to the driver.
    if host_port.is_empty() || host_port.contains(',') || host_port.contains('%') {
        return Ok(());
    }
    let address = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let unreachable = |reason: String| ConnectError::Unreachable {
        target: target.clone(),
        source: DbErr::Conn(RuntimeErr::Internal(reason)),
    };
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&address),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(unreachable(error.to_string())),
        Err(_) => Err(unreachable("no answer within 5 s".to_owned())),
    }
}

fn create_sqlite_folder(url: &str) -> Result<(), ConnectError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    let Some(folder) = std::path::Path::new(path).parent() else {
        return Ok(());
    };
    if folder.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(folder).map_err(|source| ConnectError::SqliteFolder {
        path: folder.display().to_string(),
        source,
    })
}

/// The part of a database URL that is safe to print: host, port and database, never user or password.
pub fn redacted_target(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('?').next().unwrap_or_default().to_owned()
}

/// Where a database's schema stands relative to this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Migrations of this build that the database has applied, oldest first.
    pub applied: Vec<String>,
    /// Migrations of this build not yet applied, oldest first.
    pub pending: Vec<String>,
    /// Migrations recorded in the database that this build does not know: the database was
    /// migrated by a newer version.
    pub unknown: Vec<String>,
}

impl SchemaStatus {
    /// True when every migration is applied and none is unknown.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }

    /// The newest migration this database has applied, if any.
    pub fn version(&self) -> Option<&str> {
        self.applied.last().map(String::as_str)
    }
}

/// Reads the migration table and compares it with this build's migrations. Runs no DDL (a table
/// that is absent means nothing is applied), so a role with only SELECT on `seaql_migrations`
/// can ask, and a probe logs nothing.
pub async fn schema_status(db: &DatabaseConnection) -> Result<SchemaStatus, DbErr> {
    let backend = db.get_database_backend();
    let exists = match backend {
        DbBackend::Postgres => {
            "SELECT (to_regclass('seaql_migrations') IS NOT NULL)::int AS present"
        }
        _ => {
            "SELECT count(*) AS present FROM sqlite_master \
             WHERE type = 'table' AND name = 'seaql_migrations'"
        }
    };
    let present = db
        .query_one_raw(Statement::from_string(backend, exists))
        .await?
        .map(|row| {
            row.try_get::<i64>("", "present")
                .or_else(|_| row.try_get::<i32>("", "present").map(i64::from))
        })
        .transpose()?
        .unwrap_or(0);
    let recorded: Vec<String> = if present == 0 {
        Vec::new()
    } else {
        db.query_all_raw(Statement::from_string(
            backend,
            "SELECT version FROM seaql_migrations",
        ))
        .await?
        .into_iter()
        .map(|row| row.try_get::<String>("", "version"))
        .collect::<Result<_, _>>()?
    };
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    let (applied, pending) = known
        .iter()
        .cloned()
        .partition(|name| recorded.contains(name));
    let unknown = recorded
        .into_iter()
        .filter(|name| !known.contains(name))
        .collect();
    Ok(SchemaStatus {
        applied,
        pending,
        unknown,
    })
}
