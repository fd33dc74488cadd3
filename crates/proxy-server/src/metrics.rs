//! What the proxy counts, through the `metrics` facade: front-ends call these functions,
//! and the System API's `/metrics` renders them for Prometheus. Without an installed
//! recorder (an embedding tool that does not want them) every call is nearly free.
//!
//! Names and labels (every name starts with `proxy_`):
//! - `proxy_client_connections_total{protocol}`: clients accepted by a listener
//!   (`rtmp`, `http`, `http-api`, `srt`, `webrtc`).
//! - `proxy_refusals_total{protocol,reason}`: clients turned away, by [`Refusal`] reason.
//! - `proxy_sessions_active{protocol}`: live relayed sessions (gauge), by session protocol
//!   (`rtmp`, `http-flv`, `http-ts`, `hls`, `webrtc`, `srt`).
//! - `proxy_bytes_total{protocol,direction}`: bytes relayed, `to_origin` or `to_client`,
//!   by session protocol.
//! - `proxy_origin_connect_failures_total{protocol}`: connects to an origin that failed.
//! - `proxy_origin_retries_total{protocol}`: clients re-placed on another origin after one.
//! - `proxy_origin_marks_total{reason}`: origins marked down (`probe`, `connect`) or up.
//! - `proxy_balancer_errors_total{operation}`: balancer calls the proxy saw fail.
//! - `proxy_picks_total{balancer,outcome}`, `proxy_redis_errors_total{operation}`: from the
//!   balancer crates.
//! - `proxy_tls_handshakes_total{protocol,outcome}`: TLS handshakes on the TLS listeners
//!   (`rtmps`, `https`, `https-api`): `ok`, `timeout`, `not_tls` (garbage), `closed`,
//!   `client_alert` (the client refused the certificate...), `incompatible`, `io`, `other`.
//! - `proxy_tls_reloads_total{outcome}`: certificate pairs (re)loaded, `ok` or `failed`.
//! - `proxy_edge_cache_requests_total{kind,outcome}`: HLS requests an edge answered, by
//!   `kind` (`playlist`, `media`) and `outcome`: `hit` (from the cache), `miss` (fetched
//!   from upstream by this request), `coalesced` (waited for another request's fetch),
//!   `uncacheable` (too large for the cache: streamed through).
//! - `proxy_edge_cache_bytes_total{kind,source}`: HLS body bytes an edge sent to viewers,
//!   `cache` (hits and coalesced waits) or `origin` (the fetching request's own).
//! - `proxy_edge_cache_stored_bytes`: bytes the edge's HLS cache holds (gauge).
//! - `proxy_edge_viewers{protocol}`, `proxy_edge_upstreams{protocol}` (gauges),
//!   `proxy_edge_slow_viewers_total{action}` (`skipped`, `cut`),
//!   `proxy_edge_repulls_total{protocol}`: edge mode (see `crate::edge`); with
//!   `proxy_edge_upstream_sessions` and `proxy_edge_fanout_ratio` rendered at scrape.
//! - `proxy_balancer_up` and the `proxy_origin_*{origin}` gauges: read from the balancer
//!   when `/metrics` is scraped, and rendered then (see [`ScrapeGauges`]), so an origin
//!   that is gone leaves no stale series.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, describe_counter, describe_gauge, gauge};

/// Why a client was turned away; the `reason` label of `proxy_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The global connection limit is reached.
    ConnectionLimit,
    /// The client's IP has as many connections as it may.
    IpLimit,
    /// The client did not say which stream it wants in time.
    HandshakeTimeout,
    /// The request is malformed or names no routable stream.
    BadRequest,
    /// No origin can take the stream (none alive, all draining or full).
    NoOrigin,
    /// The origin holding the stream is at its connection limit.
    OriginFull,
    /// No origin accepted the proxy's connection.
    OriginUnreachable,
    /// The origin answered with a refusal (e.g. an `on_publish` hook said no).
    OriginRefused,
    /// The proxy itself ran short (file descriptors, local ports, kernel buffers): no
    /// origin's fault, and no origin is marked for it.
    LocalResources,
    /// The client's connection would hold more buffered bytes than the process-wide
    /// budget has left (`PROXY_RTMP_BUFFER_BUDGET`).
    BufferBudget,
}

