//! Firm and tentative placements: plays of streams that do not exist reserve nothing and
//! leave nothing lasting; `release`; `touch`, which renews placements and puts back lost
//! ones.

use std::sync::Arc;

use super::{expect, key, live, ok, origin, pick, status, streams, Capability, Harness, Run};
use crate::{Balancer, BalancerConfig, OriginId, PickIntent, Placement, StrategyKind, StreamKey};

/// Registers `a` and `b`; a play of `k` lands on one (tentatively), which then drains, so
/// that a new placement of `k` can only go to the other: a play returning the drained
/// origin proves the placement was still there. Returns (drained, other).
async fn placed_then_drained(lb: &Arc<dyn Balancer>, k: &StreamKey) -> (OriginId, OriginId) {
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    ok(lb.register(a.clone()).await, "register a");
    ok(lb.register(b.clone()).await, "register b");
    let first = pick(lb, k, PickIntent::Play).await.id;
    let other = if first == a.id { b.id } else { a.id };
    ok(lb.set_draining(&first, true).await, "set_draining");
    (first, other)
}

fn with_tentative_ttl(h: &dyn Harness) -> BalancerConfig {
    BalancerConfig {
        tentative_ttl: h.ttl(),
        ..BalancerConfig::default()
    }
}

/// Plays of streams nobody publishes place them tentatively: they count nowhere (so
/// `max_streams` cannot fill up with them) and are not listed.
pub async fn plays_of_unknown_streams_take_no_capacity(h: &dyn Harness) {
    let run = Run::start(h, "plays_of_unknown_streams_take_no_capacity");
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let lb = run
        .balancer(
            BalancerConfig::default(),
            StrategyKind::LeastStreams.build(),
        )
        .await;
    for server in ["a", "b"] {
        let mut o = origin(server, "1");
        o.max_streams = Some(5);
        ok(lb.register(o).await, "register");
    }
    for n in 0..20 {
        let k = key(&format!("random-{n}"));
        pick(&lb, &k, PickIntent::Play).await;
    }
    assert_eq!(
        streams(&lb).await,
        expect(&[("a", 0), ("b", 0)]),
        "20 plays of unknown streams reserve nothing"
    );
    assert_eq!(
        ok(lb.placements().await, "placements"),
        [],
        "tentative placements are not listed"
    );
    pick(&lb, &key("real"), PickIntent::Publish).await;
    let total: usize = streams(&lb).await.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 1, "a real stream still finds room, and counts");
}

/// A tentative placement is forgotten after `tentative_ttl` without a play; a play
/// renews it.
pub async fn a_tentative_placement_expires_after_its_ttl(h: &dyn Harness) {
    let run = Run::start(h, "a_tentative_placement_expires_after_its_ttl");
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let ttl = h.ttl();
    let lb = run
        .balancer(with_tentative_ttl(h), StrategyKind::Random.build())
        .await;
    let k = key("nobody");
    let (first, other) = placed_then_drained(&lb, &k).await;
    h.advance(ttl * 6 / 10).await;
    assert_eq!(
        pick(&lb, &k, PickIntent::Play).await.id,
        first,
        "within tentative_ttl: kept (and renewed)"
    );
    h.advance(ttl * 6 / 10).await;
    assert_eq!(
        pick(&lb, &k, PickIntent::Play).await.id,
        first,
        "renewed by the last play: kept past tentative_ttl since it was made"
    );
    h.advance(ttl * 12 / 10).await;
    assert_eq!(
        pick(&lb, &k, PickIntent::Play).await.id,
        other,
        "unused for tentative_ttl: forgotten, placed anew"
    );
}

/// `release` removes a placement only if it is tentative and names the given origin.
pub async fn release_forgets_only_a_tentative_placement_on_that_origin(h: &dyn Harness) {
    let run = Run::start(
        h,
        "release_forgets_only_a_tentative_placement_on_that_origin",
    );
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    let k = key("nobody");
    let (first, other) = placed_then_drained(&lb, &k).await;
    ok(lb.release(&k, &other).await, "release");
    assert_eq!(
        pick(&lb, &k, PickIntent::Play).await.id,
        first,
        "a release naming another origin changes nothing"
    );
    ok(lb.release(&k, &first).await, "release");
    assert_eq!(
        pick(&lb, &k, PickIntent::Play).await.id,
        other,
        "released at once: placed anew"
    );

    let firm = key("published");
    let on = pick(&lb, &firm, PickIntent::Publish).await.id;
    assert_eq!(on, other, "the first origin drains");
    ok(lb.release(&firm, &on).await, "release");
    assert_eq!(
        ok(lb.placements().await, "placements"),
        [Placement {
            key: firm.clone(),
            origin: on.clone()
        }],
        "a firm placement is never released"
    );
    assert_eq!(status(&lb, &on).await.streams, 1, "and still counts");
}

/// A publish that finds a tentative placement makes it firm where it is: counted, listed,
/// not released, kept past `tentative_ttl`.
pub async fn a_publish_makes_a_tentative_placement_firm(h: &dyn Harness) {
    let run = Run::start(h, "a_publish_makes_a_tentative_placement_firm");
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let ttl = h.ttl();
    let lb = run
        .balancer(with_tentative_ttl(h), StrategyKind::Random.build())
        .await;
    let k = key("early-player");
    let (on, _) = placed_then_drained(&lb, &k).await;
    ok(lb.set_draining(&on, false).await, "set_draining false");
    assert_eq!(streams(&lb).await, expect(&[("a", 0), ("b", 0)]));
    assert_eq!(
        pick(&lb, &k, PickIntent::Publish).await.id,
        on,
        "the publish joins the players' origin"
    );
    assert_eq!(status(&lb, &on).await.streams, 1, "firm: it counts");
    assert_eq!(
        ok(lb.placements().await, "placements").len(),
        1,
        "and is listed"
    );
    ok(lb.release(&k, &on).await, "release");
    // The origin accepted the publisher: its live session confirms the placement.
    ok(lb.touch(&[live(&k, &on, true)]).await, "touch");
    ok(lb.set_draining(&on, true).await, "set_draining");
    h.advance(ttl * 12 / 10).await;
    assert_eq!(
        ok(lb.placements().await, "placements").len(),
        1,
        "firm and confirmed: neither released nor expired with tentative_ttl"
    );
    assert_eq!(pick(&lb, &k, PickIntent::Play).await.id, on);
}

