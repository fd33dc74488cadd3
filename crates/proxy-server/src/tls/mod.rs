//! TLS on the client-facing listeners: RTMPS (PROXY_RTMPS_SERVER), HTTPS media
//! (PROXY_HTTPS_SERVER, HTTP/1.1 and HTTP/2 by ALPN) and WHIP/WHEP over HTTPS
//! (PROXY_HTTPS_API), with rustls on the ring provider.
//!
//! A TLS listener is the plain one's accept loop (global and per-IP connection limits
//! apply before a byte is read) with the handshake in front of the same front-end code:
//! the handshake must finish within the handshake timeout, and one that fails or stalls
//! is counted by reason (`proxy_tls_handshakes_total{protocol,outcome}`) and logged, and
//! costs nothing beyond its own connection. The front-ends then read and write the
//! [`TlsStream`] as they would the socket: rustls decrypts into its own buffer and the
//! front-end reads from it, which is the one copy TLS cannot do without.
//!
//! Certificates live in the [`CertStore`], which reloads them on SIGHUP and when their
//! files change.

mod store;
mod validity;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
pub use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

pub use self::store::{CertPair, CertStore, LoadError, Reloaded, POLL_INTERVAL};
use crate::origin_link::ClientAddrs;
use crate::Context;

/// ALPN offered by the RTMPS listener: none (RTMP has no ALPN name; clients send none).
pub const ALPN_NONE: &[&[u8]] = &[];
/// ALPN offered by the HTTPS listeners: HTTP/2 preferred.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Accepts TLS clients on `listener` until shutdown: the accept loop's limits, then the
/// handshake within the handshake timeout, then `handle` with the encrypted stream, the
/// client's addresses and when it was accepted. `before_handshake` may tune the socket
/// first.
pub fn serve<F, Fut>(
    ctx: Arc<Context>,
    listener: TcpListener,
    protocol: &'static str,
    store: &CertStore,
    alpn: &[&[u8]],
    before_handshake: fn(&TcpStream),
    handle: F,
) where
    F: Fn(Arc<Context>, TlsStream<TcpStream>, ClientAddrs, Instant) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(store.server_config(alpn));
    let handle = Arc::new(handle);
    crate::accept::serve_tcp(ctx, listener, protocol, move |ctx, stream, peer| {
        let accepted = Instant::now();
        let addrs = ClientAddrs::of(&stream, peer);
        before_handshake(&stream);
        let acceptor = acceptor.clone();
        let handle = handle.clone();
        async move {
            let limit = ctx.live().handshake_timeout;
            let stream = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    let outcome = failure(&e);
                    crate::metrics::tls_handshake(protocol, outcome);
                    if outcome == "not_tls" {
                        crate::metrics::refused(protocol, crate::metrics::Refusal::BadRequest);
                    }
                    tracing::info!(outcome, "closed: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    crate::metrics::tls_handshake(protocol, "timeout");
                    crate::metrics::refused(protocol, crate::metrics::Refusal::HandshakeTimeout);
                    tracing::info!(
                        "closed: no TLS handshake within the handshake timeout ({limit:?})"
                    );
                    return;
                }
            };
            crate::metrics::tls_handshake(protocol, "ok");
            handle(ctx, stream, addrs, accepted).await
        }
    });
}

/// The `outcome` label of a failed handshake.
fn failure(e: &io::Error) -> &'static str {
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => "closed",
            _ => "io",
        };
    };
    match tls {
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => "not_tls",
        rustls::Error::AlertReceived(_) => "client_alert",
        rustls::Error::PeerIncompatible(_) | rustls::Error::NoApplicationProtocol => "incompatible",
        rustls::Error::General(_) => "no_certificate",
        _ => "other",
    }
}

/// Whether the client chose HTTP/2 by ALPN.
pub fn is_h2(stream: &TlsStream<TcpStream>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(b"h2")
}
