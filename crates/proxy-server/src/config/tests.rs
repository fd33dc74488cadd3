//! Unit tests of the configuration: layers, parsers, normalisation, and what a bad
//! configuration says. The real binary's handling is in the e2e `system_api` tests.

use std::collections::HashMap;

use lb_core::Transport;

use super::layers::{read_file, Layers, Problems};
use super::parse::{dotenv as parse_dotenv, parse_duration};
use super::*;

fn map(v: &[(&str, &str)]) -> HashMap<String, String> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn layers(flags: &[(&str, &str)], env: &[(&str, &str)], file: &[(&str, &str)]) -> Layers {
    Layers {
        flags: map(flags),
        env: map(env),
        file: map(file),
        ..Layers::default()
    }
}

fn resolve(layers: &Layers, file_origins: Vec<(Origin, bool)>) -> anyhow::Result<Config> {
    super::resolve(layers, file_origins, Problems::default())
}

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("proxy-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn defaults_are_the_references() {
    let c = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
    assert_eq!(c.rtmp_listen, Some("0.0.0.0:11935".parse().unwrap()));
    assert_eq!(c.http_listen, Some("0.0.0.0:18080".parse().unwrap()));
    assert_eq!(c.http_api_listen, Some("0.0.0.0:11985".parse().unwrap()));
    assert_eq!(c.webrtc_listen, Some("0.0.0.0:18000".parse().unwrap()));
    assert_eq!(c.srt_listen, Some("0.0.0.0:20080".parse().unwrap()));
    assert_eq!(
        c.system_api_listen,
        Some("127.0.0.1:12025".parse().unwrap())
    );
    assert_eq!(c.balancer, BalancerKind::Memory);
    assert_eq!(
        (c.grace_quit, c.force_quit),
        (Duration::from_secs(20), Duration::from_secs(30))
    );
    assert_eq!(c.balancer_config, BalancerConfig::default());
    assert!(c.static_origins.is_empty());
}

