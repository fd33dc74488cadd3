//! Deployment: `--check-config` on the examples in docs/deploy and on bad input, `--version`,
//! the first-run guidance in the log, and the systemd readiness notification.

use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::{Proxy, TempDir};

/// Runs the binary with `args`, in an empty directory (no `.env`), with only `env` set
/// among the environment variables the proxy reads.
fn run_binary(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_binary_with_dotenv(args, env, None)
}

/// As [`run_binary`], with a `.env` file holding `dotenv` in the working directory.
fn run_binary_with_dotenv(args: &[&str], env: &[(&str, &str)], dotenv: Option<&str>) -> Output {
    let dir = TempDir::new("deploy-run");
    if let Some(text) = dotenv {
        std::fs::write(dir.path().join(".env"), text).expect("writing .env");
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxy-server"));
    cmd.args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running proxy-server")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy")
}

/// Every `*.toml` under docs/deploy.
fn examples() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("reading docs/deploy") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "toml") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&deploy_dir(), &mut found);
    found.sort();
    found
}

/// The secrets an example file holds: the token, the Redis password, and the password in
/// a Redis URL.
fn secrets_in(path: &Path) -> Vec<String> {
    let table: toml::Table = std::fs::read_to_string(path)
        .expect("reading an example")
        .parse()
        .expect("an example is TOML");
    let mut secrets = Vec::new();
    for key in ["system_api_token", "redis_password"] {
        if let Some(v) = table.get(key).and_then(|v| v.as_str()) {
            secrets.push(v.to_owned());
        }
    }
    if let Some(url) = table.get("redis_url").and_then(|v| v.as_str()) {
        let userinfo = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(userinfo, _)| userinfo);
        if let Some(password) = userinfo.map(|u| u.rsplit(':').next().unwrap_or(u)) {
            secrets.push(password.to_owned());
        }
    }
    secrets
}

#[test]
fn check_config_accepts_every_deploy_example_and_masks_its_secrets() {
    let examples = examples();
    for name in ["one-proxy", "fleet", "edge"] {
        assert!(
            examples
                .iter()
                .any(|p| p.parent().is_some_and(|d| d.ends_with(name))),
            "docs/deploy/{name} has no proxy.toml; found {examples:?}"
        );
    }
    let mut masked = 0;
    for example in &examples {
        let out = run_binary(&["--check-config", example.to_str().unwrap()], &[]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(0),
            "--check-config {}: stdout:\n{stdout}\nstderr:\n{stderr}",
            example.display()
        );
        assert!(
            stdout.contains("the configuration is valid"),
            "{}: {stdout}",
            example.display()
        );
        // The effective values are there, each with its source.
        assert!(stdout.contains("rtmp_server = \"1935\"  # rtmp_server (config file"));
        assert!(stdout.contains("max_connections = \"10000\"  # default"));
        for secret in secrets_in(example) {
            assert!(
                !stdout.contains(&secret) && !stderr.contains(&secret),
                "{} prints the secret {secret:?}:\n{stdout}",
                example.display()
            );
            masked += 1;
        }
        // The example's directory, not the whole path (a checkout may sit under any name).
        if example
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "edge")
        {
            assert!(stdout.contains("name = \"fleet-proxy-1\""), "{stdout}");
            assert!(stdout.contains("rtmp = [\"10.0.1.11:1935\"]"), "{stdout}");
            assert!(stdout.contains("edge = \"on\""), "{stdout}");
        }
    }
    // The fleet example holds a token and a Redis URL with a password; one proxy, a token.
    assert!(masked >= 3, "the examples hold {masked} secrets to mask");
    let fleet = run_binary(
        &[
            "--check-config",
            deploy_dir().join("fleet/proxy.toml").to_str().unwrap(),
        ],
        &[],
    );
    let stdout = text(&fleet.stdout);
    assert!(
        stdout.contains("redis_url = \"redis://proxy:***@redis.internal:6379/0\""),
        "{stdout}"
    );
    assert!(stdout.contains("system_api_token = \"***\""), "{stdout}");
}

