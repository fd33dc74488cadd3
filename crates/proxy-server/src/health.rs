//! Active health probes of the origins, and this proxy's reports of the sessions it relays
//! to each origin.
//!
//! # Probes
//!
//! Every `health_check_interval`, give or take a tenth (so that a fleet of proxies started
//! together does not probe in step), the upkeep task ([`crate::upkeep`], on the tick it
//! shares with the proxy's other chores) lists the origins from the balancer, so that
//! origins that register or expire are picked up at the next round, and probes every
//! static origin (and every registered one with a fresh heartbeat, when
//! `health_check_registered` is on). The probes of a round run concurrently, at most
//! [`MAX_CONCURRENT_PROBES`] at once.
//!
//! A probe checks the origin's RTMP, HTTP and API endpoints (the TCP ones: SRT and WebRTC
//! media are UDP, which a connect cannot test), each within `health_check_timeout`:
//! - HTTP and API: a TCP connect, closed at once (no request, so nothing in the origin's
//!   access log);
//! - RTMP: a TCP connect and the RTMP handshake (C0C1, then S0S1S2 must come back; C2 is
//!   sent to finish it before closing), preceded by a PROXY protocol header when the RTMP
//!   leg carries one. A connect alone passes on a hung origin (stopped, deadlocked, its
//!   host swapping): the kernel completes TCP handshakes for it while nothing answers.
//!
//! It passes when **every protocol the origin lists** has an endpoint that passes: an origin
//! whose HTTP port is dead cannot serve HTTP-FLV or HLS, so it is not fit for new streams
//! even if its RTMP port answers. Among several endpoints of one protocol one is enough,
//! since the proxy tries them in turn when it connects. An origin without TCP endpoints is
//! not probed.
//!
//! As in HAProxy, an origin starts up (an origin listed at start is used at once; a dead
//! one is found out within `fall` intervals); `fall` consecutive failures take it down
//! with [`Balancer::mark_down`](lb_core::Balancer::mark_down), reason
//! `probe: <protocol> <endpoint>: <error>`, and `rise` consecutive passes bring it back
//! with `mark_up`. The mark lasts [`hold`] and every failing probe renews it, so a proxy
//! that stops probing (it crashed, it was scaled down) does not hold an origin down for
//! long. With a shared balancer every proxy probes, and any proxy's mark holds the origin
//! down for the whole fleet: one proxy that cannot reach an origin is reason enough not to
//! place new streams there.
//!
//! # Connection reports
//!
//! Every [`REPORT_EVERY`] the proxy reports how many live sessions it relays to each origin
//! ([`Balancer::report_connections`](lb_core::Balancer::report_connections)), under an id
//! unique to this process, valid for three periods; the balancer sums the fleet's reports
//! into each origin's `connections`, which `max_connections` limits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use lb_core::{Endpoint, Origin, OriginId, OriginSource, OriginStatus, Transport};
use rtmp_peek::handshake::ClientHandshake;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{HealthCheck, ProxyProtocolVersion};
use crate::Context;

/// Most probes in flight at once: a round over many origins must not open hundreds of
/// sockets at the same instant.
pub const MAX_CONCURRENT_PROBES: usize = 32;
/// How often this proxy reports its sessions per origin.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);

/// Starts the connection reports, and logs the probe settings. The probe rounds run on
/// the shared upkeep tick ([`crate::upkeep::run`]), which keeps a [`Prober`].
pub fn start(ctx: Arc<Context>) {
    let proxy = proxy_id();
    tracing::info!(proxy = %proxy, "connection reports every {REPORT_EVERY:?} under this proxy id");
    let settings = ctx.live().health_check;
    match settings.interval {
        Some(interval) => {
            tracing::info!(
                ?interval,
                timeout = ?settings.timeout,
                rise = settings.rise,
                fall = settings.fall,
                registered = settings.registered,
                "probing origins"
            );
        }
        None => tracing::info!("origin probes are off"),
    }
    tokio::spawn(report_connections(ctx, proxy));
}