/// A publisher's placement that no live publisher confirms (the origin refused it) lasts
/// only `tentative_ttl`: refused publishers cannot hold capacity for `placement_ttl`.
pub async fn an_unconfirmed_publishers_placement_lasts_the_tentative_ttl(h: &dyn Harness) {
    let run = Run::start(
        h,
        "an_unconfirmed_publishers_placement_lasts_the_tentative_ttl",
    );
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let ttl = h.ttl();
    let lb = run
        .balancer(with_tentative_ttl(h), StrategyKind::Random.build())
        .await;
    let a = origin("a", "1");
    ok(lb.register(a.clone()).await, "register");
    let (refused, accepted) = (key("refused"), key("accepted"));
    pick(&lb, &refused, PickIntent::Publish).await;
    pick(&lb, &accepted, PickIntent::Publish).await;
    assert_eq!(
        status(&lb, &a.id).await.streams,
        2,
        "a publisher's pick counts at once"
    );
    ok(lb.touch(&[live(&accepted, &a.id, true)]).await, "touch");
    h.advance(ttl * 12 / 10).await;
    let listed: Vec<StreamKey> = ok(lb.placements().await, "placements")
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(
        listed,
        vec![accepted],
        "the unconfirmed placement expired with tentative_ttl; the confirmed one stays"
    );
}

/// `touch` creates a missing placement on the origin the live sessions use (firm for a
/// publisher, tentative for players alone), but leaves a placement on another origin alone.
pub async fn touch_recreates_a_missing_placement_but_never_overrides_one(h: &dyn Harness) {
    let run = Run::start(
        h,
        "touch_recreates_a_missing_placement_but_never_overrides_one",
    );
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    // A balancer that lost its state knows the origins again, but not the streams.
    let lb = run
        .balancer(BalancerConfig::default(), StrategyKind::Random.build())
        .await;
    let (a, b) = (origin("a", "1"), origin("b", "1"));
    ok(lb.register(a.clone()).await, "register a");
    ok(lb.register(b.clone()).await, "register b");
    ok(lb.set_draining(&a.id, true).await, "set_draining");
    let k = key("live");
    ok(lb.touch(&[live(&k, &a.id, true)]).await, "touch");
    assert_eq!(
        pick(&lb, &k, PickIntent::Play).await.id,
        a.id,
        "players follow the live publisher, not a new choice"
    );
    assert_eq!(
        streams(&lb).await,
        expect(&[("a", 1), ("b", 0)]),
        "recreated from a publisher: firm"
    );

    let watched = key("watched");
    ok(lb.touch(&[live(&watched, &a.id, false)]).await, "touch");
    assert_eq!(pick(&lb, &watched, PickIntent::Play).await.id, a.id);
    assert_eq!(
        streams(&lb).await,
        expect(&[("a", 1), ("b", 0)]),
        "recreated from a player alone: tentative"
    );

    ok(lb.set_draining(&a.id, false).await, "set_draining false");
    let elsewhere = key("elsewhere");
    let placed = pick(&lb, &elsewhere, PickIntent::Publish).await.id;
    let stale = if placed == a.id { &b.id } else { &a.id };
    let before = streams(&lb).await;
    ok(lb.touch(&[live(&elsewhere, stale, true)]).await, "touch");
    assert_eq!(
        pick(&lb, &elsewhere, PickIntent::Play).await.id,
        placed,
        "a placement on another origin is left alone"
    );
    assert_eq!(streams(&lb).await, before, "and counted where it was");
}

/// A touch from a live player renews a tentative placement; one from a live publisher
/// makes it firm.
pub async fn a_live_player_keeps_a_tentative_placement_and_a_live_publisher_firms_it(
    h: &dyn Harness,
) {
    let run = Run::start(
        h,
        "a_live_player_keeps_a_tentative_placement_and_a_live_publisher_firms_it",
    );
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let ttl = h.ttl();
    let lb = run
        .balancer(with_tentative_ttl(h), StrategyKind::Random.build())
        .await;
    let k = key("watched");
    let (first, _) = placed_then_drained(&lb, &k).await;
    for _ in 0..3 {
        h.advance(ttl / 2).await;
        ok(lb.touch(&[live(&k, &first, false)]).await, "touch");
    }
    assert_eq!(
        ok(lb.placements().await, "placements"),
        [],
        "touched by a player only: still tentative"
    );
    assert_eq!(
        pick(&lb, &k, PickIntent::Play).await.id,
        first,
        "touched by a live player: kept past tentative_ttl"
    );
    ok(lb.touch(&[live(&k, &first, true)]).await, "touch");
    assert_eq!(
        status(&lb, &first).await.streams,
        1,
        "touched by a live publisher: firm"
    );
    h.advance(ttl * 12 / 10).await;
    assert_eq!(
        ok(lb.placements().await, "placements").len(),
        1,
        "firm: listed, and kept past tentative_ttl"
    );
    assert_eq!(pick(&lb, &k, PickIntent::Play).await.id, first);
}
