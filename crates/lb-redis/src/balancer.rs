//! [`RedisBalancer`]: the [`Balancer`] of a fleet of proxies sharing one Redis.

use crate::breaker::{self, Breaker};
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::{ClientLike, Expiration, FromValue, KeysInterface, Pool, Value};
use fred::types::scripts::Script;
use lb_core::{
    check_report, choose_origin, clip_reason, Balancer, BalancerConfig, Error, HlsSession,
    LiveStream, Origin, OriginId, OriginSource, OriginStatus, PickIntent, Placement, RtcSession,
    Strategy, StreamKey, MAX_LISTED_PLACEMENTS,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keys::{parse_stream_name, stream_name, Keys, MAX_TOKEN_LEN};
use crate::scripts::Scripts;
use crate::snapshot::{malformed, parse_statuses, Record, StatusCache};
use crate::RedisBalancerConfig;

/// Placements tried for a new stream before giving up: each refusal means the local view
/// of the origins was stale, and each retry reloads it, so a second try nearly always wins.
const PLACE_ATTEMPTS: usize = 3;

/// Streams renewed per script call by [`Balancer::touch`]: enough to make it one round trip
/// for any realistic proxy, few enough that one call never blocks Redis for long (three
/// arguments each).
const TOUCH_BATCH: usize = 500;

/// The balancer of a fleet of proxies: origins, placements and sessions live in Redis, so
/// every proxy routes a stream to the same origin and resolves every session.
pub struct RedisBalancer {
    config: BalancerConfig,
    command_timeout: Duration,
    strategy: lb_core::StrategySlot,
    pool: Pool,
    keys: Keys,
    scripts: Scripts,
    cache: StatusCache,
    breaker: Breaker,
}

/// What the pick script decided.
enum Decision {
    Kept(Origin),
    /// Placed on the origin, leaving another one (and whether it was placed firmly there).
    Placed(Origin, Option<(OriginId, bool)>),
    /// No origin keeps the stream and no candidate was offered.
    Need,
    /// The candidate cannot take a new stream now.
    Refused,
}

impl RedisBalancer {
    /// Connects to Redis and loads the scripts. Fails with [`Error::Unavailable`] if Redis
    /// cannot be reached within the configured timeouts: a caller that must start anyway
    /// retries. Once connected, the balancer reconnects by itself whenever Redis comes back.
    pub async fn connect(
        redis: RedisBalancerConfig,
        config: BalancerConfig,
        strategy: Box<dyn Strategy>,
    ) -> Result<Self, Error> {
        let fred_config = redis.fred_config()?;
        let prefix = redis.effective_prefix(fred_config.server.is_clustered());
        let pool = redis
            .builder(fred_config)
            .build_pool(redis.pool_size.max(1))
            .map_err(|e| unavailable("configuration", &e))?;
        let wait = redis.connect_timeout + redis.command_timeout;
        let connected = match tokio::time::timeout(wait, pool.init()).await {
            Ok(Ok(_task)) => Ok(()),
            Ok(Err(e)) => {
                count_error("connect");
                Err(unavailable("connect", &e))
            }
            Err(_) => {
                count_error("connect");
                Err(Error::Unavailable(format!(
                    "redis connect: no connection within {wait:?}"
                )))
            }
        };
        let balancer = RedisBalancer {
            config,
            command_timeout: redis.command_timeout,
            strategy: lb_core::StrategySlot::new(strategy),
            pool,
            keys: Keys::new(prefix),
            scripts: Scripts::new(),
            cache: StatusCache::new(redis.status_cache),
            breaker: Breaker::default(),
        };
        if let Err(e) = connected {
            balancer.close().await;
            return Err(e);
        }
        // Loading now reports a broken script at start rather than at the first pick.
        for script in balancer.scripts.all() {
            let loaded = balancer
                .bounded("script load", script.load(balancer.pool.next_connected()))
                .await;
            if let Err(e) = loaded {
                balancer.close().await;
                return Err(e);
            }
        }
        // What new streams are placed over should Redis go away before the first pick.
        if let Err(e) = balancer.statuses().await {
            tracing::debug!("cannot read the origins yet: {e}");
        }
        tracing::info!(
            prefix = balancer.keys.prefix(),
            strategy = balancer.strategy.get().name(),
            "redis balancer connected"
        );
        Ok(balancer)
    }

    /// Closes the connections and waits (at most the command timeout) for Redis to
    /// acknowledge. Dropping the balancer closes them too, in the background.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(self.command_timeout, self.pool.quit()).await;
    }

    /// The key prefix in use (`srs-proxy-` by default; wrapped in `{}` on a cluster).
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// A Redis call that fails with [`Error::Unavailable`] rather than wait past the timeout;
    /// each failure counts in `proxy_redis_errors_total{operation=what}`. For a moment
    /// after a call found Redis unreachable, calls fail at once ([`Breaker`]).
    async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<T, fred::error::Error>>,
    ) -> Result<T, Error> {
        if !self.breaker.admit(self.command_timeout) {
            return Err(Error::Unavailable(format!(
                "redis {what}: unreachable a moment ago; failing at once for up to {:?}",
                breaker::OPEN_FOR
            )));
        }
        match tokio::time::timeout(self.command_timeout, call).await {
            Ok(Ok(value)) => {
                self.breaker.succeeded();
                Ok(value)
            }
            Ok(Err(e)) => {
                count_error(what);
                if unreachable(&e) {
                    self.breaker.failed();
                } else {
                    // Redis answered (with an error): it is there.
                    self.breaker.succeeded();
                }
                Err(unavailable(what, &e))
            }
            Err(_) => {
                count_error(what);
                self.breaker.failed();
                Err(Error::Unavailable(format!(
                    "redis {what}: no reply within {:?}",
                    self.command_timeout
                )))
            }
        }
    }

    async fn eval<R: FromValue>(
        &self,
        what: &'static str,
        script: &Script,
        key: String,
        args: Vec<String>,
    ) -> Result<R, Error> {
        let client = self.pool.next_connected();
        self.bounded(what, script.evalsha_with_reload(client, vec![key], args))
            .await
    }

    async fn load_statuses(&self) -> Result<Vec<OriginStatus>, Error> {
        let args = vec![self.keys.prefix().to_owned()];
        let reply: Vec<Value> = self
            .eval("status", &self.scripts.status, self.keys.index(), args)
            .await?;
        parse_statuses(reply, self.config.origin_ttl)
    }

    /// Fresh statuses, which also refresh the cache.
    async fn statuses(&self) -> Result<Vec<OriginStatus>, Error> {
        let statuses = self.load_statuses().await?;
        self.cache.store(statuses.clone());
        Ok(statuses)
    }

    /// One run of the pick script: keep the stream where it is, or place it on `candidate`.
    async fn decide(
        &self,
        url: &str,
        stream: &str,
        candidate: Option<&OriginId>,
        intent: PickIntent,
    ) -> Result<Decision, Error> {
        let args = vec![
            self.keys.prefix().to_owned(),
            stream.to_owned(),
            candidate.map(|id| id.to_string()).unwrap_or_default(),
            if intent == PickIntent::Publish {
                "1"
            } else {
                "0"
            }
            .to_owned(),
            millis(self.config.origin_ttl).to_string(),
            millis(self.config.placement_ttl).to_string(),
            millis(self.config.tentative_ttl).to_string(),
        ];
        let reply: Vec<String> = self
            .eval("pick", &self.scripts.pick, url.to_owned(), args)
            .await?;
        let [outcome, _id, raw, left, left_firm]: [String; 5] =
            reply.try_into().map_err(|_| malformed("pick"))?;
        let origin = || Record::parse(&raw).map(|r| r.origin);
        Ok(match outcome.as_str() {
            "kept" => Decision::Kept(origin()?),
            "placed" => Decision::Placed(
                origin()?,
                (!left.is_empty()).then(|| (OriginId::new(left), left_firm == "1")),
            ),
            "need" => Decision::Need,
            "refused" => Decision::Refused,
            _ => return Err(malformed("pick")),
        })
    }

    /// [`Balancer::pick`], and its outcome for `proxy_picks_total`.
    async fn pick_counted(
        &self,
        key: &StreamKey,
        intent: PickIntent,
    ) -> Result<(Origin, &'static str), Error> {
        let stream = stream_name(key);
        let url = self.keys.url(&stream);
        // Most picks are for placed streams: ask for the keeper alone first, so the strategy
        // runs only for streams that need an origin (a round-robin turn is not spent on a
        // stream that stays where it is) and a placed stream costs one round trip.
        match self.decide(&url, &stream, None, intent).await? {
            Decision::Kept(origin) => return Ok((origin, "kept")),
            Decision::Placed(origin, left) => return Ok((origin, placed(&left))),
            Decision::Need | Decision::Refused => {}
        }
        let mut last = None;
        for attempt in 0..PLACE_ATTEMPTS {
            let (statuses, fresh) = self.cache.get(attempt > 0, || self.load_statuses()).await?;
            let candidate = match choose_origin(self.strategy.get().as_ref(), key, &statuses) {
                Ok(origin) => origin.id.clone(),
                Err(e) if fresh => return Err(e),
                Err(_) => continue,
            };
            match self.decide(&url, &stream, Some(&candidate), intent).await? {
                Decision::Kept(origin) => return Ok((origin, "kept")),
                Decision::Placed(origin, left) => {
                    let to = (intent == PickIntent::Publish).then_some(&origin.id);
                    let from = left.as_ref().filter(|(_, firm)| *firm).map(|(id, _)| id);
                    self.cache.note_move(to, from);
                    return Ok((origin, placed(&left)));
                }
                Decision::Need | Decision::Refused => {
                    tracing::debug!(stream = %key, origin = %candidate, "candidate refused by Redis; reloading the origins");
                }
            }
            last = Some(statuses);
        }
        let statuses = last.unwrap_or_default();
        Err(Error::NoOrigin {
            registered: statuses.len(),
            alive: statuses.iter().filter(|s| s.alive).count(),
            accepting: statuses.iter().filter(|s| s.accepts_new_streams()).count(),
        })
    }

    /// Sets (`ms` > 0) or clears (`ms` = 0) an origin's health mark.
    async fn mark(&self, id: &OriginId, ms: i64, reason: &str) -> Result<(), Error> {
        let args = vec![
            self.keys.prefix().to_owned(),
            id.to_string(),
            ms.to_string(),
            reason.to_owned(),
        ];
        let known: i64 = self
            .eval("mark", &self.scripts.mark, self.keys.server(id), args)
            .await?;
        self.cache.invalidate();
        if known == 0 {
            return Err(Error::UnknownOrigin(id.clone()));
        }
        Ok(())
    }

    async fn put_session<T: Serialize>(&self, key: String, session: &T) -> Result<(), Error> {
        let json = serde_json::to_string(session)
            .map_err(|e| Error::Unavailable(format!("session encoding: {e}")))?;
        let ttl = Expiration::PX(millis(self.config.session_ttl));
        self.bounded(
            "session write",
            self.pool.set::<(), _, _>(key, json, Some(ttl), None, false),
        )
        .await
    }

    async fn get_session<T: DeserializeOwned>(&self, key: String) -> Result<Option<T>, Error> {
        let args = vec![millis(self.config.session_ttl).to_string()];
        let json: Option<String> = self
            .eval("session read", &self.scripts.session_get, key, args)
            .await?;
        Ok(json.and_then(|json| match serde_json::from_str(&json) {
            Ok(session) => Some(session),
            Err(e) => {
                // Another program's value under our prefix: unknown to us, not an outage.
                tracing::warn!(error = %e, "ignoring an unreadable session in Redis");
                None
            }
        }))
    }
}

