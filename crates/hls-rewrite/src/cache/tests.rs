use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn cache_control_directives() {
    let cc = CacheControl::parse("public, max-age=6, S-MAXAGE=\"2\"");
    assert_eq!(cc.max_age, Some(S(6)));
    assert_eq!(cc.s_maxage, Some(S(2)));
    assert_eq!(cc.limit(), Some(S(2)));
    assert!(cc.storable());
    assert!(!CacheControl::parse("no-store").storable());
    assert!(!CacheControl::parse("max-age=5, private").storable());
    assert!(!CacheControl::parse("no-cache").storable());
    // Malformed ages are "stale at once"; huge ones saturate instead of overflowing.
    assert_eq!(CacheControl::parse("max-age=soon").max_age, Some(S(0)));
    assert_eq!(
        CacheControl::parse("max-age=99999999999999999999999").max_age,
        Some(MAX_AGE_CAP)
    );
    // The first max-age wins (RFC 9111 asks to treat duplicates as invalid; the
    // earliest is at least one the origin wrote).
    assert_eq!(
        CacheControl::parse("max-age=1, max-age=100").max_age,
        Some(S(1))
    );
    let long = format!("max-age=60, {}", "x".repeat(MAX_CACHE_CONTROL_LEN));
    assert!(!CacheControl::parse(&long).storable());
    assert_eq!(CacheControl::parse(""), CacheControl::default());
}

#[test]
fn playlist_timing_is_read_from_its_tags() {
    let live = PlaylistTiming::of(b"#EXTM3U\r\n#EXT-X-TARGETDURATION:6\r\n#EXTINF:6,\r\na.ts\r\n");
    assert_eq!(live.target_duration, Some(S(6)));
    assert_eq!(live.part_target, None);
    assert!(!live.ended);
    let ll = PlaylistTiming::of(
        b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-ENDLIST\n",
    );
    assert_eq!(ll.part_target, Some(MS(500)));
    assert!(ll.ended);
    // Garbage values are ignored rather than trusted; absurd ones are capped at a day.
    for bad in ["-1", "NaN", "inf", "", "0"] {
        let t = PlaylistTiming::of(format!("#EXT-X-TARGETDURATION:{bad}\n").as_bytes());
        assert_eq!(t.target_duration, None, "{bad}");
    }
    let huge = PlaylistTiming::of(b"#EXT-X-TARGETDURATION:1e300\n");
    assert_eq!(huge.target_duration, Some(S(86_400)));
    assert_eq!(
        PlaylistTiming::of(&[0xff, 0xfe, b'\n']),
        PlaylistTiming::default()
    );
}

#[test]
fn live_playlists_are_kept_a_fraction_of_their_target() {
    let p = Policy::default();
    let none = CacheControl::default();
    let live = PlaylistTiming {
        target_duration: Some(S(6)),
        ..PlaylistTiming::default()
    };
    assert_eq!(p.freshness(Resource::Playlist(live), &none), Some(S(3)));
    let ll = PlaylistTiming {
        part_target: Some(MS(400)),
        ..live
    };
    assert_eq!(p.freshness(Resource::Playlist(ll), &none), Some(MS(200)));
    // A blocking reload's answer holds its part for good: kept a target duration.
    assert_eq!(
        p.freshness(Resource::BlockingPlaylist(ll), &none),
        Some(S(6))
    );
    let master = PlaylistTiming::default();
    assert_eq!(
        p.freshness(Resource::Playlist(master), &none),
        Some(p.master_ttl)
    );
    let ended = PlaylistTiming {
        ended: true,
        ..live
    };
    assert_eq!(
        p.freshness(Resource::Playlist(ended), &none),
        Some(p.media_ttl)
    );
    assert_eq!(p.freshness(Resource::Media, &none), Some(p.media_ttl));
}

#[test]
fn the_origin_bounds_or_forbids_caching() {
    let p = Policy::default();
    let live = Resource::Playlist(PlaylistTiming {
        target_duration: Some(S(10)),
        ..PlaylistTiming::default()
    });
    let cc = CacheControl::parse("max-age=1");
    assert_eq!(p.freshness(live, &cc), Some(S(1)));
    assert_eq!(p.freshness(Resource::Media, &cc), Some(S(1)));
    // A longer max-age does not stretch the edge's own freshness.
    assert_eq!(
        p.freshness(live, &CacheControl::parse("max-age=600")),
        Some(S(5))
    );
    for forbidding in ["no-store", "private", "no-cache", "max-age=0"] {
        let cc = CacheControl::parse(forbidding);
        assert_eq!(p.freshness(live, &cc), None, "{forbidding}");
        assert_eq!(p.freshness(Resource::Media, &cc), None, "{forbidding}");
    }
}

