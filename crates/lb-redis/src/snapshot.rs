//! The origins' statuses as one script returns them, and a short-lived local copy used to
//! choose the origin of new streams.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fred::prelude::Value;
use lb_core::{clip_reason, is_alive_and_up, Error, Origin, OriginId, OriginStatus};
use serde::Deserialize;

/// An origin's record in Redis (`srs-proxy-server:{id}`). The heartbeat is Redis's `TIME`
/// at registration, so every proxy measures an origin's age on the same clock.
#[derive(Debug, Deserialize)]
pub(crate) struct Record {
    pub(crate) heartbeat_ms: u64,
    pub(crate) origin: Origin,
}

impl Record {
    pub(crate) fn parse(raw: &str) -> Result<Self, Error> {
        serde_json::from_str(raw)
            .map_err(|e| Error::Unavailable(format!("unreadable origin record in Redis: {e}")))
    }
}

/// Reads the status script's reply:
/// `[now_ms, (id, record, draining, streams, down reason or "", connections)*]`.
/// Records this proxy cannot read are skipped (and logged), not fatal: one bad entry must
/// not stop every pick.
pub(crate) fn parse_statuses(
    reply: Vec<Value>,
    origin_ttl: Duration,
) -> Result<Vec<OriginStatus>, Error> {
    let mut fields = reply.into_iter();
    let now_ms = fields
        .next()
        .and_then(|v| v.as_u64())
        .ok_or_else(|| malformed("status"))?;
    let mut statuses = Vec::new();
    loop {
        let Some(id) = fields.next() else { break };
        let (Some(raw), Some(draining), Some(streams), Some(down), Some(connections)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(malformed("status"));
        };
        let id = id.as_string().ok_or_else(|| malformed("status"))?;
        let raw = raw.as_string().ok_or_else(|| malformed("status"))?;
        let record = match Record::parse(&raw) {
            Ok(record) if record.origin.id.as_str() == id => record,
            Ok(_) | Err(_) => {
                tracing::warn!(origin = %id, "skipping an origin record this proxy cannot read");
                continue;
            }
        };
        let since = Duration::from_millis(now_ms.saturating_sub(record.heartbeat_ms));
        // A reason that is no text still holds the origin down: the key exists.
        let down = match down {
            Value::Null => None,
            other => Some(other.as_string().unwrap_or_else(|| "down".to_owned())),
        }
        .filter(|reason| !reason.is_empty())
        .map(|reason| clip_reason(&reason).to_owned());
        statuses.push(OriginStatus {
            alive: is_alive_and_up(record.origin.source, since, origin_ttl, down.is_some()),
            draining: draining.as_u64().unwrap_or(0) != 0,
            since_heartbeat: since,
            streams: streams.as_usize().unwrap_or(0),
            down,
            connections: connections.as_u64().unwrap_or(0),
            origin: record.origin,
        });
    }
    statuses.sort_by(|a, b| a.origin.id.cmp(&b.origin.id));
    Ok(statuses)
}

pub(crate) fn malformed(script: &str) -> Error {
    Error::Unavailable(format!(
        "unexpected reply from Redis to the {script} script"
    ))
}

/// Statuses of every origin, shared while younger than `max_age`.
pub(crate) struct StatusCache {
    max_age: Duration,
    current: Mutex<Option<Snapshot>>,
    /// The last statuses loaded, kept through invalidation and age: what new streams are
    /// placed over while Redis cannot be reached.
    last: Mutex<Option<Arc<Vec<OriginStatus>>>>,
    /// One load at a time: a burst of new streams after expiry costs one round trip.
    loading: tokio::sync::Mutex<()>,
}

struct Snapshot {
    statuses: Arc<Vec<OriginStatus>>,
    loaded: Instant,
}