impl Refusal {
    /// Every reason, in declaration order (`as usize` indexes it).
    pub const ALL: [Refusal; 10] = [
        Refusal::ConnectionLimit,
        Refusal::IpLimit,
        Refusal::HandshakeTimeout,
        Refusal::BadRequest,
        Refusal::NoOrigin,
        Refusal::OriginFull,
        Refusal::OriginUnreachable,
        Refusal::OriginRefused,
        Refusal::LocalResources,
        Refusal::BufferBudget,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::IpLimit => "ip_limit",
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::BadRequest => "bad_request",
            Refusal::NoOrigin => "no_origin",
            Refusal::OriginFull => "origin_full",
            Refusal::OriginUnreachable => "origin_unreachable",
            Refusal::OriginRefused => "origin_refused",
            Refusal::LocalResources => "local_resources",
            Refusal::BufferBudget => "buffer_budget",
        }
    }
}

/// A client accepted by the `protocol` listener (`rtmp`, `http`, `http-api`, `srt`,
/// `webrtc`).
pub fn client_accepted(protocol: &'static str) {
    counter!("proxy_client_connections_total", "protocol" => protocol).increment(1);
}

/// A TLS handshake on the `protocol` listener ended with `outcome`.
pub fn tls_handshake(protocol: &'static str, outcome: &'static str) {
    counter!("proxy_tls_handshakes_total", "protocol" => protocol, "outcome" => outcome)
        .increment(1);
}

/// A certificate pair was reloaded (`ok`) or kept after a failed reload (`failed`).
pub fn tls_reload(outcome: &'static str) {
    counter!("proxy_tls_reloads_total", "outcome" => outcome).increment(1);
}

/// A client turned away.
pub fn refused(protocol: &'static str, reason: Refusal) {
    counter!("proxy_refusals_total", "protocol" => protocol, "reason" => reason.as_str())
        .increment(1);
    REFUSALS[reason as usize].fetch_add(1, Ordering::Relaxed);
}

/// This process's refusals by reason and reloads by result (applied, failed), kept
/// beside the Prometheus counters for the console's `GET /api/v1/proxy`: read directly,
/// whatever recorder an embedding program installed.
static REFUSALS: [AtomicU64; Refusal::ALL.len()] =
    [const { AtomicU64::new(0) }; Refusal::ALL.len()];
static RELOADS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

/// Refusals so far, by reason (every reason, zeros included).
pub fn refusal_counts() -> impl Iterator<Item = (&'static str, u64)> {
    Refusal::ALL
        .into_iter()
        .map(|r| (r.as_str(), REFUSALS[r as usize].load(Ordering::Relaxed)))
}

/// Configuration reloads so far: (applied, failed).
pub fn reload_counts() -> (u64, u64) {
    (
        RELOADS[0].load(Ordering::Relaxed),
        RELOADS[1].load(Ordering::Relaxed),
    )
}

/// A connect to an origin failed.
pub fn origin_connect_failed(protocol: &'static str) {
    counter!("proxy_origin_connect_failures_total", "protocol" => protocol).increment(1);
}

/// A client is being placed on another origin after a failed connect.
pub fn origin_retry(protocol: &'static str) {
    counter!("proxy_origin_retries_total", "protocol" => protocol).increment(1);
}

/// An origin was marked down (`probe`, `connect`) or back up (`up`).
pub fn origin_marked(reason: &'static str) {
    counter!("proxy_origin_marks_total", "reason" => reason).increment(1);
}

/// Live sessions of a protocol went up or down by one.
pub fn session_opened(protocol: &'static str) {
    gauge!("proxy_sessions_active", "protocol" => protocol).increment(1.0);
}