#[test]
fn production_settings() {
    let c = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
    assert_eq!(c.max_connections_per_ip, Some(1000));
    assert_eq!(c.health_check.interval, Some(Duration::from_secs(2)));
    assert_eq!((c.health_check.rise, c.health_check.fall), (2, 3));
    assert!(c.health_check.cut_sessions);
    assert_eq!(c.origin_proxy_protocol, ProxyProtocolLegs::default());
    assert_eq!(c.origin_connect_attempts, 3);
    assert_eq!(c.rtmp_buffer_budget, Some(256 * 1024 * 1024));

    let file = [
        ("max_connections_per_ip", "0"),
        ("rtmp_buffer_budget", "0"),
        ("health_check_interval", "off"),
        ("origin_proxy_protocol", "rtmp, api"),
        ("suspect_for", "0s"),
    ];
    let c = resolve(&layers(&[], &[], &file), vec![]).unwrap();
    assert_eq!(c.max_connections_per_ip, None);
    assert_eq!(c.rtmp_buffer_budget, None);
    assert_eq!(c.health_check.interval, None);
    assert_eq!(c.suspect_for, Duration::ZERO);
    assert_eq!(
        c.origin_proxy_protocol,
        ProxyProtocolLegs {
            version: ProxyProtocolVersion::V2,
            rtmp: true,
            http: false,
            api: true
        }
    );
    let c = resolve(
        &layers(&[("origin_proxy_protocol_version", "1")], &[], &[]),
        vec![],
    )
    .unwrap();
    assert_eq!(c.origin_proxy_protocol.version, ProxyProtocolVersion::V1);
    for (key, bad) in [
        ("health_check_fall", "0"),
        ("health_check_interval", "0s"),
        ("origin_proxy_protocol", "srt"),
        ("origin_connect_attempts", "-1"),
        ("origin_proxy_protocol_version", "3"),
        ("rtmp_buffer_budget", "64MiB"),
    ] {
        let err = resolve(&layers(&[], &[], &[(key, bad)]), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn flag_beats_env_beats_file() {
    let file = [
        ("rtmp_server", "1"),
        ("http_server", "2"),
        ("http_api", "3"),
    ];
    let env = [("PROXY_RTMP_SERVER", "10"), ("PROXY_HTTP_SERVER", "20")];
    let flags = [("rtmp_server", "127.0.0.1:100")];
    let c = resolve(&layers(&flags, &env, &file), vec![]).unwrap();
    assert_eq!(c.rtmp_listen, Some("127.0.0.1:100".parse().unwrap()));
    assert_eq!(c.http_listen.unwrap().port(), 20);
    assert_eq!(c.http_api_listen.unwrap().port(), 3);
}

#[test]
fn bad_values_name_the_key_and_value() {
    let err = resolve(&layers(&[], &[("PROXY_RTMP_SERVER", "abc")], &[]), vec![])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PROXY_RTMP_SERVER") && err.contains("\"abc\""),
        "{err}"
    );
    let err = resolve(&layers(&[("origin_ttl", "5 parsecs")], &[], &[]), vec![])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--origin-ttl"), "{err}");
    let err = resolve(
        &layers(&[], &[("PROXY_LOAD_BALANCER_TYPE", "etcd")], &[]),
        vec![],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("PROXY_LOAD_BALANCER_TYPE") && err.contains("etcd"),
        "{err}"
    );
}

#[test]
fn default_backend_and_redis() {
    let env = [
        ("PROXY_DEFAULT_BACKEND_ENABLED", "on"),
        ("PROXY_LOAD_BALANCER_TYPE", "redis"),
        ("PROXY_REDIS_PORT", "6380"),
    ];
    let c = resolve(&layers(&[], &env, &[]), vec![]).unwrap();
    let (origin, _) = &c.static_origins[0];
    assert_eq!(origin.rtmp[0].to_string(), "127.0.0.1:1935");
    assert_eq!(origin.rtc[0].to_string(), "127.0.0.1:8000");
    assert_eq!(origin.rtc[0].transport, Transport::Udp);
    assert!(matches!(
        c.balancer,
        BalancerKind::Redis(RedisSettings { port: 6380, .. })
    ));
}

#[test]
fn durations_and_dotenv() {
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
    assert!(
        parse_duration("1d").is_err()
            && parse_duration("").is_err()
            && parse_duration("-1").is_err()
    );
    let env = parse_dotenv("# c\nexport PROXY_A=1\nPROXY_B=\"x y\"\nPROXY_C=z # note\n");
    assert_eq!(
        (
            env["PROXY_A"].as_str(),
            env["PROXY_B"].as_str(),
            env["PROXY_C"].as_str()
        ),
        ("1", "x y", "z")
    );
}

#[test]
fn file_with_static_origins() {
    let dir = TempDir::new("origins");
    let path = dir.0.join("proxy.toml");
    std::fs::write(&path, "rtmp_server = 1936\n[[origins]]\nname = \"nginx1\"\nrtmp = \"127.0.0.1:1935\"\nhttp = [8080]\nweight = 3\ndraining = true\n").unwrap();
    let mut problems = Problems::default();
    let file = read_file(&path, &mut problems).unwrap();
    problems.finish(Some(())).unwrap();
    let c = resolve(
        &Layers {
            file: file.settings,
            ..Layers::default()
        },
        file.origins,
    )
    .unwrap();
    assert_eq!(c.rtmp_listen.unwrap().port(), 1936);
    let (origin, draining) = &c.static_origins[0];
    assert_eq!(
        (
            origin.id.as_str(),
            origin.http[0].to_string().as_str(),
            origin.weight,
            *draining
        ),
        ("nginx1", "127.0.0.1:8080", 3, true)
    );
    std::fs::write(&path, "rtmp_servr = 1\n").unwrap();
    let mut problems = Problems::default();
    read_file(&path, &mut problems).unwrap();
    assert!(problems.to_string().contains("rtmp_servr"));
}

#[test]
fn the_table_is_consistent() {
    let mut keys = std::collections::HashSet::new();
    for s in SETTINGS {
        assert!(keys.insert(s.key), "{} is listed twice", s.key);
        assert_eq!(
            s.env,
            format!("PROXY_{}", s.key.to_uppercase()),
            "{}",
            s.key
        );
        assert!(!s.help.is_empty() && !s.help.contains("  "), "{}", s.key);
    }
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    let help = command().render_long_help().to_string();
    for s in SETTINGS {
        let flag = format!("--{} <VALUE>", s.flag());
        // On/off settings may be given bare.
        let optional = format!("--{} [<VALUE>]", s.flag());
        let env = format!("[env: {}] [default: {}]", s.env, s.default);
        assert!(
            (help.contains(&flag) || help.contains(&optional)) && help.contains(&env),
            "{flag} {env}\n{help}"
        );
    }
    assert!(help.contains("--config <FILE>"), "{help}");
}

#[test]
fn a_bad_value_names_its_layer() {
    let bad = [("idle_timeout", "forever")];
    let env = [("PROXY_IDLE_TIMEOUT", "forever")];
    let cases = [
        (layers(&bad, &[], &[]), "--idle-timeout (command line)"),
        (layers(&[], &env, &[]), "PROXY_IDLE_TIMEOUT (environment)"),
        (
            Layers {
                dotenv: map(&env),
                ..Layers::default()
            },
            "PROXY_IDLE_TIMEOUT (.env)",
        ),
        (
            Layers {
                file: map(&bad),
                file_path: Some("/etc/proxy.toml".into()),
                ..Layers::default()
            },
            "idle_timeout (config file /etc/proxy.toml)",
        ),
    ];
    for (layers, source) in cases {
        let err = resolve(&layers, vec![]).unwrap_err().to_string();
        let expected = format!("bad value \"forever\" for {source}: expected a duration");
        assert!(err.starts_with(&expected), "{err}");
    }
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let err = resolve(
        &layers(
            &[("redis_port", "0")],
            &[("PROXY_SUSPECT_FOR", "soon")],
            &[("lb_strategy", "fastest")],
        ),
        vec![],
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("3 problems:"), "{err}");
    for part in [
        "\"0\" for --redis-port (command line)",
        "\"soon\" for PROXY_SUSPECT_FOR (environment)",
        "\"fastest\" for lb_strategy (config file)",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
}

#[test]
fn a_misspelt_or_mistyped_file_key_is_an_error_naming_it() {
    let dir = TempDir::new("keys");
    let path = dir.0.join("proxy.toml");
    std::fs::write(
        &path,
        "idle_timout = \"5s\"\nflux_capacitor = 1\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let mut problems = Problems::default();
    let file = read_file(&path, &mut problems).unwrap();
    assert!(file.settings.is_empty(), "{:?}", file.settings);
    let err = problems.finish(Some(())).unwrap_err().to_string();
    let file = path.display();
    for part in [
        format!("unknown key `idle_timout` in config file {file} (did you mean `idle_timeout`?)"),
        format!("unknown key `flux_capacitor` in config file {file}\n"),
        format!("key `trusted_proxies` in config file {file} must be a string, number or boolean"),
    ] {
        assert!(err.contains(&part), "{part}: {err}");
    }
}

#[test]
fn the_idle_timeout_is_clamped_once_here() {
    let idle = |v: &str| resolve(&layers(&[("idle_timeout", v)], &[], &[]), vec![]);
    for (value, expected) in [
        ("0s", MIN_IDLE_TIMEOUT),
        ("500ms", MIN_IDLE_TIMEOUT),
        ("2s", Duration::from_secs(2)),
        ("8760h", MAX_DURATION),
    ] {
        assert_eq!(idle(value).unwrap().idle_timeout, expected, "{value}");
    }
    let default = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
    assert_eq!(default.idle_timeout, Duration::from_secs(30));
    let err = idle("8761h").unwrap_err().to_string();
    assert!(err.contains("at most 365 days"), "{err}");
}

#[test]
fn timeouts_of_zero_and_absurd_durations_are_refused() {
    for key in [
        "handshake_timeout",
        "origin_connect_timeout",
        "health_check_timeout",
    ] {
        let err = resolve(&layers(&[(key, "0s")], &[], &[]), vec![])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("--{} ", key.replace('_', "-"))),
            "{err}"
        );
        assert!(err.contains("above zero"), "{err}");
    }
    for absurd in [
        "1e19",
        "99999999999999999999h",
        "10000000000000000000s10000000000000000000s",
    ] {
        let err = resolve(&layers(&[("origin_ttl", absurd)], &[], &[]), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--origin-ttl"), "{absurd}: {err}");
    }
}

#[test]
fn values_are_trimmed_and_blank_variables_unset() {
    let env = [
        ("PROXY_LOAD_BALANCER_TYPE", " redis "),
        ("PROXY_REDIS_PASSWORD", "  "),
        ("PROXY_HTTP_SERVER", " "),
    ];
    let c = resolve(&layers(&[], &env, &[("http_server", "8081")]), vec![]).unwrap();
    assert!(matches!(
        c.balancer,
        BalancerKind::Redis(RedisSettings { password: None, .. })
    ));
    assert_eq!(
        c.http_listen.unwrap().port(),
        8081,
        "a blank variable falls through"
    );
}

#[test]
fn a_bad_default_backend_value_is_named() {
    let env = [
        ("PROXY_DEFAULT_BACKEND_ENABLED", "on"),
        ("PROXY_DEFAULT_BACKEND_RTC", "udp://:8000"),
        ("PROXY_DEFAULT_BACKEND_SRT", "http://:10080"),
    ];
    let err = resolve(&layers(&[], &env, &[]), vec![])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"http://:10080\" for PROXY_DEFAULT_BACKEND_SRT (environment)"),
        "{err}"
    );
    let c = resolve(&layers(&[], &env[..2], &[]), vec![]).unwrap();
    let (origin, _) = &c.static_origins[0];
    assert_eq!(
        (origin.rtc[0].to_string(), origin.rtc[0].transport),
        ("127.0.0.1:8000".to_owned(), Transport::Udp)
    );
    assert_eq!(origin.srt[0].transport, Transport::Udp);
}