#[test]
fn the_cache_key_ignores_who_asks() {
    assert_eq!(cache_query("", "spbhid"), "");
    assert_eq!(cache_query("?spbhid=t", "spbhid"), "");
    // Every viewer's hls_ctx is one key; a request without one (SRS's master) another.
    assert_eq!(cache_query("?hls_ctx=abc&spbhid=t", "spbhid"), "hls_ctx");
    assert_eq!(
        cache_query("auth=x&hls_ctx=abc", "spbhid"),
        cache_query("hls_ctx=zzz&auth=x&hls_ctx=q", "spbhid")
    );
    assert_ne!(
        cache_query("auth=x&hls_ctx=abc", "spbhid"),
        cache_query("auth=x", "spbhid")
    );
    assert_eq!(
        cache_query("_HLS_msn=9&_HLS_part=2&hls_ctx=a", "spbhid"),
        cache_query("_HLS_part=2&spbhid=other&_HLS_msn=9&hls_ctx=zz", "spbhid")
    );
    // Different parts are different entries: each blocking reload is its own fetch.
    assert_ne!(
        cache_query("_HLS_msn=9&_HLS_part=2", "spbhid"),
        cache_query("_HLS_msn=9&_HLS_part=3", "spbhid")
    );
    // Other parameters (an origin's auth) still split the cache.
    assert_ne!(
        cache_query("auth=a", "spbhid"),
        cache_query("auth=b", "spbhid")
    );
}

#[test]
fn one_hls_ctx_goes_upstream() {
    assert_eq!(set_param("", HLS_CTX, "e"), "");
    assert_eq!(set_param("?hls_ctx=v1", HLS_CTX, "e"), "hls_ctx=e");
    assert_eq!(
        set_param("hls_ctx=v1&_HLS_msn=3&hls_ctx", HLS_CTX, "e"),
        "hls_ctx=e&_HLS_msn=3&hls_ctx=e"
    );
    // A parameter whose name only starts with it is someone else's.
    assert_eq!(set_param("hls_ctxx=1", HLS_CTX, "e"), "hls_ctxx=1");
}

#[test]
fn lru_evicts_the_least_recently_used_within_its_budget() {
    let mut lru: Lru<&str, u32> = Lru::new(100, 60);
    lru.insert("a", 1, 40, S(10)).unwrap();
    lru.insert("b", 2, 40, S(10)).unwrap();
    assert_eq!(lru.used(), 80);
    // Touch a: b is now the oldest.
    assert_eq!(lru.get("a", S(1)), Some(1));
    lru.insert("c", 3, 40, S(10)).unwrap();
    assert_eq!(lru.get("b", S(1)), None);
    assert_eq!(lru.get("a", S(1)), Some(1));
    assert_eq!(lru.get("c", S(1)), Some(3));
    assert_eq!(lru.used(), 80);
    assert!(lru.used() <= lru.budget());
    // Too large for one entry: refused, nothing evicted.
    assert_eq!(lru.insert("d", 4, 61, S(10)), Err(Rejected::TooLarge));
    assert_eq!(lru.len(), 2);
    // Replacing an entry frees its old size.
    lru.insert("a", 5, 10, S(10)).unwrap();
    assert_eq!(lru.used(), 50);
    assert_eq!(lru.get("a", S(1)), Some(5));
}

#[test]
fn lru_entries_expire_on_the_callers_clock() {
    let mut lru: Lru<String, u32> = Lru::new(1000, 1000);
    lru.insert("p".into(), 1, 10, MS(1500)).unwrap();
    assert_eq!(lru.get("p", MS(1499)), Some(1));
    assert_eq!(lru.get("p", MS(1500)), None);
    assert_eq!(lru.used(), 0);
    assert!(lru.is_empty());
}

#[test]
fn lru_entry_cap_never_exceeds_the_budget() {
    let mut lru: Lru<u32, ()> = Lru::new(10, 1000);
    assert_eq!(lru.entry_cap(), 10);
    assert_eq!(lru.insert(1, (), 11, S(1)), Err(Rejected::TooLarge));
    let mut zero: Lru<u32, ()> = Lru::new(0, 0);
    zero.insert(1, (), 0, S(1)).unwrap();
    assert_eq!(zero.insert(2, (), 1, S(1)), Err(Rejected::TooLarge));
}

#[test]
fn lru_holds_its_budget_under_a_random_workload() {
    // A fixed xorshift sequence: deterministic, and varied enough to exercise eviction,
    // replacement and expiry together.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut lru: Lru<u64, u64> = Lru::new(10_000, 2_000);
    for step in 0..20_000u64 {
        let now = MS(step);
        let key = next() % 64;
        if next() % 3 == 0 {
            let _ = lru.get(&key, now);
        } else {
            let size = (next() % 2_500) as usize;
            let _ = lru.insert(key, step, size, now + MS(next() % 500));
        }
        lru.consistent().unwrap();
    }
}

proptest::proptest! {
    /// The fuzz target's invariants on random input, so that they run with the tests too.
    #[test]
    fn the_fuzz_invariants_hold_on_random_input(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        crate::fuzzing::cache_policy(&data).map_err(proptest::test_runner::TestCaseError::fail)?;
    }

    #[test]
    fn the_fuzz_invariants_hold_on_header_like_input(cc in "(max-age|s-maxage|no-store|private|no-cache|hls_ctx|spbhid|_HLS_msn|#EXT-X-TARGETDURATION:|#EXT-X-PART-INF:PART-TARGET)?[=0-9.,&\"\n a-z-]{0,40}") {
        crate::fuzzing::cache_policy(cc.as_bytes()).map_err(proptest::test_runner::TestCaseError::fail)?;
    }
}