/// See [`session_opened`].
pub fn session_closed(protocol: &'static str) {
    gauge!("proxy_sessions_active", "protocol" => protocol).decrement(1.0);
}

/// The `proxy_bytes_total` counter of a session protocol and `direction` (`to_origin`,
/// `to_client`), for a session to hold: resolved once, incremented per packet.
pub fn bytes_counter(protocol: &'static str, direction: &'static str) -> metrics::Counter {
    counter!("proxy_bytes_total", "protocol" => protocol, "direction" => direction)
}

/// Balancer calls that failed, by `operation` (`origins`, `touch`, ...); the `proxy_`
/// counter the proxy keeps whatever the balancer (Redis or an embedder's own).
pub fn balancer_error(operation: &'static str) {
    counter!("proxy_balancer_errors_total", "operation" => operation).increment(1);
}

/// A configuration reload, applied or failed (nothing changed).
pub fn config_reload(applied: bool) {
    let result = if applied { "applied" } else { "failed" };
    counter!("proxy_config_reloads_total", "result" => result).increment(1);
    RELOADS[usize::from(!applied)].fetch_add(1, Ordering::Relaxed);
}

/// The process-wide Prometheus recorder: `Some` once this crate installed it, `None` when
/// the embedding program had installed a recorder of its own first.
static PROMETHEUS: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
    std::sync::OnceLock::new();

/// Histogram buckets, in seconds, of every latency metric.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long a balancer pick took (`proxy_pick_seconds{balancer}`).
pub fn pick_took(balancer: &'static str, took: std::time::Duration) {
    metrics::histogram!("proxy_pick_seconds", "balancer" => balancer).record(took.as_secs_f64());
}

/// How long a successful TCP connect to an origin took
/// (`proxy_origin_connect_seconds{protocol}`).
pub fn origin_connect_took(protocol: &'static str, took: std::time::Duration) {
    metrics::histogram!("proxy_origin_connect_seconds", "protocol" => protocol)
        .record(took.as_secs_f64());
}

/// Installs the Prometheus recorder behind `/metrics`, once per process (later calls, e.g.
/// several proxies in one test process, share it). Returns whether `/metrics` can render.
pub fn install_prometheus() -> bool {
    PROMETHEUS
        .get_or_init(|| {
            // Latencies from half a millisecond (a local pick) to seconds (a connect that
            // waits for its timeout).
            let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .expect("the bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::info!("metrics go to the recorder already installed ({e}); /metrics is unavailable");
                    None
                }
            }
        })
        .is_some()
}

/// An HLS request an edge answered: `kind` is `playlist` or `media`, `outcome` `hit`,
/// `miss`, `coalesced` or `uncacheable`; `bytes` of body went to the viewer, from the
/// cache unless the outcome is `miss` or `uncacheable`.
pub fn edge_cache(kind: &'static str, outcome: &'static str, bytes: usize) {
    counter!("proxy_edge_cache_requests_total", "kind" => kind, "outcome" => outcome).increment(1);
    let source = match outcome {
        "miss" | "uncacheable" => "origin",
        _ => "cache",
    };
    counter!("proxy_edge_cache_bytes_total", "kind" => kind, "source" => source)
        .increment(bytes as u64);
}

/// Bytes the edge's HLS cache holds now.
pub fn edge_cache_stored(bytes: usize) {
    gauge!("proxy_edge_cache_stored_bytes").set(bytes as f64);
}

