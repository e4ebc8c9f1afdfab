//! Keeping a claim alive while its work runs: a task that renews it every third of its length
//! (sync leases, job locks) until dropped, or until a renewal finds the claim gone.

use std::future::Future;

use crate::EngineError;

/// A running renewal; dropping it stops it.
#[derive(Debug)]
pub(crate) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    /// Calls `renew` every third of `length` (at least once a second), first after that long.
    /// `Ok(false)` (the claim is no longer ours) ends it; an error is logged and tried again.
    pub(crate) fn spawn<F, Fut>(length: chrono::Duration, what: &'static str, mut renew: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<bool, EngineError>> + Send,
    {
        let every = (length / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(10))
            .max(std::time::Duration::from_secs(1));
        Self(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                match renew().await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) => tracing::warn!(%error, "renewing a {what}"),
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}
