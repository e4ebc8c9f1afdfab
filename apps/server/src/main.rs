//! Runs the platform's server: reads settings from the environment, generates development keys
//! when production ones are absent, opens (and, for the embedded SQLite default, migrates) the
//! database, starts the worker and scheduler, and serves until Ctrl-C or SIGTERM.

use std::path::Path;

use anyhow::Context as _;
use server::{DEV_KEYS_DIR, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    server::init_tracing(settings.log_format);
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
        println!("\nDevelopment mode. GraphiQL: {}", demo.graphiql_url);
        println!(
            "Demo token (24 h), send as `Authorization: Bearer <token>`:\n{}\n",
            demo.token
        );
    }
    let background = server::spawn_background(&state)?;
    let app = server::router(state);
    let listener = tokio::net::TcpListener::bind(settings.bind_addr)
        .await
        .with_context(|| format!("binding {}", settings.bind_addr))?;
    let local_addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(addr = %local_addr, public_base_url = %settings.public_base_url, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    background.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
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
