//! A [`Balancer`](lb_core::Balancer) for a fleet of proxies: origins, placements and
//! sessions live in Redis (through [`fred`]), so every proxy sends a stream to the same
//! origin and resolves every HLS token and WebRTC ufrag, whichever proxy stored it.
//!
//! ```no_run
//! # async fn run() -> Result<(), lb_core::Error> {
//! use lb_core::{Balancer, BalancerConfig, PickIntent, Registration, StrategyKind, StreamKey};
//! use lb_redis::{RedisBalancer, RedisBalancerConfig};
//!
//! let redis = RedisBalancerConfig { host: "127.0.0.1".into(), port: 6379, ..Default::default() };
//! let lb = RedisBalancer::connect(redis, BalancerConfig::default(), StrategyKind::Random.build()).await?;
//! let body = br#"{"ip":"10.0.0.5","server":"a","service":"s","pid":"1","rtmp":["1935"]}"#;
//! lb.register(Registration::from_json(body)?.into_origin()?).await?;
//! let key = StreamKey::new(None, "live", "cam")?;
//! let origin = lb.pick(&key, PickIntent::Publish).await?;
//! assert_eq!(origin.rtmp[0].to_string(), "10.0.0.5:1935");
//! # Ok(()) }
//! ```
//!
//! [`mark_down`]: lb_core::Balancer::mark_down
//! [`release`]: lb_core::Balancer::release
//! [`mark_up`]: lb_core::Balancer::mark_up
//!
//! # Keys
//!
//! Named as SRS's Go proxy names them (prefix `srs-proxy-`, configurable). Do not share a
//! prefix with a running Go proxy: it stores other types under some of these names.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `srs-proxy-all-servers` | SET | every origin id (SADD/SREM, never rewritten whole) | never |
//! | `srs-proxy-server:{id}` | string | `{"heartbeat_ms":<Redis TIME>,"origin":{..}}` | 2 × origin TTL (static origins: never) |
//! | `srs-proxy-drain:{id}` | string | present while the origin drains | with its server key |
//! | `srs-proxy-url:{vhost/app/stream}` | string | the placed origin's id | placement TTL when firm, tentative TTL when tentative; renewed by pick and touch, deleted by [`release`] when tentative |
//! | `srs-proxy-streams:{id}` | ZSET | the origin's firm streams, scored by placement expiry (ms) | placement TTL |
//! | `srs-proxy-spbhid:{token}` | string | HLS session JSON | session TTL, renewed on read |
//! | `srs-proxy-ufrag:{ufrag}` | string | WebRTC session JSON | session TTL, renewed on read |
//! | `srs-proxy-down:{id}` | string | the reason of a health mark ([`mark_down`]); the origin is not alive while it exists | the mark's duration (PX), replaced by a later mark, deleted by [`mark_up`] and when the origin is forgotten |
//! | `srs-proxy-conns:{proxy}` | string | one proxy's connection report, JSON `{"origin id": count}` | the report's TTL |
//! | `srs-proxy-proxies` | SET | the proxies that reported connections; members whose report expired are dropped by the scripts that read them | never |
//!
//! An origin is alive while Redis's clock is less than one origin TTL past its heartbeat
//! (static origins: always) and no `down:{id}` key exists; its record outlives its TTL by a
//! TTL so that it is listed as dead before it disappears. An origin's connections
//! ([`OriginStatus::connections`](lb_core::OriginStatus::connections)) are the sum of its
//! entries in the current `conns:{proxy}` reports. Bounds: a proxy id is at most
//! [`MAX_PROXY_ID_LEN`](lb_core::MAX_PROXY_ID_LEN) bytes, a report names at most
//! [`MAX_REPORT_ENTRIES`](lb_core::MAX_REPORT_ENTRIES) origins, a reason is cut to
//! [`MAX_REASON_LEN`](lb_core::MAX_REASON_LEN) bytes.
//! The reference's `srs-proxy-hls:{stream}` and `srs-proxy-rtc:{stream}` are not written:
//! nothing looks sessions up by stream.
//!
//! # Picking
//!
//! Every decision that reads and writes shared state is one Lua script (EVALSHA, reloaded
//! by itself after a Redis restart), hence atomic across proxies:
//!
//! 1. The pick script is run without a candidate: if the stream is placed and its origin
//!    keeps it (alive; not draining, unless the client plays), the placement is renewed
//!    and the origin returned. **One round trip** for an already placed stream.
//! 2. Otherwise the proxy chooses a candidate with its strategy from a snapshot of the
//!    origins (one round trip to load it, unless a snapshot younger than
//!    [`RedisBalancerConfig::status_cache`] is at hand) and runs the script again: it
//!    returns the placement some other proxy made meanwhile, or checks the candidate
//!    against Redis's own data (alive and not marked down, not draining, below
//!    `max_streams`, and below `max_connections` summed over the proxies' reports) and
//!    places the stream on it, replacing a placement on a dead, marked down or draining
//!    origin. **Two round trips**
//!    for a new stream with a warm snapshot, three with a cold one; a refused candidate
//!    means the snapshot was stale, and the proxy retries with a fresh one.
//!
//! A placement is firm or tentative ([`Balancer::pick`](lb_core::Balancer::pick)): a firm
//! one is the `url:` key (placement TTL) and the stream's entry in its origin's
//! `streams:{id}` set; a tentative one (a play of a stream without a placement) is the
//! `url:` key alone, with the tentative TTL. Plays of streams that do not exist therefore
//! add nothing to the sets and leave keys that expire within the tentative TTL, or at once
//! when the proxy [`release`]s them.
//!
//! Stream counts for least-streams and `max_streams` come from the per-origin ZSETs: a
//! stream's score is its placement's expiry time, kept in step with the placement key by
//! the same scripts, so counting the live streams is a `ZCOUNT` and expired ones are
//! trimmed when the statuses are read. No scan of the key space is ever needed.
//!
//! What the snapshot may cost: nothing in agreement or liveness, since the script decides
//! those on fresh data; only balance. A new origin receives new streams from a given proxy
//! up to `status_cache` late, and least-streams sees other proxies' recent placements up
//! to `status_cache` late (its own are counted at once).
//!
//! Other operations: `register`, `set_draining`, `mark_down`, `mark_up`,
//! `report_connections`, `origins`, `origin`, `touch` (up to 500 streams per call),
//! `release`, `placements` (at most
//! [`MAX_LISTED_PLACEMENTS`](lb_core::MAX_LISTED_PLACEMENTS) set members examined), `hls`,
//! `rtc` are one script call each; `put_hls`, `put_rtc`, `remove_rtc` one command each.
//! `touch` also puts back, set-if-absent, the placement of a live stream that Redis lost
//! (a restart without persistence), naming the origin the proxy's sessions use. `register` and `origins` cost O(origins) inside Redis (a restart of
//! an origin is found by its `server`, expired index entries are dropped); `origins`, and a
//! placement on an origin with `max_connections`, also read every proxy's report
//! (O(proxies)).
//!
//! # Metrics
//!
//! Through the [`metrics`] facade (free when no recorder is installed):
//!
//! - `proxy_picks_total{balancer="redis", outcome}`: every pick, by outcome: `kept` (the
//!   stream stays where it is placed), `placed` (a stream without a placement got one),
//!   `replaced` (the stream left another origin: dead, marked down or draining), `failed`
//!   (an error: no origin could take it, or Redis failed).
//! - `proxy_redis_errors_total{operation}`: Redis calls that failed or timed out, by
//!   operation: `connect`, `script load`, `register`, `status`, `pick`, `touch`,
//!   `release`, `placements`, `drain`, `mark`, `report`, `session read`, `session write`,
//!   `session delete`.
//!
//! # When Redis is away
//!
//! Every call fails with [`Error::Unavailable`](lb_core::Error::Unavailable) after at most
//! [`RedisBalancerConfig::command_timeout`]; nothing panics, nothing waits longer. The
//! connections are re-established in the background with exponential backoff (100 ms up to
//! [`RedisBalancerConfig::reconnect_max_delay`]), forever. A Redis that restarts empty has
//! forgotten every origin: registered origins come back with their next heartbeat, static
//! ones must be registered again by whoever configured them. It has forgotten the
//! placements too: each proxy's next `touch` puts back those of its live streams, on the
//! origin their sessions use, unless a pick placed the stream first.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod balancer;
mod config;
mod keys;
mod scripts;
mod snapshot;

pub use balancer::RedisBalancer;
pub use config::{RedisBalancerConfig, DEFAULT_PREFIX};