#[async_trait]
impl Balancer for RedisBalancer {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn strategy_name(&self) -> &'static str {
        self.strategy.get().name()
    }

    fn set_strategy(&self, strategy: Box<dyn Strategy>) -> Result<(), Error> {
        self.strategy.set(strategy);
        Ok(())
    }

    async fn register(&self, origin: Origin) -> Result<(), Error> {
        let json = serde_json::to_string(&origin)
            .map_err(|e| Error::Unavailable(format!("origin encoding: {e}")))?;
        // A dead origin stays listed (not alive) for a second TTL, as lb-memory keeps it;
        // a static one never expires.
        let ttl = match origin.source {
            OriginSource::Static => 0,
            OriginSource::Registered => millis(self.config.origin_ttl.saturating_mul(2)),
        };
        let args = vec![
            self.keys.prefix().to_owned(),
            origin.id.to_string(),
            origin.server.clone(),
            json,
            ttl.to_string(),
        ];
        let _: i64 = self
            .eval("register", &self.scripts.register, self.keys.index(), args)
            .await?;
        self.cache.invalidate();
        Ok(())
    }

    async fn origin(&self, id: &OriginId) -> Result<Option<OriginStatus>, Error> {
        Ok(self
            .statuses()
            .await?
            .into_iter()
            .find(|s| &s.origin.id == id))
    }

    async fn origins(&self) -> Result<Vec<OriginStatus>, Error> {
        self.statuses().await
    }

    async fn set_draining(&self, id: &OriginId, draining: bool) -> Result<(), Error> {
        let args = vec![
            self.keys.prefix().to_owned(),
            id.to_string(),
            if draining { "1" } else { "0" }.to_owned(),
        ];
        let known: i64 = self
            .eval("drain", &self.scripts.drain, self.keys.server(id), args)
            .await?;
        self.cache.invalidate();
        if known == 0 {
            return Err(Error::UnknownOrigin(id.clone()));
        }
        Ok(())
    }

    async fn pick(&self, key: &StreamKey, intent: PickIntent) -> Result<Origin, Error> {
        let picked = self.pick_counted(key, intent).await;
        let outcome = match &picked {
            Ok((_, outcome)) => *outcome,
            Err(_) => "failed",
        };
        metrics::counter!("proxy_picks_total", "balancer" => "redis", "outcome" => outcome)
            .increment(1);
        picked.map(|(origin, _)| origin)
    }

    async fn touch(&self, live: &[LiveStream]) -> Result<(), Error> {
        for batch in live.chunks(TOUCH_BATCH) {
            let mut args = Vec::with_capacity(3 * batch.len() + 3);
            args.push(self.keys.prefix().to_owned());
            args.push(millis(self.config.placement_ttl).to_string());
            args.push(millis(self.config.tentative_ttl).to_string());
            for stream in batch {
                args.push(stream_name(&stream.key));
                args.push(stream.origin.to_string());
                args.push(if stream.publishing { "1" } else { "0" }.to_owned());
            }
            let created: i64 = self
                .eval("touch", &self.scripts.touch, self.keys.index(), args)
                .await?;
            if created > 0 {
                tracing::info!(
                    created,
                    "recreated placements of live streams that Redis had lost"
                );
            }
        }
        Ok(())
    }

    async fn release(&self, key: &StreamKey, origin: &OriginId) -> Result<(), Error> {
        let stream = stream_name(key);
        let url = self.keys.url(&stream);
        let args = vec![self.keys.prefix().to_owned(), stream, origin.to_string()];
        let _: i64 = self
            .eval("release", &self.scripts.release, url, args)
            .await?;
        Ok(())
    }

    async fn placements(&self) -> Result<Vec<Placement>, Error> {
        let args = vec![
            self.keys.prefix().to_owned(),
            MAX_LISTED_PLACEMENTS.to_string(),
        ];
        let reply: Vec<String> = self
            .eval(
                "placements",
                &self.scripts.placements,
                self.keys.index(),
                args,
            )
            .await?;
        let mut all: Vec<Placement> = reply
            .chunks_exact(2)
            .filter_map(|pair| {
                let key = parse_stream_name(&pair[0]);
                if key.is_none() {
                    tracing::warn!(stream = %pair[0], "skipping a placement whose stream name cannot be read");
                }
                Some(Placement { key: key?, origin: OriginId::new(pair[1].clone()) })
            })
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }

    async fn put_hls(&self, token: &str, session: &HlsSession) -> Result<(), Error> {
        self.put_session(self.keys.hls(token), session).await
    }

    async fn hls(&self, token: &str) -> Result<Option<HlsSession>, Error> {
        if token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        self.get_session(self.keys.hls(token)).await
    }

    async fn put_rtc(&self, server_ufrag: &str, session: &RtcSession) -> Result<(), Error> {
        self.put_session(self.keys.rtc(server_ufrag), session).await
    }

    async fn rtc(&self, server_ufrag: &str) -> Result<Option<RtcSession>, Error> {
        if server_ufrag.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        self.get_session(self.keys.rtc(server_ufrag)).await
    }

    async fn remove_rtc(&self, server_ufrag: &str) -> Result<(), Error> {
        self.bounded(
            "session delete",
            self.pool.del::<(), _>(self.keys.rtc(server_ufrag)),
        )
        .await
    }

    async fn mark_down(
        &self,
        id: &OriginId,
        reason: &str,
        duration: Duration,
    ) -> Result<(), Error> {
        self.mark(id, millis(duration), clip_reason(reason)).await
    }

    async fn mark_up(&self, id: &OriginId) -> Result<(), Error> {
        self.mark(id, 0, "").await
    }

    fn last_known_origins(&self) -> Option<Vec<OriginStatus>> {
        self.cache.last_known().map(|s| s.as_ref().clone())
    }

    async fn report_connections(
        &self,
        proxy: &str,
        counts: &[(OriginId, u64)],
        ttl: Duration,
    ) -> Result<(), Error> {
        let counts = check_report(proxy, counts)?;
        let report: serde_json::Map<String, serde_json::Value> = counts
            .into_iter()
            .map(|(id, n)| (id.to_string(), n.into()))
            .collect();
        let args = vec![
            self.keys.prefix().to_owned(),
            proxy.to_owned(),
            serde_json::Value::Object(report).to_string(),
            millis(ttl).to_string(),
        ];
        let _: i64 = self
            .eval("report", &self.scripts.report, self.keys.proxies(), args)
            .await?;
        Ok(())
    }
}