#[test]
fn check_config_names_every_error_and_exits_2() {
    let dir = TempDir::new("deploy-bad");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "rtmp_server = \"not-a-port\"\n\
         max_connections = 0\n\
         rtmp_servr = 1935\n\
         [[origins]]\n\
         name = \"nowhere\"\n",
    )
    .unwrap();
    let out = run_binary(
        &["--check-config", path.to_str().unwrap()],
        &[
            ("PROXY_IDLE_TIMEOUT", "soon"),
            ("PROXY_SYSTEM_API_TOKEN", "hunter2-secret"),
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "\"not-a-port\" for rtmp_server (config file",
        "\"0\" for max_connections (config file",
        "unknown key `rtmp_servr`",
        "did you mean `rtmp_server`?",
        "origin \"nowhere\" lists no endpoint",
        "\"soon\" for PROXY_IDLE_TIMEOUT (environment)",
        "5 problems",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(!stdout.contains("valid"), "{stdout}");
    assert!(!stderr.contains("hunter2-secret"), "{stderr}");

    // A file that is not TOML at all still reports the environment's problems with it.
    std::fs::write(&path, "rtmp_server = = 1\n").unwrap();
    let out = run_binary(
        &["--check-config", path.to_str().unwrap()],
        &[("PROXY_HANDSHAKE_TIMEOUT", "0s")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("parsing config file"), "{stderr}");
    assert!(
        stderr.contains("PROXY_HANDSHAKE_TIMEOUT (environment)"),
        "{stderr}"
    );
}

#[test]
fn check_config_binds_nothing() {
    // Every port the file names is held by this test: a check that bound would fail.
    let tcp: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let udp: Vec<UdpSocket> = (0..2)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let addr = |l: &TcpListener| l.local_addr().unwrap().to_string();
    let uaddr = |s: &UdpSocket| s.local_addr().unwrap().to_string();
    let dir = TempDir::new("deploy-taken");
    let path = dir.path().join("proxy.toml");
    std::fs::write(
        &path,
        format!(
            "rtmp_server = \"{}\"\nhttp_server = \"{}\"\nhttp_api = \"{}\"\nsystem_api = \"{}\"\n\
             webrtc_server = \"{}\"\nsrt_server = \"{}\"\n",
            addr(&tcp[0]),
            addr(&tcp[1]),
            addr(&tcp[2]),
            addr(&tcp[3]),
            uaddr(&udp[0]),
            uaddr(&udp[1]),
        ),
    )
    .unwrap();
    // --config FILE --check-config is the same check as --check-config FILE.
    let out = run_binary(&["--config", path.to_str().unwrap(), "--check-config"], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("rtmp_server = \"{}\"", addr(&tcp[0]))),
        "{stdout}"
    );
    // And started for real on the same file, the proxy does fail on the taken port.
    let started = run_binary(&["--config", path.to_str().unwrap()], &[]);
    assert_ne!(started.status.code(), Some(0));
    assert!(
        text(&started.stderr).contains("binding"),
        "{}",
        text(&started.stderr)
    );
}

#[test]
fn version_names_the_commit() {
    let out = run_binary(&["--version"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let expected_version = format!("proxy-server {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(stdout.starts_with(&expected_version), "{stdout}");
    let commit = stdout
        .trim()
        .strip_prefix(&expected_version)
        .and_then(|c| c.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no commit in {stdout:?}"));
    // Built from a checkout, it names a commit of it (HEAD may have moved since); built
    // from anything else, "unknown".
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if git(&["rev-parse", "--is-inside-work-tree"]) {
        assert!(
            git(&[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{commit}^{{commit}}")
            ]),
            "--version names {commit:?}, which is no commit of this checkout"
        );
    } else {
        assert_eq!(commit, "unknown");
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn first_run_guidance_names_the_heartbeat_url_once() {
    let proxy = Proxy::start(&[], &[], None);
    let api = proxy.addr("system-api");
    let log = proxy.log_text();
    assert_eq!(count(&log, "no origins yet"), 1, "{log}");
    assert!(
        log.contains(&format!("url http://{api}/api/v1/srs/register;")),
        "no heartbeat url with {api} in:\n{log}"
    );
    assert!(log.contains("[[origins]]"), "{log}");

    // With a token, the URL carries ?token= (a placeholder: the log never holds the token).
    let proxy = Proxy::start(&[("system-api-token", "s3cret-token-value")], &[], None);
    let api = proxy.addr("system-api");
    let log = proxy.log_text();
    assert!(
        log.contains(&format!(
            "url http://{api}/api/v1/srs/register?token=TOKEN;"
        )),
        "{log}"
    );
    assert!(!log.contains("s3cret-token-value"), "{log}");

    // With an origin configured, nothing to say.
    let origin = format!(
        "[[origins]]\nname = \"a\"\nrtmp = {}\n",
        crate::harness::free_port()
    );
    let proxy = Proxy::start(&[], &[], Some(&origin));
    assert_eq!(count(&proxy.log_text(), "no origins yet"), 0);
}

#[test]
fn wildcard_listener_with_loopback_candidate_warns() {
    // The one wildcard bind of the suite: the warning is about exactly that.
    let proxy = Proxy::start(&[("webrtc-server", "0.0.0.0:0")], &[], None);
    let log = proxy.log_text();
    assert_eq!(
        count(&log, "WebRTC answers name 127.0.0.1"),
        1,
        "no warning in:\n{log}"
    );
    assert!(log.contains("Set PROXY_RTC_CANDIDATE"), "{log}");

    let proxy = Proxy::start(
        &[
            ("webrtc-server", "0.0.0.0:0"),
            ("rtc-candidate", "192.0.2.7"),
        ],
        &[],
        None,
    );
    assert_eq!(count(&proxy.log_text(), "WebRTC answers name 127.0.0.1"), 0);
    // All on loopback (the harness's default): no remote client to warn about.
    let proxy = Proxy::start(&[], &[], None);
    assert_eq!(count(&proxy.log_text(), "WebRTC answers name 127.0.0.1"), 0);
}

#[test]
fn tells_systemd_ready_and_stopping() {
    let dir = TempDir::new("deploy-notify");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("binding the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut proxy = Proxy::start(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())], None);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("no READY=1 within 30 s");
    assert_eq!(text(&buf[..n]).trim(), "READY=1");

    let status = proxy.process.terminate(Duration::from_secs(40));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let n = socket.recv(&mut buf).expect("no STOPPING=1 on SIGTERM");
    assert_eq!(text(&buf[..n]).trim(), "STOPPING=1");
}

#[test]
fn systemd_unit_verifies() {
    let analyze = crate::harness::require_program("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(deploy_dir().join("proxy-server.service"))
        .expect("reading docs/deploy/proxy-server.service");
    for directive in [
        "Type=notify",
        "Restart=on-failure",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "LimitNOFILE=",
        "CapabilityBoundingSet=\n",
        "#AmbientCapabilities=CAP_NET_BIND_SERVICE",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive:?}");
    }
    // The installed path, pointed at the binary under test: verify checks it is there.
    let dir = TempDir::new("deploy-unit");
    let path = dir.path().join("proxy-server.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/proxy-server",
            env!("CARGO_BIN_EXE_proxy-server"),
        ),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("running systemd-analyze");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("proxy-server.service"),
        "systemd-analyze verify complains: {stderr}"
    );
}

#[test]
fn check_config_reads_dotenv_as_a_start_would() {
    let out = run_binary_with_dotenv(
        &["--check-config"],
        &[("PROXY_RTMP_SERVER", "127.0.0.1:41935")],
        Some("PROXY_MAX_CONNECTIONS=5\nPROXY_REDIS_PASSWORD=dotenv-secret\nPROXY_RTMP_SERVER=9\n"),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("max_connections = \"5\"  # PROXY_MAX_CONNECTIONS (.env)"),
        "{stdout}"
    );
    // The environment wins over .env.
    assert!(
        stdout.contains("rtmp_server = \"127.0.0.1:41935\"  # PROXY_RTMP_SERVER (environment)"),
        "{stdout}"
    );
    assert!(stdout.contains("redis_password = \"***\""), "{stdout}");
    assert!(!stdout.contains("dotenv-secret"), "{stdout}");

    let out = run_binary_with_dotenv(&["--check-config"], &[], Some("PROXY_SRT_SERVER=nowhere\n"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"nowhere\" for PROXY_SRT_SERVER (.env)"),
        "{stderr}"
    );
}