/// An origin's probe history, as HAProxy keeps it: consecutive passes and failures, and
/// whether the probes hold it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeState {
    /// Consecutive passing probes.
    pub passes: u32,
    /// Consecutive failing probes.
    pub fails: u32,
    /// Whether the probes consider the origin up.
    pub up: bool,
}

impl Default for ProbeState {
    /// Up, as HAProxy starts its servers: `fall` failures are needed to go down.
    fn default() -> Self {
        ProbeState {
            passes: 0,
            fails: 0,
            up: true,
        }
    }
}

/// What a probe result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Still up, or still down.
    None,
    /// `fall` consecutive failures: the origin goes down.
    WentDown,
    /// `rise` consecutive passes: the origin comes back up.
    CameUp,
}

impl ProbeState {
    /// Records a probe's result, with the thresholds (each at least 1).
    pub fn record(&mut self, passed: bool, rise: u32, fall: u32) -> Change {
        if passed {
            self.passes = self.passes.saturating_add(1);
            self.fails = 0;
            if !self.up && self.passes >= rise.max(1) {
                self.up = true;
                return Change::CameUp;
            }
        } else {
            self.fails = self.fails.saturating_add(1);
            self.passes = 0;
            if self.up && self.fails >= fall.max(1) {
                self.up = false;
                return Change::WentDown;
            }
        }
        Change::None
    }
}

/// How long one mark-down holds an origin: three intervals plus a probe's timeout, so
/// that it outlives the next round (which renews it while the probes fail) with room for a
/// slow round, yet ends soon after the probing stops.
pub fn hold(settings: &HealthCheck, interval: Duration) -> Duration {
    interval.saturating_mul(3).saturating_add(settings.timeout)
}

/// The probe history of every origin probed, and the bound on probes in flight, kept
/// from round to round by the upkeep task.
pub(crate) struct Prober {
    states: HashMap<OriginId, ProbeState>,
    limit: Arc<Semaphore>,
}

impl Prober {
    pub(crate) fn new() -> Self {
        Prober {
            states: HashMap::new(),
            limit: Arc::new(Semaphore::new(MAX_CONCURRENT_PROBES)),
        }
    }

    /// Forgets every origin's history: probes were turned off, and start afresh (up) when
    /// a reload turns them on again.
    pub(crate) fn clear(&mut self) {
        self.states.clear();
    }

    /// Probes every origin once and acts on the results.
    pub(crate) async fn round(&mut self, ctx: &Arc<Context>, interval: Duration) {
        round(ctx, interval, &mut self.states, &self.limit).await
    }
}

/// `interval` give or take a tenth.
pub(crate) fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.9 + fastrand::f64() * 0.2)
}

/// Whether an origin is probed: static ones always, registered ones when asked and while
/// their heartbeat is fresh (an expired one is dead anyway).
fn probed(ctx: &Context, status: &OriginStatus) -> bool {
    match status.origin.source {
        OriginSource::Static => true,
        OriginSource::Registered => {
            ctx.live().health_check.registered
                && lb_core::is_alive(
                    OriginSource::Registered,
                    status.since_heartbeat,
                    ctx.config.balancer_config.origin_ttl,
                )
        }
    }
}

