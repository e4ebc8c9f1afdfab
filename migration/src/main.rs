//! `just migrate`: applies, rolls back and reports the platform's migrations on `DATABASE_URL` (or the
//! embedded SQLite default), like the sea-orm CLI, and stops with a one-line error on bad input.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migration::{DEFAULT_DATABASE_URL, Migrator, MigratorTrait, connect, schema_status};

/// Applies, rolls back and reports the platform's database migrations.
#[derive(Debug, Parser)]
#[command(name = "migrate", version)]
struct Cli {
    /// Database to migrate (postgres://… or sqlite:…).
    #[arg(short = 'u', long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    database_url: String,
    /// What to do; `up` when omitted.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations: all of them, or the next N.
    Up {
        /// How many pending migrations to apply.
        #[arg(short = 'n', long = "num")]
        steps: Option<u32>,
    },
    /// Roll back the last N applied migrations (default 1).
    Down {
        /// How many applied migrations to roll back.
        #[arg(default_value_t = 1)]
        steps: u32,
    },
    /// List every migration as applied or pending.
    Status,
    /// Drop every table of the schema, then apply all migrations.
    Fresh,
    /// Roll back every applied migration.
    Reset,
    /// Roll back every applied migration, then apply them all again.
    Refresh,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {}", message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    // One connection: SQLite's `fresh` switches foreign keys off on the connection that drops.
    let db = connect(&cli.database_url, 1)
        .await
        .map_err(|error| error.to_string())?;
    let before = schema_status(&db)
        .await
        .map_err(|error| format!("cannot read the migration table: {error}"))?;
    if let Some(newest) = before.unknown.last() {
        return Err(format!(
            "the database is at a newer schema version than this build: it has applied `{newest}` \
             ({} migration(s) unknown here); use the migrator of that newer version",
            before.unknown.len()
        ));
    }

    let command = cli.command.unwrap_or(Command::Up { steps: None });
    let outcome = match &command {
        Command::Up { steps } => Migrator::up(&db, *steps).await,
        Command::Down { steps } => Migrator::down(&db, Some(*steps)).await,
        Command::Status => Ok(()),
        Command::Fresh => Migrator::fresh(&db).await,
        Command::Reset => Migrator::reset(&db).await,
        Command::Refresh => Migrator::refresh(&db).await,
    };
    outcome.map_err(|error| format!("migration failed and was rolled back: {error}"))?;

    if matches!(command, Command::Reset) {
        println!("every migration rolled back; the migration table was removed");
        return Ok(());
    }
    let after = schema_status(&db)
        .await
        .map_err(|error| format!("cannot read the migration table: {error}"))?;
    if matches!(command, Command::Status) {
        for name in &after.applied {
            println!("applied  {name}");
        }
        for name in &after.pending {
            println!("pending  {name}");
        }
    }
    println!(
        "{} applied, {} pending; schema version {}",
        after.applied.len(),
        after.pending.len(),
        after.version().unwrap_or("none")
    );
    Ok(())
}
