//! The accept loop every TCP front-end shares: the global connection limit, a refusal
//! logged for each client turned away, a span per connection, and sessions the shutdown
//! waits for.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use crate::Context;

/// Accepts until shutdown, running `handle` for each client in its own task.
pub fn serve_tcp<F, Fut>(
    ctx: Arc<Context>,
    listener: TcpListener,
    protocol: &'static str,
    handle: F,
) where
    F: Fn(Arc<Context>, TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = ctx.lifecycle.stopped_accepting() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(protocol, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
                tracing::warn!(protocol, %peer, limit = ctx.config.max_connections, "refused: connection limit reached");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let span = tracing::info_span!("conn", protocol, %peer);
            let session = handle(ctx.clone(), stream, peer);
            ctx.lifecycle.spawn_session(
                async move {
                    session.await;
                    drop(permit);
                }
                .instrument(span),
            );
        }
        tracing::info!(protocol, "stopped accepting");
    });
}