#[test]
fn quit_timeouts_are_checked_together() {
    let flags = [("grace_quit_timeout", "10s"), ("force_quit_timeout", "5s")];
    let err = resolve(&layers(&flags, &[], &[]), vec![])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("force_quit_timeout (5s) must not be shorter than grace_quit_timeout (10s)"),
        "{err}"
    );
}

#[test]
fn the_fleet_secret_makes_keys_and_a_previous_one_needs_a_current_one() {
    let c = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
    assert!(
        c.fleet_keys.is_none(),
        "no secret: tokens are stored, as before"
    );
    let c = resolve(
        &layers(
            &[("lb_strategy", "rendezvous-bounded")],
            &[
                ("PROXY_FLEET_SECRET", "new"),
                ("PROXY_FLEET_SECRET_PREVIOUS", "old"),
            ],
            &[],
        ),
        vec![],
    )
    .unwrap();
    assert_eq!(
        c.strategy,
        StrategyKind::Rendezvous {
            load_bound_percent: Some(125)
        }
    );
    let keys = c.fleet_keys.unwrap();
    let old = lb_core::token::FleetKeys::new(b"old", None).unwrap();
    let claims = lb_core::token::Claims {
        kind: lb_core::token::TokenKind::Hls,
        origin: lb_core::OriginId::new("o"),
        subject: "s".into(),
        expires: u32::MAX,
    };
    let token = old.sign(&claims, b"").unwrap();
    assert_eq!(
        keys.verify(&token, lb_core::token::TokenKind::Hls, b"", 0),
        Ok(claims)
    );
    assert!(
        !format!("{keys:?}").contains("new"),
        "secrets are not logged"
    );
    let err = resolve(
        &layers(&[], &[("PROXY_FLEET_SECRET_PREVIOUS", "old")], &[]),
        vec![],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("PROXY_FLEET_SECRET_PREVIOUS is set without PROXY_FLEET_SECRET"),
        "{err}"
    );
}

