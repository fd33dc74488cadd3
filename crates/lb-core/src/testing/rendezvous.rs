//! Rendezvous placement (`StrategyKind::Rendezvous`): independent balancers agree, only the
//! streams of a joining or leaving origin move, the load bound sheds in hash order, weights.
//!
//! Each scenario compares the balancer with the strategy computed by hand over the same
//! origins ([`Rendezvous::choose`]): a balancer must hand the strategy exactly the origins
//! that accept new streams, with their stream counts.

use std::sync::Arc;

use super::{key, ok, pick, static_origin, Capability, Harness, Run};
use crate::{
    Balancer, BalancerConfig, Candidate, Origin, OriginId, PickIntent, Rendezvous, Strategy,
    StrategyKind, StreamKey,
};

const PURE: StrategyKind = StrategyKind::Rendezvous {
    load_bound_percent: None,
};

/// Where pure rendezvous puts `k` among `origins` (none holding a stream).
fn expected(k: &StreamKey, origins: &[Origin]) -> OriginId {
    let candidates: Vec<Candidate<'_>> = origins
        .iter()
        .map(|origin| Candidate {
            origin,
            streams: 0,
            connections: 0,
        })
        .collect();
    origins[Rendezvous::new().choose(k, &candidates)].id.clone()
}

async fn with_origins(run: &Run<'_>, kind: StrategyKind, origins: &[Origin]) -> Arc<dyn Balancer> {
    let lb = run.balancer(BalancerConfig::default(), kind.build()).await;
    for o in origins {
        ok(lb.register(o.clone()).await, "register");
    }
    lb
}

fn statics(names: &[&str]) -> Vec<Origin> {
    names.iter().map(|n| static_origin(n)).collect()
}

/// Two balancers that share nothing but see the same origins (registered in different
/// orders) place every stream on the same origin: the one rendezvous hashing names.
pub async fn independent_balancers_agree_under_rendezvous(h: &dyn Harness) {
    let run = Run::start(h, "independent_balancers_agree_under_rendezvous");
    let origins = statics(&["a", "b", "c"]);
    let mut reversed = origins.clone();
    reversed.reverse();
    let one = with_origins(&run, PURE, &origins).await;
    let two = with_origins(&run, PURE, &reversed).await;
    for n in 0..60 {
        let k = key(&format!("agree{n}"));
        let want = expected(&k, &origins);
        assert_eq!(
            pick(&one, &k, PickIntent::Publish).await.id,
            want,
            "the first balancer places {k} where rendezvous hashing says"
        );
        assert_eq!(
            pick(&two, &k, PickIntent::Play).await.id,
            want,
            "a second, independent balancer with the same origins agrees on {k}"
        );
    }
}

/// When an origin joins, only streams that now rank it first move (to it); when one
/// leaves, only its own streams move. Compared across balancers that see {a, b, c},
/// {a, b, c, d} and {a, b}.
pub async fn only_the_streams_of_a_joining_or_leaving_origin_move(h: &dyn Harness) {
    let run = Run::start(h, "only_the_streams_of_a_joining_or_leaving_origin_move");
    let three = with_origins(&run, PURE, &statics(&["a", "b", "c"])).await;
    let four = with_origins(&run, PURE, &statics(&["a", "b", "c", "d"])).await;
    let two = with_origins(&run, PURE, &statics(&["a", "b"])).await;
    let (mut joined, mut left) = (0, 0);
    for n in 0..90 {
        let k = key(&format!("move{n}"));
        let before = pick(&three, &k, PickIntent::Publish).await.id;
        let with_d = pick(&four, &k, PickIntent::Publish).await.id;
        let without_c = pick(&two, &k, PickIntent::Publish).await.id;
        if with_d != before {
            joined += 1;
            assert_eq!(
                with_d.as_str(),
                static_origin("d").id.as_str(),
                "{k} moved from {before} to {with_d}, not to the new origin"
            );
        }
        if without_c != before {
            left += 1;
            assert_eq!(
                before.as_str(),
                static_origin("c").id.as_str(),
                "{k} moved from {before}, which did not leave"
            );
        }
    }
    assert!(
        joined > 0 && joined < 45,
        "a fourth origin takes some streams, not most: {joined} of 90"
    );
    assert!(
        left > 0 && left < 60,
        "the leaving origin had some streams: {left} of 90"
    );
}