/// Probes every origin once and acts on the results.
async fn round(
    ctx: &Arc<Context>,
    interval: Duration,
    states: &mut HashMap<OriginId, ProbeState>,
    limit: &Arc<Semaphore>,
) {
    // A balancer that cannot answer (Redis away) skips the round rather than stall it.
    let origins = match tokio::time::timeout(interval, ctx.balancer.origins()).await {
        Ok(Ok(origins)) => origins,
        Ok(Err(e)) => {
            tracing::debug!("cannot list origins to probe: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!("cannot list origins to probe: no answer within {interval:?}");
            return;
        }
    };
    let targets: Vec<Origin> = origins
        .into_iter()
        .filter(|s| probed(ctx, s) && has_tcp_endpoint(&s.origin))
        .map(|s| s.origin)
        .collect();
    states.retain(|id, _| targets.iter().any(|o| &o.id == id));

    let live = ctx.live();
    let how = ProbeHow {
        timeout: live.health_check.timeout,
        rtmp_proxy_header: live
            .origin_proxy_protocol
            .rtmp
            .then_some(live.origin_proxy_protocol.version),
    };
    let mut probes = JoinSet::new();
    for origin in targets {
        let limit = limit.clone();
        probes.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let outcome = probe(&origin, how).await;
            (origin.id, outcome)
        });
    }
    while let Some(done) = probes.join_next().await {
        let Ok((id, outcome)) = done else { continue };
        let state = states.entry(id.clone()).or_default();
        act(ctx, interval, &id, state, outcome).await;
    }
}

/// Records a probe's outcome and tells the balancer what changed.
async fn act(
    ctx: &Context,
    interval: Duration,
    id: &OriginId,
    state: &mut ProbeState,
    outcome: Result<(), ProbeError>,
) {
    let outcome = match outcome {
        // The proxy could not even try (out of descriptors): the origin is neither
        // healthier nor sicker than it was.
        Err(ProbeError { local: true, .. }) => return,
        outcome => outcome.map_err(|e| e.reason),
    };
    let settings = ctx.live().health_check;
    let change = state.record(outcome.is_ok(), settings.rise, settings.fall);
    match (change, outcome) {
        (Change::WentDown, Err(reason)) => {
            tracing::warn!(origin = %id, fails = state.fails, "origin down: {reason}");
            crate::metrics::origin_marked("probe");
            mark_down(ctx, interval, id, &reason).await;
            cut_sessions(ctx, id);
        }
        (Change::CameUp, _) => {
            tracing::info!(origin = %id, passes = state.passes, "origin up: probes pass again");
            crate::metrics::origin_marked("up");
            if let Err(e) = ctx.balancer.mark_up(id).await {
                // The mark ends by itself within `hold`.
                tracing::warn!(origin = %id, "cannot mark the origin up: {e}");
            }
        }
        // Still down: renew the mark so that it outlives the next round.
        (Change::None, Err(reason)) if !state.up => {
            tracing::debug!(origin = %id, "still down: {reason}");
            mark_down(ctx, interval, id, &reason).await;
            // Sessions that raced the mark (placed from a stale view) go too.
            cut_sessions(ctx, id);
        }
        (Change::None, Err(reason)) => {
            tracing::info!(
                origin = %id,
                fails = state.fails,
                fall = settings.fall,
                "probe failed: {reason}"
            );
        }
        _ => {}
    }
}

/// Ends this proxy's sessions on an origin its probes found dead, when configured (as
/// HAProxy's `on-marked-down shutdown-sessions`): a hung origin would otherwise hold its
/// clients until socket buffers fill, and they reconnect to a live origin at once.
fn cut_sessions(ctx: &Context, id: &OriginId) {
    if !ctx.live().health_check.cut_sessions {
        return;
    }
    let cut = ctx.sessions.cut_origin(id);
    if cut > 0 {
        tracing::warn!(origin = %id, sessions = cut, "ended the sessions on an origin marked down");
    }
}

async fn mark_down(ctx: &Context, interval: Duration, id: &OriginId, reason: &str) {
    let held = hold(&ctx.live().health_check, interval);
    if let Err(e) = ctx
        .balancer
        .mark_down(id, &format!("probe: {reason}"), held)
        .await
    {
        tracing::warn!(origin = %id, "cannot mark the origin down: {e}");
    }
}

