use super::*;
use crate::{OriginId, OriginSource};

fn origin(id: &str, weight: u32) -> Origin {
    Origin {
        id: OriginId::new(id),
        server: id.into(),
        service: "s".into(),
        pid: "1".into(),
        device_id: None,
        ip: "127.0.0.1".into(),
        rtmp: vec![],
        http: vec![],
        api: vec![],
        srt: vec![],
        rtc: vec![],
        weight,
        max_streams: None,
        max_connections: None,
        load: None,
        source: OriginSource::Static,
    }
}

fn cand(origin: &Origin, streams: usize, connections: u64) -> Candidate<'_> {
    Candidate {
        origin,
        streams,
        connections,
    }
}

fn loaded(id: &str, cpu: Option<u32>) -> Origin {
    let mut o = origin(id, 1);
    o.load = cpu.map(|cpu| crate::OriginLoad {
        cpu_percent: Some(cpu),
        ..Default::default()
    });
    o
}

fn key() -> StreamKey {
    StreamKey::new(None, "live", "s").unwrap()
}

#[test]
fn round_robin_cycles_in_id_order() {
    let (a, b, c) = (origin("a", 1), origin("b", 1), origin("c", 1));
    let cands = [cand(&c, 0, 0), cand(&a, 0, 0), cand(&b, 0, 0)];
    let rr = RoundRobin::default();
    let picked: Vec<&str> = (0..6)
        .map(|_| cands[rr.choose(&key(), &cands)].origin.id.as_str())
        .collect();
    assert_eq!(picked, ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn least_streams_respects_weight() {
    let (a, b) = (origin("a", 1), origin("b", 4));
    // a: 2 streams at weight 1 = load 2; b: 5 streams at weight 4 = load 1.25.
    let cands = [cand(&a, 2, 0), cand(&b, 5, 0)];
    for _ in 0..20 {
        assert_eq!(LeastStreams.choose(&key(), &cands), 1);
    }
}

#[test]
fn weighted_follows_weights_and_skips_zero() {
    let (a, b, z) = (origin("a", 1), origin("b", 3), origin("z", 0));
    let cands = [cand(&a, 0, 0), cand(&b, 0, 0), cand(&z, 0, 0)];
    let mut counts = [0usize; 3];
    for _ in 0..4000 {
        counts[Weighted.choose(&key(), &cands)] += 1;
    }
    assert_eq!(counts[2], 0);
    assert!(counts[1] > counts[0] * 2, "{counts:?}");
}

#[test]
fn random_reaches_every_candidate() {
    let (a, b) = (origin("a", 1), origin("b", 1));
    let cands = [cand(&a, 0, 0), cand(&b, 0, 0)];
    let mut seen = [false; 2];
    for _ in 0..200 {
        seen[Random.choose(&key(), &cands)] = true;
    }
    assert_eq!(seen, [true, true]);
    assert_eq!(
        "least-streams".parse::<StrategyKind>(),
        Ok(StrategyKind::LeastStreams)
    );
    assert!("best".parse::<StrategyKind>().is_err());
}

#[test]
fn least_streams_breaks_ties_by_connections() {
    let (a, b, c) = (origin("a", 1), origin("b", 1), origin("c", 1));
    let cands = [cand(&a, 3, 50), cand(&b, 3, 10), cand(&c, 4, 0)];
    for _ in 0..20 {
        assert_eq!(LeastStreams.choose(&key(), &cands), 1);
    }
}

#[test]
fn least_load_prefers_the_lowest_cpu_band() {
    let (hot, cool) = (loaded("hot", Some(85)), loaded("cool", Some(20)));
    // The cool origin wins although it holds more streams.
    let cands = [cand(&hot, 0, 0), cand(&cool, 10, 100)];
    for _ in 0..20 {
        assert_eq!(LeastLoad.choose(&key(), &cands), 1);
    }
    // Within one band, streams per weight decide, then connections.
    let (a, b, c) = (
        loaded("a", Some(31)),
        loaded("b", Some(38)),
        loaded("c", Some(33)),
    );
    let cands = [cand(&a, 5, 0), cand(&b, 2, 9), cand(&c, 2, 3)];
    for _ in 0..20 {
        assert_eq!(LeastLoad.choose(&key(), &cands), 2);
    }
}

#[test]
fn least_load_ranks_a_silent_origin_as_the_average() {
    let (low, high, silent) = (
        loaded("low", Some(10)),
        loaded("high", Some(90)),
        loaded("silent", None),
    );
    // Average 50: the silent origin ranks after `low`, before `high`.
    let cands = [cand(&high, 0, 0), cand(&silent, 0, 0), cand(&low, 9, 0)];
    assert_eq!(LeastLoad.choose(&key(), &cands), 2);
    // The average is of the candidates: with `high` the only one reporting, the silent
    // one ranks as 90 too, and streams decide.
    let cands = [cand(&high, 0, 0), cand(&silent, 5, 0)];
    assert_eq!(LeastLoad.choose(&key(), &cands), 0);
    // Nobody reports: least-streams, then connections.
    let (x, y) = (loaded("x", None), loaded("y", None));
    let cands = [cand(&x, 2, 0), cand(&y, 1, 7)];
    assert_eq!(LeastLoad.choose(&key(), &cands), 1);
    let mut seen = [false; 2];
    let cands = [cand(&x, 1, 1), cand(&y, 1, 1)];
    for _ in 0..200 {
        seen[LeastLoad.choose(&key(), &cands)] = true;
    }
    assert_eq!(seen, [true, true], "full ties are broken at random");
    assert_eq!(
        "least-load".parse::<StrategyKind>(),
        Ok(StrategyKind::LeastLoad)
    );
    assert_eq!(StrategyKind::LeastLoad.build().name(), "least-load");
}

fn keys(n: usize) -> Vec<StreamKey> {
    (0..n)
        .map(|i| StreamKey::new(None, "live", &format!("stream-{i}")).unwrap())
        .collect()
}

fn origins(n: usize) -> Vec<Origin> {
    (0..n).map(|i| origin(&format!("origin-{i}"), 1)).collect()
}

fn fresh(origins: &[Origin]) -> Vec<Candidate<'_>> {
    origins.iter().map(|o| cand(o, 0, 0)).collect()
}

/// Places `keys` one after the other, counting each placement, as a balancer does.
fn place_all(strategy: &dyn Strategy, keys: &[StreamKey], origins: &[Origin]) -> Vec<usize> {
    let mut counts = vec![0usize; origins.len()];
    for key in keys {
        let cands: Vec<Candidate<'_>> = origins
            .iter()
            .zip(&counts)
            .map(|(o, &n)| cand(o, n, 0))
            .collect();
        counts[strategy.choose(key, &cands)] += 1;
    }
    counts
}

#[test]
fn rendezvous_is_a_function_of_the_stream_and_the_origins() {
    let os = origins(5);
    let mut shuffled: Vec<Origin> = os.clone();
    shuffled.reverse();
    for key in keys(200) {
        let a = &os[Rendezvous::new().choose(&key, &fresh(&os))];
        let b = &shuffled[Rendezvous::new().choose(&key, &fresh(&shuffled))];
        assert_eq!(a.id, b.id, "{key}: the candidates' order must not matter");
        // Load does not matter without a bound.
        let loaded: Vec<Candidate<'_>> = os.iter().map(|o| cand(o, 1000, 9)).collect();
        assert_eq!(os[Rendezvous::new().choose(&key, &loaded)].id, a.id);
    }
    // The hash is fixed: a change here breaks fleets of mixed versions.
    let key = StreamKey::new(None, "live", "livestream").unwrap();
    assert_eq!(
        Rendezvous::hash(&key, &OriginId::new("origin-1")),
        Rendezvous::hash(&key, &OriginId::new("origin-1"))
    );
    assert_ne!(
        Rendezvous::hash(&key, &OriginId::new("origin-1")),
        Rendezvous::hash(&key, &OriginId::new("origin-2"))
    );
}

#[test]
fn rendezvous_strategy_names_parse() {
    assert_eq!(
        "rendezvous".parse::<StrategyKind>(),
        Ok(StrategyKind::Rendezvous {
            load_bound_percent: None
        })
    );
    assert_eq!(
        "rendezvous-bounded".parse::<StrategyKind>(),
        Ok(StrategyKind::Rendezvous {
            load_bound_percent: Some(125)
        })
    );
    assert_eq!(
        "rendezvous:1.5".parse::<StrategyKind>(),
        Ok(StrategyKind::Rendezvous {
            load_bound_percent: Some(150)
        })
    );
    for bad in [
        "rendezvous:1",
        "rendezvous:x",
        "rendezvous:11",
        "rendezvous:",
    ] {
        assert!(bad.parse::<StrategyKind>().is_err(), "{bad}");
    }
    assert_eq!(
        "rendezvous:1.25"
            .parse::<StrategyKind>()
            .unwrap()
            .build()
            .name(),
        "rendezvous-bounded"
    );
}

#[test]
fn rendezvous_follows_weights() {
    let (a, b, c) = (origin("a", 1), origin("b", 1), origin("c", 2));
    let os = [a, b, c];
    let counts = place_all(&Rendezvous::new(), &keys(10_000), &os);
    let heavy = counts[2] as f64 / 10_000.0;
    assert!(
        (0.46..0.54).contains(&heavy),
        "weight 2 of 4 got {heavy}: {counts:?}"
    );
    // Weight 0: only when nothing else is left.
    let (x, z) = (origin("x", 1), origin("z", 0));
    for key in keys(300) {
        let os = [x.clone(), z.clone()];
        assert_eq!(Rendezvous::new().choose(&key, &fresh(&os)), 0);
    }
}

#[test]
fn the_load_bound_sheds_to_the_next_origin_in_hash_order() {
    let os = origins(3);
    let key = StreamKey::new(None, "live", "hot").unwrap();
    let order = Rendezvous::order(&key, &fresh(&os));
    // The first in order holds 10 of 12 streams: over 1.25 × 13/3 (capacity 6).
    let mut loads = [0usize; 3];
    loads[order[0]] = 10;
    loads[order[1]] = 1;
    loads[order[2]] = 1;
    let cands: Vec<Candidate<'_>> = os.iter().zip(loads).map(|(o, n)| cand(o, n, 0)).collect();
    assert_eq!(Rendezvous::bounded(125).choose(&key, &cands), order[1]);
    assert_eq!(Rendezvous::new().choose(&key, &cands), order[0]);
    // Deterministic: the same inputs, the same answer.
    for _ in 0..10 {
        assert_eq!(Rendezvous::bounded(125).choose(&key, &cands), order[1]);
    }
    // Under the bound, the first in order keeps it.
    loads = [2, 2, 2];
    let cands: Vec<Candidate<'_>> = os.iter().zip(loads).map(|(o, n)| cand(o, n, 0)).collect();
    assert_eq!(Rendezvous::bounded(125).choose(&key, &cands), order[0]);
}

/// The measurement of the issue: movement when a fourth origin joins, against a modulo
/// hash, and the spread of 10,000 streams with and without the load bound.
#[test]
fn measurement_movement_and_spread_of_ten_thousand_streams() {
    const N: usize = 10_000;
    let streams = keys(N);
    let (three, four) = (origins(3), origins(4));
    let rdv = Rendezvous::new();
    let mut moved = 0;
    let mut moved_elsewhere = 0;
    let mut moved_modulo = 0;
    for key in &streams {
        let before = &three[rdv.choose(key, &fresh(&three))].id;
        let after = &four[rdv.choose(key, &fresh(&four))].id;
        if before != after {
            moved += 1;
            if after.as_str() != "origin-3" {
                moved_elsewhere += 1;
            }
        }
        let h = Rendezvous::hash(key, &OriginId::new(""));
        if h % 3 != h % 4 {
            moved_modulo += 1;
        }
    }
    let share = moved as f64 / N as f64;
    let share_modulo = moved_modulo as f64 / N as f64;
    assert_eq!(
        moved_elsewhere, 0,
        "only streams that go to the new origin move"
    );
    assert!((0.22..0.28).contains(&share), "rendezvous moved {share}");
    assert!(share_modulo > 0.70, "modulo moved {share_modulo}");

    // Spread over 200 origins (mean 50, where chance alone leaves some origins 40 %
    // above the mean): max and min per origin over the mean.
    let spread_over = origins(200);
    let spread = |counts: &[usize]| {
        let mean = N as f64 / counts.len() as f64;
        let max = *counts.iter().max().unwrap() as f64 / mean;
        let min = *counts.iter().min().unwrap() as f64 / mean;
        (max, min)
    };
    let free = spread(&place_all(&rdv, &streams, &spread_over));
    let bounded_counts = place_all(&Rendezvous::bounded(125), &streams, &spread_over);
    let bounded = spread(&bounded_counts);
    // Capacity after the last stream: ceil(1.25 × 10,000 / 200) = 63.
    assert!(
        bounded_counts.iter().all(|&n| n <= 63),
        "{bounded_counts:?}"
    );
    assert!(bounded.0 <= 1.26);
    assert!(
        free.0 > 1.26,
        "without the bound some origin is above it: {free:?}"
    );
    println!(
        "MEASUREMENT: a 4th origin joining moves {:.1}% of {N} streams with rendezvous, \
         {:.1}% with hash mod n; over 200 origins (mean {}), max/mean {:.3} min/mean {:.3} \
         without bound, max/mean {:.3} min/mean {:.3} with the 1.25 bound",
        share * 100.0,
        share_modulo * 100.0,
        N / 200,
        free.0,
        free.1,
        bounded.0,
        bounded.1
    );
}