impl StatusCache {
    pub(crate) fn new(max_age: Duration) -> Self {
        StatusCache {
            max_age,
            current: Mutex::new(None),
            last: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// A snapshot, from the cache unless it is too old or `force`d; the flag says whether
    /// it was loaded during this call (and so is as fresh as it can be).
    pub(crate) async fn get<F, Fut>(
        &self,
        force: bool,
        load: F,
    ) -> Result<(Arc<Vec<OriginStatus>>, bool), Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<OriginStatus>, Error>>,
    {
        let asked = Instant::now();
        if !force {
            if let Some(statuses) = self.younger_than(self.max_age) {
                return Ok((statuses, false));
            }
        }
        let _one_at_a_time = self.loading.lock().await;
        // A load that finished while this call waited is as fresh as one of its own.
        if let Some(statuses) = self.loaded_since(asked) {
            return Ok((statuses, true));
        }
        let statuses = load().await?;
        Ok((self.store(statuses), true))
    }

    pub(crate) fn store(&self, statuses: Vec<OriginStatus>) -> Arc<Vec<OriginStatus>> {
        let statuses = Arc::new(statuses);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(statuses.clone());
        *self.lock() = Some(Snapshot {
            statuses: statuses.clone(),
            loaded: Instant::now(),
        });
        statuses
    }

    /// The last statuses loaded, however old.
    pub(crate) fn last_known(&self) -> Option<Arc<Vec<OriginStatus>>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// This proxy changed an origin: its next choice must see the change.
    pub(crate) fn invalidate(&self) {
        *self.lock() = None;
    }

    /// Counts a placement this proxy just made (`to`: a firm one, `from`: the firm one it
    /// replaced), so that least-streams does not pile a burst of new streams onto one
    /// origin while the snapshot ages.
    pub(crate) fn note_move(&self, to: Option<&OriginId>, from: Option<&OriginId>) {
        let mut current = self.lock();
        let Some(snapshot) = current.as_mut() else {
            return;
        };
        for status in Arc::make_mut(&mut snapshot.statuses) {
            if Some(&status.origin.id) == to {
                status.streams += 1;
            } else if Some(&status.origin.id) == from {
                status.streams = status.streams.saturating_sub(1);
            }
        }
    }

    fn younger_than(&self, age: Duration) -> Option<Arc<Vec<OriginStatus>>> {
        let current = self.lock();
        current
            .as_ref()
            .filter(|s| s.loaded.elapsed() < age)
            .map(|s| s.statuses.clone())
    }

    fn loaded_since(&self, instant: Instant) -> Option<Arc<Vec<OriginStatus>>> {
        let current = self.lock();
        current
            .as_ref()
            .filter(|s| s.loaded >= instant)
            .map(|s| s.statuses.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Option<Snapshot>> {
        // The guarded data is a plain cache: a panic elsewhere cannot leave it half-written.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_core::Registration;

    fn record(server: &str, heartbeat_ms: u64) -> (String, String) {
        let body = format!(
            r#"{{"ip":"127.0.0.1","server":"{server}","service":"s","pid":"1","rtmp":["1935"]}}"#
        );
        let origin = Registration::from_json(body.as_bytes())
            .unwrap()
            .into_origin()
            .unwrap();
        let raw = format!(
            r#"{{"heartbeat_ms":{heartbeat_ms},"origin":{}}}"#,
            serde_json::to_string(&origin).unwrap()
        );
        (origin.id.to_string(), raw)
    }

    #[test]
    fn statuses_from_a_script_reply() {
        let (b, b_raw) = record("b", 10_000);
        let (a, a_raw) = record("a", 1_000);
        let reply = vec![
            Value::Integer(12_000),
            Value::from(b.as_str()),
            Value::from(b_raw.as_str()),
            Value::Integer(1),
            Value::Integer(3),
            Value::from(""),
            Value::Integer(7),
            Value::from("junk"),
            Value::from("{not json"),
            Value::Integer(0),
            Value::Integer(0),
            Value::from(""),
            Value::Integer(0),
            Value::from(a.as_str()),
            Value::from(a_raw.as_str()),
            Value::Integer(0),
            Value::Integer(0),
            Value::from("probe failed"),
            Value::from("not a number"),
        ];
        let statuses = parse_statuses(reply, Duration::from_secs(5)).unwrap();
        assert_eq!(statuses.len(), 2, "the unreadable record is skipped");
        assert_eq!(
            (statuses[0].origin.server.as_str(), statuses[0].alive),
            ("a", false)
        );
        assert_eq!(statuses[0].since_heartbeat, Duration::from_secs(11));
        assert_eq!(
            (statuses[0].down.as_deref(), statuses[0].connections),
            (Some("probe failed"), 0),
            "an unreadable count is zero"
        );
        assert_eq!(
            (statuses[1].alive, statuses[1].draining, statuses[1].streams),
            (true, true, 3)
        );
        assert_eq!(
            (statuses[1].down.as_deref(), statuses[1].connections),
            (None, 7)
        );
        assert!(parse_statuses(vec![], Duration::from_secs(5)).is_err());
        assert!(parse_statuses(
            vec![Value::Integer(1), Value::from(a.as_str())],
            Duration::from_secs(5)
        )
        .is_err());
        assert!(
            parse_statuses(
                vec![
                    Value::Integer(1),
                    Value::from(a.as_str()),
                    Value::from(a_raw.as_str()),
                    Value::Integer(0),
                    Value::Integer(0),
                ],
                Duration::from_secs(5)
            )
            .is_err(),
            "a reply in the old four-field layout is refused, not misread"
        );
    }

    #[tokio::test]
    async fn cache_serves_until_old_then_reloads_once() {
        let cache = StatusCache::new(Duration::from_secs(60));
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Vec::new())
        };
        assert!(cache.get(false, load).await.unwrap().1, "first call loads");
        assert!(
            !cache.get(false, load).await.unwrap().1,
            "second call is served from the cache"
        );
        assert!(cache.get(true, load).await.unwrap().1, "forced");
        cache.invalidate();
        assert!(cache.get(false, load).await.unwrap().1, "invalidated");
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 3);
        let never = StatusCache::new(Duration::ZERO);
        assert!(never.get(false, load).await.unwrap().1);
        assert!(
            never.get(false, load).await.unwrap().1,
            "a zero max age disables the cache"
        );
    }
}