/// With the load bound (1.25 × the mean), an origin at its share passes a new stream to
/// the next origin in the stream's hash order: the balancer's picks are exactly those of
/// the strategy fed the counts of the streams placed so far, and no origin ends above
/// the bound.
pub async fn the_load_bound_sheds_to_the_next_origin_in_hash_order(h: &dyn Harness) {
    let run = Run::start(h, "the_load_bound_sheds_to_the_next_origin_in_hash_order");
    if !run.needs(&[Capability::Placements]).await {
        return;
    }
    let bounded = StrategyKind::Rendezvous {
        load_bound_percent: Some(Rendezvous::DEFAULT_LOAD_BOUND_PERCENT),
    };
    let origins = statics(&["a", "b", "c"]);
    let lb = with_origins(&run, bounded, &origins).await;
    let strategy = bounded.build();
    let mut counts = [0usize; 3];
    let mut shed = 0;
    for n in 0..60 {
        let k = key(&format!("bound{n}"));
        let candidates: Vec<Candidate<'_>> = origins
            .iter()
            .zip(counts)
            .map(|(origin, streams)| Candidate {
                origin,
                streams,
                connections: 0,
            })
            .collect();
        let want = strategy.choose(&k, &candidates);
        if origins[want].id != expected(&k, &origins) {
            shed += 1;
        }
        assert_eq!(
            pick(&lb, &k, PickIntent::Publish).await.id,
            origins[want].id,
            "{k} (counts so far {counts:?}) goes to the first origin in its hash order below the bound"
        );
        counts[want] += 1;
    }
    // ceil(1.25 × 60 / 3) = 25.
    assert!(
        counts.iter().all(|&n| n <= 25),
        "no origin above the bound: {counts:?}"
    );
    eprintln!(
        "lb_core::testing: the load bound shed {shed} of 60 streams; final counts {counts:?}"
    );
}

/// Weighted rendezvous: an origin of weight 3 among two of weight 1 ranks first for about
/// 3/5 of the streams, exactly as the strategy computes.
pub async fn rendezvous_follows_weights(h: &dyn Harness) {
    let run = Run::start(h, "rendezvous_follows_weights");
    let mut origins = statics(&["a", "b", "heavy"]);
    origins[2].weight = 3;
    let lb = with_origins(&run, PURE, &origins).await;
    let mut heavy = 0;
    for n in 0..300 {
        let k = key(&format!("w{n}"));
        let got = pick(&lb, &k, PickIntent::Publish).await.id;
        assert_eq!(
            got,
            expected(&k, &origins),
            "{k} goes where weighted rendezvous says"
        );
        if got == origins[2].id {
            heavy += 1;
        }
    }
    assert!(
        (150..=210).contains(&heavy),
        "weight 3 of 5 took {heavy} of 300 streams"
    );
}

/// A harness whose balancers use rendezvous wherever a scenario leaves the choice to the
/// strategy (it asks for `random`); scenarios about a particular strategy keep theirs. Runs
/// the whole suite under rendezvous: `conformance_tests!(UnderRendezvous(MyHarness::default()))`.
pub struct UnderRendezvous<H>(pub H);

#[async_trait::async_trait]
impl<H: Harness> Harness for UnderRendezvous<H> {
    async fn balancer(
        &self,
        config: BalancerConfig,
        strategy: Box<dyn Strategy>,
    ) -> Arc<dyn Balancer> {
        let strategy = if strategy.name() == "random" {
            PURE.build()
        } else {
            strategy
        };
        self.0.balancer(config, strategy).await
    }

    async fn advance(&self, by: std::time::Duration) {
        self.0.advance(by).await;
    }

    fn capabilities(&self) -> super::Capabilities {
        self.0.capabilities()
    }

    fn ttl(&self) -> std::time::Duration {
        self.0.ttl()
    }
}