/// The TCP endpoints a probe tries, by protocol.
fn probe_groups(origin: &Origin) -> [(&'static str, Vec<&Endpoint>); 3] {
    fn tcp(list: &[Endpoint]) -> Vec<&Endpoint> {
        list.iter()
            .filter(|e| e.transport == Transport::Tcp)
            .collect()
    }
    [
        ("rtmp", tcp(&origin.rtmp)),
        ("http", tcp(&origin.http)),
        ("api", tcp(&origin.api)),
    ]
}

fn has_tcp_endpoint(origin: &Origin) -> bool {
    probe_groups(origin)
        .iter()
        .any(|(_, list)| !list.is_empty())
}

/// How a probe checks an origin's endpoints.
#[derive(Debug, Clone, Copy)]
pub struct ProbeHow {
    /// Time each endpoint's check may take.
    pub timeout: Duration,
    /// The PROXY protocol header the origin's RTMP port expects first, if any.
    pub rtmp_proxy_header: Option<ProxyProtocolVersion>,
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    /// What failed (`http 10.0.0.5:8080: connection refused`).
    pub reason: String,
    /// The proxy could not open a socket (out of descriptors or ports): this says
    /// nothing about the origin, and must not count against it.
    pub local: bool,
}

impl ProbeError {
    fn origin(reason: String) -> Self {
        ProbeError {
            reason,
            local: false,
        }
    }
}

/// One probe of an origin: `Ok` when every protocol it lists has an endpoint that passes
/// its check, else the first failure (`http 10.0.0.5:8080: ...`).
pub async fn probe(origin: &Origin, how: ProbeHow) -> Result<(), ProbeError> {
    // SRS may serve HTTP and its API on one port: check it once.
    let mut tried: Vec<(&str, &Endpoint, Result<(), ProbeError>)> = Vec::new();
    for (protocol, endpoints) in probe_groups(origin) {
        let kind = if protocol == "rtmp" { "rtmp" } else { "tcp" };
        let mut failure = None;
        for endpoint in endpoints {
            let known = tried
                .iter()
                .find(|(k, e, _)| *k == kind && e.host == endpoint.host && e.port == endpoint.port);
            let result = match known {
                Some((_, _, result)) => result.clone(),
                None => {
                    let check = async {
                        let stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
                            .await
                            .map_err(|e| ProbeError {
                                local: crate::origin_link::is_local_exhaustion(&e),
                                reason: e.to_string(),
                            })?;
                        match kind {
                            "rtmp" => rtmp_handshake(stream, how.rtmp_proxy_header)
                                .await
                                .map_err(ProbeError::origin),
                            // Dropped at once: the question is only whether it accepts.
                            _ => Ok(()),
                        }
                    };
                    let result = tokio::time::timeout(how.timeout, check)
                        .await
                        .unwrap_or_else(|_| {
                            Err(ProbeError::origin(format!(
                                "no answer within {:?}",
                                how.timeout
                            )))
                        });
                    tried.push((kind, endpoint, result.clone()));
                    result
                }
            };
            match result {
                Ok(()) => {
                    failure = None;
                    break;
                }
                Err(e) => {
                    failure = Some(ProbeError {
                        reason: format!("{protocol} {endpoint}: {}", e.reason),
                        local: e.local,
                    })
                }
            }
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
    }
    Ok(())
}

/// The client side of the plain RTMP handshake (rtmp-peek's): the origin must answer C0C1
/// with S0S1S2. C2 completes it, so the origin sees a client that connected and left, not
/// a broken handshake.
async fn rtmp_handshake(
    mut stream: TcpStream,
    proxy_header: Option<ProxyProtocolVersion>,
) -> Result<(), String> {
    let mut out = BytesMut::new();
    if let Some(version) = proxy_header {
        let (local, peer) = (
            stream.local_addr().map_err(|e| e.to_string())?,
            stream.peer_addr().map_err(|e| e.to_string())?,
        );
        out.extend_from_slice(&crate::proxy_protocol::header(version, local, peer));
    }
    let mut handshake = ClientHandshake::new(false);
    handshake
        .start(&mut out)
        .map_err(|e| format!("building C0C1: {e}"))?;
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("sending C0C1: {e}"))?;
    out.clear();
    let mut input = BytesMut::new();
    while !handshake
        .process(&mut input, &mut out)
        .map_err(|e| format!("not RTMP: {e}"))?
    {
        match stream.read_buf(&mut input).await {
            Ok(0) => return Err("closed during the RTMP handshake".to_owned()),
            Ok(_) => {}
            Err(e) => return Err(format!("reading S0S1S2: {e}")),
        }
    }
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("sending C2: {e}"))?;
    let _ = stream.shutdown().await;
    Ok(())
}

