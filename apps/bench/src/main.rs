//! The Rust workloads of `just bench` (bench/run.sh), each printing one JSON line on stdout and
//! exiting non-zero, naming what went wrong, when a count is not exact or a request failed:
//!
//! - `ingest`: a Stripe mock on loopback serves N customers in pages of 100 (Stripe's documented
//!   list envelope, then an empty `/v1/events` pass); the real [`SyncEngine`] reads them through the
//!   real adapter into PostgreSQL. The same rows (entities, values, provenance) are then written by
//!   a raw `COPY … FROM STDIN` into empty copies of the tables: the baseline.
//! - `tenants`: K small and B big Stripe tenants, every sync due at once, through the real queue
//!   and W workers (`just bench-scale`); when each group was done.
//! - `webhooks`: N signed Stripe Connect deliveries (10% of them repeats of another) POSTed at a
//!   running server by C concurrent clients; every answer must be 200 and `webhook_events` must hold
//!   exactly the distinct ones.

mod ingest;
mod tenants;
mod webhooks;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "The Rust workloads of `just bench`")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sync N Stripe customers from a loopback mock through the engine, then COPY the same rows.
    Ingest(ingest::Args),
    /// Burst signed Stripe deliveries at a running server and check the stored count.
    Webhooks(webhooks::Args),
    /// Sync many small and a few big tenants at once through the queue and its workers.
    Tenants(tenants::Args),
}

/// The server's allocator (mimalloc), so the engine runs here as it does in the server's workers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // As the server does (apps/server/src/main.rs): no transparent huge pages under mimalloc.
    #[cfg(target_os = "linux")]
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("bench-harness: cannot turn transparent huge pages off: {error}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let line = runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => ingest::run(args).await,
            Command::Webhooks(args) => webhooks::run(args).await,
            Command::Tenants(args) => tenants::run(args).await,
        }
    })?;
    println!("{line}");
    Ok(())
}

/// The `q`-quantile (0..=1) of sorted `values` by the nearest-rank method.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest value with at least q of the values at or below it.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Rounds to `digits` decimals for the report.
fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