/// The `# HELP` lines of the recorded metrics.
fn describe() {
    describe_counter!(
        "proxy_client_connections_total",
        "Clients accepted, by listener."
    );
    metrics::describe_histogram!(
        "proxy_pick_seconds",
        metrics::Unit::Seconds,
        "Time the balancer took to name a stream's origin."
    );
    metrics::describe_histogram!(
        "proxy_origin_connect_seconds",
        metrics::Unit::Seconds,
        "Time a TCP connect to an origin took, when it succeeded."
    );
    describe_counter!(
        "proxy_refusals_total",
        "Clients turned away, by listener and reason."
    );
    describe_gauge!(
        "proxy_sessions_active",
        "Live relayed sessions, by protocol."
    );
    describe_counter!(
        "proxy_bytes_total",
        "Bytes relayed, by protocol and direction (to_origin, to_client)."
    );
    describe_counter!(
        "proxy_origin_connect_failures_total",
        "Connects to an origin that failed."
    );
    describe_counter!(
        "proxy_origin_retries_total",
        "Clients placed on another origin after a failed connect."
    );
    describe_counter!(
        "proxy_origin_marks_total",
        "Origins marked down (probe, connect) or up."
    );
    describe_counter!(
        "proxy_balancer_errors_total",
        "Balancer calls that failed, by operation."
    );
    describe_counter!(
        "proxy_picks_total",
        "Placement decisions, by balancer and outcome (kept, placed, replaced, failed)."
    );
    describe_counter!("proxy_redis_errors_total", "Redis operations that failed.");
    describe_counter!(
        "proxy_config_reloads_total",
        "Configuration reloads (SIGHUP, POST /api/v1/reload), by result: applied, or failed \
         (nothing changed)."
    );
    describe_counter!(
        "proxy_tls_handshakes_total",
        "TLS handshakes, by listener and outcome (ok, timeout, not_tls, client_alert...)."
    );
    describe_counter!(
        "proxy_tls_reloads_total",
        "Certificate pairs reloaded (ok) or kept after a failed reload (failed)."
    );
    describe_counter!(
        "proxy_edge_cache_requests_total",
        "HLS requests an edge answered, by kind and outcome (hit, miss, coalesced, uncacheable)."
    );
    describe_counter!(
        "proxy_edge_cache_bytes_total",
        "HLS body bytes an edge sent, by kind and source (cache, origin)."
    );
    describe_gauge!(
        "proxy_edge_cache_stored_bytes",
        "Bytes the edge's HLS cache holds."
    );
    describe_gauge!(
        "proxy_edge_viewers",
        "Edge mode: players fed from a shared upstream, by protocol (rtmp, http-flv, http-ts)."
    );
    describe_gauge!(
        "proxy_edge_upstreams",
        "Edge mode: upstream sessions running, by protocol (rtmp, http-ts)."
    );
    describe_counter!(
        "proxy_edge_slow_viewers_total",
        "Edge mode: players that fell behind, by action (skipped to a keyframe, cut)."
    );
    describe_counter!(
        "proxy_edge_repulls_total",
        "Edge mode: upstream sessions that ended and were pulled again, by protocol."
    );
}

/// The counters and gauges recorded so far in Prometheus's text format, or `None` when the
/// recorder is not ours (see [`install_prometheus`]).
pub fn render_prometheus() -> Option<String> {
    let handle = PROMETHEUS.get()?.as_ref()?;
    // Drains histogram buckets; none today, but cheap and keeps future ones bounded.
    handle.run_upkeep();
    Some(handle.render())
}

/// Writes gauges computed at scrape time (origin state from the balancer) in Prometheus's
/// text format. They are rendered here rather than recorded so that an origin the balancer
/// forgot leaves no stale series behind.
#[derive(Debug, Default)]
pub struct ScrapeGauges {
    out: String,
}

impl ScrapeGauges {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str) {
        use std::fmt::Write as _;
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        use std::fmt::Write as _;
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_gauges_escape_label_values() {
        let mut g = ScrapeGauges::default();
        g.family("proxy_origin_alive", "Whether the origin takes clients.");
        g.sample("proxy_origin_alive", &[("origin", "a\"b\\c\nd")], 1.0);
        g.sample("proxy_balancer_up", &[], 0.0);
        assert_eq!(
            g.finish(),
            "# HELP proxy_origin_alive Whether the origin takes clients.\n\
             # TYPE proxy_origin_alive gauge\n\
             proxy_origin_alive{origin=\"a\\\"b\\\\c\\nd\"} 1\n\
             proxy_balancer_up 0\n"
        );
    }
}