#[test]
fn tls_listeners_are_off_by_default_and_need_both_files() {
    let c = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
    assert_eq!(
        (c.rtmps_listen, c.https_listen, c.https_api_listen),
        (None, None, None)
    );
    assert!(c.tls.is_none());

    let c = resolve(
        &layers(
            &[("rtmps_server", "1443"), ("https_api", "127.0.0.1:1990")],
            &[
                ("PROXY_TLS_CERT", "/etc/c.pem"),
                ("PROXY_TLS_KEY", "/etc/k.pem"),
            ],
            &[],
        ),
        vec![],
    )
    .unwrap();
    assert_eq!(c.rtmps_listen, Some("0.0.0.0:1443".parse().unwrap()));
    assert_eq!(c.https_api_listen, Some("127.0.0.1:1990".parse().unwrap()));
    let tls = c.tls.unwrap();
    assert_eq!(
        (tls.cert, tls.key),
        (PathBuf::from("/etc/c.pem"), PathBuf::from("/etc/k.pem"))
    );

    let err = resolve(&layers(&[("https_server", "8443")], &[], &[]), vec![])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PROXY_HTTPS_SERVER is on but no certificate is set"),
        "{err}"
    );
    let err = resolve(&layers(&[("tls_cert", "/c.pem")], &[], &[]), vec![])
        .unwrap_err()
        .to_string();
    assert!(err.contains("PROXY_TLS_KEY is not"), "{err}");
}

