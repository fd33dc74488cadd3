//! HLS and WebRTC sessions.

use super::{key, ok, origin, Harness, Run};
use crate::{BalancerConfig, HlsSession, RtcSession, StrategyKind};

/// HLS tokens and WebRTC sessions are found again until unused for `session_ttl`; each
/// lookup renews them; a removed WebRTC session is gone at once; unknown and absurdly long
/// tokens are simply not found.
pub async fn sessions_expire_when_idle_and_renew_when_used(h: &dyn Harness) {
    let run = Run::start(h, "sessions_expire_when_idle_and_renew_when_used");
    let ttl = h.ttl();
    let config = BalancerConfig {
        session_ttl: ttl,
        ..BalancerConfig::default()
    };
    let lb = run.balancer(config, StrategyKind::Random.build()).await;
    let a = origin("a", "1");
    ok(lb.register(a.clone()).await, "register");
    let hls = HlsSession {
        key: key("cam"),
        origin: a.id.clone(),
    };
    ok(lb.put_hls("tok", &hls).await, "put_hls");
    let rtc = RtcSession {
        key: key("cam"),
        origin: a.id.clone(),
        server_ufrag: "srv".into(),
        client_ufrag: "cli".into(),
        server_pwd: "pwd".into(),
        media: Some("127.0.0.1:8000".into()),
        publishing: Some(false),
        client_pwd: Some("client-pwd".into()),
        resource: Some("/rtc/v1/whep/?action=delete&session=s1".into()),
        resource_secret: Some("0f".repeat(32)),
    };
    ok(lb.put_rtc("srv", &rtc).await, "put_rtc");
    assert_eq!(
        ok(lb.rtc("srv").await, "rtc"),
        Some(rtc.clone()),
        "a stored WebRTC session is found by its ufrag"
    );
    h.advance(ttl * 6 / 10).await;
    assert_eq!(
        ok(lb.hls("tok").await, "hls"),
        Some(hls.clone()),
        "used within session_ttl: found (and renewed)"
    );
    h.advance(ttl * 6 / 10).await;
    assert_eq!(
        ok(lb.hls("tok").await, "hls"),
        Some(hls),
        "renewed by its last use: found past session_ttl since it was stored"
    );
    assert_eq!(
        ok(lb.rtc("srv").await, "rtc"),
        None,
        "unused for longer than session_ttl: expired"
    );
    ok(lb.put_rtc("srv", &rtc).await, "put_rtc");
    assert_eq!(ok(lb.rtc("srv").await, "rtc"), Some(rtc));
    ok(lb.remove_rtc("srv").await, "remove_rtc");
    assert_eq!(
        ok(lb.rtc("srv").await, "rtc"),
        None,
        "removed: gone at once"
    );
    assert_eq!(ok(lb.hls("unknown").await, "hls"), None);
    assert_eq!(
        ok(
            lb.hls(&"x".repeat(10_000)).await,
            "hls of a 10 000-byte token"
        ),
        None
    );
    assert_eq!(
        ok(
            lb.rtc(&"x".repeat(10_000)).await,
            "rtc of a 10 000-byte ufrag"
        ),
        None
    );
}
