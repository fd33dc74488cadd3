//! Graceful shutdown: stop accepting, let live sessions run up to the grace timeout, then
//! tell them to stop, and return by the force timeout whatever is left.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by every listener and session of the process.
#[derive(Clone, Default)]
pub struct Lifecycle {
    accepting: CancellationToken,
    forced: CancellationToken,
    sessions: TaskTracker,
}

impl Lifecycle {
    /// A lifecycle that is accepting.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves when listeners must stop accepting.
    pub async fn stopped_accepting(&self) {
        self.accepting.cancelled().await
    }

    /// Resolves when live sessions must end now.
    pub async fn forced(&self) {
        self.forced.cancelled().await
    }

    /// Runs a session so that shutdown waits for it, and ends it if the grace runs out.
    pub fn spawn_session<F>(&self, session: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let forced = self.forced.clone();
        self.sessions.spawn(async move {
            tokio::select! {
                () = session => {}
                () = forced.cancelled() => {}
            }
        });
    }

    /// The number of sessions still running.
    pub fn live_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Stops accepting, waits up to `grace` for sessions to end, then ends them and waits
    /// until `force` (counted from the call) at the most.
    pub async fn shutdown(&self, grace: Duration, force: Duration) {
        self.accepting.cancel();
        self.sessions.close();
        let live = self.sessions.len();
        if live > 0 {
            tracing::info!(live, ?grace, "stopped accepting; waiting for live sessions");
        }
        if tokio::time::timeout(grace, self.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                live = self.sessions.len(),
                "grace timeout passed; ending live sessions"
            );
            self.forced.cancel();
            let left = force.saturating_sub(grace);
            if tokio::time::timeout(left, self.sessions.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    live = self.sessions.len(),
                    "force timeout passed; exiting anyway"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_get_the_grace_then_are_ended() {
        let life = Lifecycle::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        life.spawn_session(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let _ = done_tx.send(());
        });
        life.spawn_session(std::future::pending());
        let start = tokio::time::Instant::now();
        life.shutdown(Duration::from_secs(20), Duration::from_secs(30))
            .await;
        assert!(
            done_rx.await.is_ok(),
            "a short session finished within the grace"
        );
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(20),
            "the endless one was ended at the grace timeout"
        );
        assert_eq!(life.live_sessions(), 0);
    }
}