#[test]
fn sni_pairs_in_the_file_are_relative_to_it_and_need_names() {
    let dir = TempDir::new("tls-certs");
    let path = dir.0.join("proxy.toml");
    std::fs::write(
        &path,
        "[[tls_certs]]\nnames = [\"live.example.com\"]\ncert = \"live/c.pem\"\nkey = \"/abs/k.pem\"\n\
         [[tls_certs]]\nnames = []\ncert = \"c\"\nkey = \"k\"\n",
    )
    .unwrap();
    let mut problems = Problems::default();
    let file = read_file(&path, &mut problems).unwrap();
    assert_eq!(file.tls_certs.len(), 1);
    assert_eq!(file.tls_certs[0].names, ["live.example.com"]);
    assert_eq!(file.tls_certs[0].cert, dir.0.join("live/c.pem"));
    assert_eq!(file.tls_certs[0].key, PathBuf::from("/abs/k.pem"));
    let said = problems.finish(Some(())).unwrap_err().to_string();
    assert!(said.contains("every entry needs `names`"), "{said}");
}

#[test]
fn edge_settings() {
    let c = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
    assert!(!c.edge);
    assert_eq!(c.edge_cache_size, 256 << 20);
    let c = resolve(
        &layers(
            &[("edge", "on")],
            &[("PROXY_EDGE_CACHE_SIZE", "1G")],
            &[("edge_cache_size", "2M")],
        ),
        vec![],
    )
    .unwrap();
    assert!(c.edge);
    assert_eq!(c.edge_cache_size, 1 << 30);
    for (size, bytes) in [
        ("1048576", 1 << 20),
        ("64MiB", 64 << 20),
        ("512 kib", -1i64),
    ] {
        let got = resolve(&layers(&[], &[], &[("edge_cache_size", size)]), vec![]);
        match bytes {
            -1 => assert!(got.unwrap_err().to_string().contains("edge_cache_size")),
            n => assert_eq!(got.unwrap().edge_cache_size as i64, n, "{size}"),
        }
    }
    for bad in ["", "lots", "12T", "-5M", "99999999999G"] {
        let err = resolve(&layers(&[], &[], &[("edge_cache_size", bad)]), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("edge_cache_size"), "{bad}: {err}");
    }
}

#[test]
fn edge_mode_is_off_by_default_and_switched_on_by_any_layer() {
    let c = resolve(&layers(&[], &[], &[]), vec![]).unwrap();
    assert!(!c.edge);
    assert_eq!(c.edge_linger, Duration::from_secs(5));
    assert_eq!(c.edge_merge_writes, Duration::from_millis(200));
    let c = resolve(
        &layers(
            &[],
            &[],
            &[
                ("edge", "true"),
                ("edge_linger", "750ms"),
                ("edge_merge_writes", "40ms"),
            ],
        ),
        vec![],
    )
    .unwrap();
    assert!(c.edge);
    assert_eq!(c.edge_linger, Duration::from_millis(750));
    assert_eq!(c.edge_merge_writes, Duration::from_millis(40));
    let err = resolve(&layers(&[], &[], &[("edge_merge_writes", "0s")]), vec![])
        .unwrap_err()
        .to_string();
    assert!(err.contains("edge_merge_writes"), "{err}");
}

#[test]
fn an_on_off_flag_may_be_given_bare() {
    let matches = super::command()
        .try_get_matches_from(["proxy-server", "--edge", "--rtmp-server", "1935"])
        .unwrap();
    assert_eq!(
        matches.get_one::<String>("edge").map(String::as_str),
        Some("on")
    );
    assert_eq!(
        matches.get_one::<String>("rtmp_server").map(String::as_str),
        Some("1935")
    );
    let matches = super::command()
        .try_get_matches_from(["proxy-server", "--edge", "off"])
        .unwrap();
    assert_eq!(
        matches.get_one::<String>("edge").map(String::as_str),
        Some("off")
    );
}