/// This process's id among the proxies sharing a balancer: `hostname-pid-random`, unique
/// even for two containers with the same hostname and pid.
pub fn proxy_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    let host = if host.is_empty() {
        "proxy".into()
    } else {
        host
    };
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        fastrand::u32(..0x100_0000)
    )
}

/// Reports this proxy's live sessions per origin every [`REPORT_EVERY`], valid for three
/// periods. An idle proxy reports once that it has none, then stays quiet, and its timer
/// sleeps until a session opens.
async fn report_connections(ctx: Arc<Context>, proxy: String) {
    let ttl = REPORT_EVERY * 3;
    let mut tick = tokio::time::interval(REPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_had_sessions = false;
    let mut failing = false;
    loop {
        tick.tick().await;
        let mut counts: Vec<(OriginId, u64)> = ctx
            .sessions
            .by_origin()
            .into_iter()
            .map(|(id, n)| (id, n as u64))
            .collect();
        if counts.is_empty() && !last_had_sessions {
            ctx.sessions.opened().await;
            // The first report a period after the opening.
            tick.reset();
            continue;
        }
        counts.sort();
        match ctx.balancer.report_connections(&proxy, &counts, ttl).await {
            Ok(()) => {
                last_had_sessions = !counts.is_empty();
                if failing {
                    tracing::info!("connection reports go through again");
                    failing = false;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!("cannot report connections per origin: {e}");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_up_and_needs_fall_failures_to_go_down() {
        let mut s = ProbeState::default();
        assert!(s.up);
        assert_eq!(s.record(false, 2, 3), Change::None);
        assert_eq!(s.record(false, 2, 3), Change::None);
        assert_eq!(s.record(false, 2, 3), Change::WentDown);
        assert!(!s.up);
        assert_eq!(s.record(false, 2, 3), Change::None, "already down");
    }

    #[test]
    fn a_pass_resets_the_failures() {
        let mut s = ProbeState::default();
        s.record(false, 2, 3);
        s.record(false, 2, 3);
        assert_eq!(s.record(true, 2, 3), Change::None);
        assert_eq!(s.fails, 0);
        s.record(false, 2, 3);
        s.record(false, 2, 3);
        assert!(s.up, "two failures after a pass are not three in a row");
    }

    #[test]
    fn rise_passes_in_a_row_bring_it_back() {
        let mut s = ProbeState {
            passes: 0,
            fails: 5,
            up: false,
        };
        assert_eq!(s.record(true, 2, 3), Change::None);
        assert_eq!(
            s.record(false, 2, 3),
            Change::None,
            "a failure restarts the count"
        );
        assert_eq!(s.record(true, 2, 3), Change::None);
        assert_eq!(s.record(true, 2, 3), Change::CameUp);
        assert!(s.up);
        assert_eq!(s.record(true, 2, 3), Change::None, "already up");
    }

    #[test]
    fn thresholds_of_zero_count_as_one() {
        let mut s = ProbeState::default();
        assert_eq!(s.record(false, 0, 0), Change::WentDown);
        assert_eq!(s.record(true, 0, 0), Change::CameUp);
    }

    #[test]
    fn a_mark_outlives_the_next_round() {
        let settings = HealthCheck {
            interval: Some(Duration::from_secs(2)),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            registered: false,
            cut_sessions: true,
        };
        let held = hold(&settings, Duration::from_secs(2));
        assert!(
            held >= Duration::from_secs(4) + settings.timeout,
            "{held:?}"
        );
    }

    fn origin(rtmp: &[u16], http: &[u16]) -> Origin {
        let eps = |ports: &[u16]| {
            ports
                .iter()
                .map(|p| Endpoint {
                    host: "127.0.0.1".into(),
                    port: *p,
                    transport: Transport::Tcp,
                })
                .collect()
        };
        Origin {
            id: OriginId::new("o"),
            server: "o".into(),
            service: String::new(),
            pid: String::new(),
            device_id: None,
            ip: "127.0.0.1".into(),
            rtmp: eps(rtmp),
            http: eps(http),
            api: Vec::new(),
            srt: vec![Endpoint {
                host: "127.0.0.1".into(),
                port: 9,
                transport: Transport::Udp,
            }],
            rtc: Vec::new(),
            weight: 1,
            max_streams: None,
            max_connections: None,
            load: None,
            source: OriginSource::Static,
        }
    }

    /// A port nothing listens on: bound, then released.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A FAKE RTMP origin (the unit tests have no nginx): answers every handshake with
    /// S0S1S2 and reads C2. `silent`: accepts and never answers, as a hung process would.
    async fn fake_rtmp_origin(silent: bool) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut conn, _)) = listener.accept().await {
                if silent {
                    held.push(conn);
                    continue;
                }
                tokio::spawn(async move {
                    let mut handshake = rtmp_peek::handshake::ServerHandshake::new();
                    let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
                    loop {
                        let done =
                            handshake.process(&mut input, &mut out).is_err() || handshake.is_done();
                        if !out.is_empty() {
                            conn.write_all(&out).await?;
                            out.clear();
                        }
                        if done || conn.read_buf(&mut input).await? == 0 {
                            return Ok::<(), std::io::Error>(());
                        }
                    }
                });
            }
        });
        port
    }

    fn how() -> ProbeHow {
        ProbeHow {
            timeout: Duration::from_millis(500),
            rtmp_proxy_header: None,
        }
    }

    #[tokio::test]
    async fn every_protocol_needs_one_passing_endpoint() {
        let rtmp = fake_rtmp_origin(false).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap().port();
        let closed = closed_port();

        assert_eq!(probe(&origin(&[rtmp], &[http]), how()).await, Ok(()));
        assert_eq!(
            probe(&origin(&[closed, rtmp], &[]), how()).await,
            Ok(()),
            "one of two RTMP endpoints is enough"
        );
        let err = probe(&origin(&[rtmp], &[closed]), how())
            .await
            .unwrap_err()
            .reason;
        assert!(
            err.starts_with(&format!("http 127.0.0.1:{closed}: ")),
            "a dead HTTP port fails the probe: {err}"
        );
        assert!(!has_tcp_endpoint(&origin(&[], &[])), "UDP only: not probed");
    }

    #[tokio::test]
    async fn a_hung_rtmp_origin_fails_though_it_accepts() {
        let hung = fake_rtmp_origin(true).await;
        let err = probe(&origin(&[hung], &[]), how())
            .await
            .unwrap_err()
            .reason;
        assert!(err.contains("no answer within"), "{err}");
        // A port that accepts but does not speak RTMP (here: closes at once).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        });
        let err = probe(&origin(&[port], &[]), how())
            .await
            .unwrap_err()
            .reason;
        assert!(
            err.starts_with(&format!("rtmp 127.0.0.1:{port}: ")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_rtmp_probe_sends_the_proxy_header_first_when_the_leg_wants_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 12];
            conn.read_exact(&mut first).await.unwrap();
            first
        });
        let how = ProbeHow {
            rtmp_proxy_header: Some(ProxyProtocolVersion::V2),
            ..how()
        };
        let _ = probe(&origin(&[port], &[]), how).await;
        let first = seen.await.unwrap();
        assert_eq!(
            &first, b"\r\n\r\n\0\r\nQUIT\n",
            "the v2 signature comes first"
        );
    }

    #[test]
    fn proxy_ids_differ_between_calls() {
        let (a, b) = (proxy_id(), proxy_id());
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
        assert_ne!(a, b, "the random part tells two processes apart");
    }
}