impl Drop for RedisBalancer {
    fn drop(&mut self) {
        // fred's connection tasks outlive the last handle and would keep reconnecting.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (pool, wait) = (self.pool.clone(), self.command_timeout);
            runtime.spawn(async move {
                let _ = tokio::time::timeout(wait, pool.quit()).await;
            });
        }
    }
}

impl std::fmt::Debug for RedisBalancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBalancer")
            .field("prefix", &self.keys.prefix())
            .field("strategy", &self.strategy.get().name())
            .field("config", &self.config)
            .field("connected", &self.pool.is_connected())
            .finish()
    }
}

/// The outcome of a placement: `replaced` when the stream left another origin.
fn placed<T>(left: &Option<T>) -> &'static str {
    if left.is_some() {
        "replaced"
    } else {
        "placed"
    }
}

fn count_error(operation: &'static str) {
    metrics::counter!("proxy_redis_errors_total", "operation" => operation).increment(1);
}

/// Whether an error says Redis could not be reached (rather than that it refused).
fn unreachable(e: &fred::error::Error) -> bool {
    use fred::error::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Backpressure
    )
}

fn unavailable(what: &str, e: &fred::error::Error) -> Error {
    Error::Unavailable(format!("redis {what}: {e}"))
}

/// Milliseconds for Redis, at least 1 (a zero TTL would mean "no expiry" to the scripts)
/// and at most 100 years: Redis refuses a PX that overflows its clock, and Lua reads
/// larger numbers as floats, so an absurd duration means "for as long as can be", not an
/// error (as in lb-memory).
fn millis(d: Duration) -> i64 {
    const MAX_MS: i64 = 100 * 365 * 24 * 3_600_000;
    i64::try_from(d.as_millis())
        .unwrap_or(MAX_MS)
        .clamp(1, MAX_MS)
}
