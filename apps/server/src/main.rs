//! Runs the platform's server: reads settings from the environment, generates development keys
//! when production ones are absent, opens (and, for the embedded SQLite default, migrates) the
//! database, starts the worker and scheduler, and serves until Ctrl-C or SIGTERM. A setting that
//! cannot be used stops it with one line naming the variable.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use server::{DEV_KEYS_DIR, LogFormat, Settings};

/// The integration platform's server: the GraphQL API, OAuth callbacks, webhooks, metrics and the
/// background workers.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Configured by environment variables (DATABASE_URL, BIND_ADDR, AUTH_JWT_SECRET, \
AUTH_JWKS_URL, TOKEN_ENCRYPTION_KEYS, CORS_ALLOWED_ORIGINS, APP_ENV, …): see the README's \
Configuration table. Without DATABASE_URL it runs on the embedded SQLite default under data/."
)]
struct Cli {}

/// mimalloc's thread caches instead of glibc's malloc, which took about a third of the server's
/// CPU on the entities page (bench/NOTES.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("server: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            // Before logging is set up (its format is a setting): one plain line.
            eprintln!("server: {error}");
            return ExitCode::FAILURE;
        }
    };
    server::init_tracing(settings.log_format);
    // mimalloc returns and re-faults its arenas' pages; with transparent huge pages on (`madvise`),
    // each such fault zeroed 2 MB (bench/NOTES.md). Without them the process runs as before, only
    // slower, so a refusal is a warning.
    #[cfg(target_os = "linux")]
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(%error, "cannot turn transparent huge pages off for the process");
    }
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, in the log's format: the outermost context names the variable or step.
            let message = error
                .chain()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            tracing::error!(error = %message, "the server stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    // Before anything runs: a SIGTERM during start-up is a shutdown too.
    let shutdown = shutdown_signal();
    let settings = settings.with_dev_keys(Path::new(DEV_KEYS_DIR))?;
    if settings.is_sqlite() {
        tracing::warn!(
            url = %settings.database_url,
            "DATABASE_URL is unset or SQLite: running on the embedded database (development only)"
        );
    }
    let state = server::connect(&settings).await?;
    if settings.is_sqlite() && settings.app_env != server::AppEnv::Production {
        let demo = server::seed_demo(&state).await?;
        match settings.log_format {
            LogFormat::Json => tracing::info!(
                graphiql_url = %demo.graphiql_url,
                demo_token = %demo.token,
                "development mode: send the demo token (24 h) as `Authorization: Bearer <token>`"
            ),
            LogFormat::Text => {
                println!("\nDevelopment mode. GraphiQL: {}", demo.graphiql_url);
                println!(
                    "Demo token (24 h), send as `Authorization: Bearer <token>`:\n{}\n",
                    demo.token
                );
            }
        }
    }
    let background = server::spawn_background(&state)?;
    if let Some(metrics_addr) = settings.metrics_bind_addr {
        let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("METRICS_BIND_ADDR {metrics_addr} cannot be bound"))?;
        let metrics = server::metrics_router(state.clone());
        tracing::info!(addr = %metrics_addr, "serving /metrics on its own address");
        tokio::spawn(async move {
            if let Err(error) = axum::serve(metrics_listener, metrics).await {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    let app = server::router(state);
    let listener = tokio::net::TcpListener::bind(settings.bind_addr)
        .await
        .with_context(|| format!("BIND_ADDR {} cannot be bound", settings.bind_addr))?;
    let local_addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(addr = %local_addr, public_base_url = %settings.public_base_url, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving")?;
    // Workers stop at their next stopping point (a sync at its next page boundary, its lease
    // released); past the grace period the process exits anyway and leases lapse within 30 s.
    if tokio::time::timeout(settings.shutdown_grace, background.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?settings.shutdown_grace, "SHUTDOWN_GRACE passed with jobs still running; exiting");
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The SIGTERM handler is installed when this is called (not
/// when first awaited), so a signal that arrives while the server is still starting is not lost.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async {
            match terminate.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = terminate => {},
        }
        tracing::info!("shutting down");
    }
}
