//! The accept loop every TCP front-end shares: the global and per-client-IP connection
//! limits (a refused client is closed at once, counted, and logged at most once a second
//! per reason), a span per connection, and sessions the shutdown waits for.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use crate::limits::LogThrottle;
use crate::metrics::{self, Refusal};
use crate::Context;

/// A client connection a front-end serves: the socket, or TLS over it.
pub trait ClientStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> ClientStream for T {}

/// Accepts until shutdown, running `handle` for each client in its own task, in the
/// connection's span.
pub fn serve_tcp<F, Fut>(
    ctx: Arc<Context>,
    listener: TcpListener,
    protocol: &'static str,
    handle: F,
) where
    F: Fn(Arc<Context>, TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_tcp_spanned(ctx, listener, protocol, move |ctx, stream, peer, span| {
        handle(ctx, stream, peer).instrument(span)
    });
}

/// As [`serve_tcp`], but `handle` is given the connection's span and enters it itself:
/// a long-lived session that logs only at its start and end need not enter and leave
/// the span on each of its many wake-ups, as an instrumented future does.
pub fn serve_tcp_spanned<F, Fut>(
    ctx: Arc<Context>,
    listener: TcpListener,
    protocol: &'static str,
    handle: F,
) where
    F: Fn(Arc<Context>, TcpStream, SocketAddr, tracing::Span) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // What every connection's task holds at least, before it allocates anything itself.
    tracing::debug!(
        protocol,
        bytes = std::mem::size_of::<Fut>(),
        "size of a connection's future"
    );
    tokio::spawn(async move {
        // One line a second at most per reason: a flood must not flood the log too.
        let at_global_limit = LogThrottle::new(Duration::from_secs(1));
        let at_ip_limit = LogThrottle::new(Duration::from_secs(1));
        while let Some((stream, peer)) = next_client(&ctx, &listener, protocol).await {
            // Refused connections are closed at once (dropped), before any byte is read.
            let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
                metrics::refused(protocol, Refusal::ConnectionLimit);
                if let Some(held_back) = at_global_limit.allow() {
                    tracing::warn!(protocol, %peer, limit = ctx.live().max_connections, held_back, "refused: connection limit reached");
                }
                continue;
            };
            let Some(ip_slot) = ctx.per_ip.try_acquire(peer.ip()) else {
                metrics::refused(protocol, Refusal::IpLimit);
                if let Some(held_back) = at_ip_limit.allow() {
                    tracing::warn!(protocol, %peer, limit = ctx.per_ip.limit(), held_back, "refused: the client's IP has as many connections as it may");
                }
                continue;
            };
            metrics::client_accepted(protocol);
            let _ = stream.set_nodelay(true);
            let span = tracing::info_span!("conn", protocol, %peer);
            // Boxed before it is wrapped: each `async` wrapper below (and the shutdown
            // select in `spawn_session`) would otherwise hold the whole session future
            // again (rustc keeps a captured future and the one being awaited apart), which
            // made an idle connection's task several times the session's own size.
            let session = Box::pin(handle(ctx.clone(), stream, peer, span));
            ctx.lifecycle.spawn_session(async move {
                session.await;
                drop((permit, ip_slot));
            });
        }
        tracing::info!(protocol, "stopped accepting");
    });
}

/// The next client of `listener`, or `None` once the proxy stops accepting. A failed
/// accept (out of file descriptors and the like) is logged and retried after a pause
/// rather than in a spin.
pub async fn next_client(
    ctx: &Context,
    listener: &TcpListener,
    listener_name: &'static str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            () = ctx.lifecycle.stopped_accepting() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(pair) => return Some(pair),
            Err(e) => {
                tracing::warn!(listener = listener_name, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
