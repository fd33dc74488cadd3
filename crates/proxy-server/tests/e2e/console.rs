//! The operator's console in real headless Chromium (Debian's `chromium`, driven over the
//! DevTools protocol), and live reconfiguration (SIGHUP, `POST /api/v1/reload`) while ffmpeg
//! publishes through the proxy to nginx-rtmp.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::{
    ffmpeg_publish, free_port, http, require_program, wait_for, NginxRtmp, Process, Proxy, TempDir,
};

const TOKEN: &str = "console-s3cret";

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// A token-carrying GET on the System API, as JSON.
fn get(proxy: &Proxy, path: &str) -> Value {
    let (k, v) = bearer();
    let r = http("GET", proxy.addr("system-api"), path, &[(k, &v)], b"");
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

fn server<'a>(servers: &'a Value, id: &str) -> Option<&'a Value> {
    servers["data"]
        .as_array()?
        .iter()
        .find(|s| s["id"].as_str() == Some(id))
}

/// The origin a stream is placed on, once it has a publisher on this proxy.
fn published_on(proxy: &Proxy, name: &str) -> Option<String> {
    let streams = get(proxy, "/api/v1/streams");
    streams["data"].as_array()?.iter().find_map(|s| {
        let here = &s["sessions"];
        (s["name"].as_str() == Some(name) && here["publishers"].as_u64() == Some(1))
            .then(|| s["origin"].as_str().map(str::to_owned))?
    })
}

fn wait_published_on(proxy: &Proxy, name: &str) -> String {
    wait_for(Duration::from_secs(20), || published_on(proxy, name)).unwrap_or_else(|| {
        panic!(
            "stream {name} never had a publisher on the proxy; streams: {}\nlog:\n{}",
            get(proxy, "/api/v1/streams"),
            proxy.log_text()
        )
    })
}

/// The config file: top-level settings first (TOML puts later keys inside the last
/// table), then each origin with its draining flag.
fn config_text(settings: &str, origins: &[(&str, &NginxRtmp, bool)]) -> String {
    let mut text = format!("health_check_interval = \"500ms\"\n{settings}\n");
    for (name, nginx, draining) in origins {
        text.push_str(&nginx.origin_toml(name));
        text.push_str(&format!("draining = {draining}\n"));
    }
    text
}

fn post_reload(proxy: &Proxy) -> crate::harness::Response {
    let (k, v) = bearer();
    http(
        "POST",
        proxy.addr("system-api"),
        "/api/v1/reload",
        &[(k, &v)],
        b"",
    )
}

fn sighup(proxy: &Proxy) {
    let pid = i32::try_from(proxy.pid()).expect("pid fits an i32");
    // SAFETY: kill(2) on a child process this test started and still holds.
    let sent = unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(sent, 0, "cannot send SIGHUP to the proxy");
}

fn metric(proxy: &Proxy, line_start: &str) -> f64 {
    let (k, v) = bearer();
    let text = http("GET", proxy.addr("system-api"), "/metrics", &[(k, &v)], b"").text();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn still_running(publisher: &mut Process) -> bool {
    matches!(publisher.child.try_wait(), Ok(None))
}

#[test]
fn reloads_apply_origins_strategy_and_refuse_broken_files_under_a_live_publish() {
    let (a, b) = (NginxRtmp::start(None), NginxRtmp::start(None));
    let toml = config_text("lb_strategy = \"random\"", &[("nginx-a", &a, false)]);
    let proxy = Proxy::start(&[("system-api-token", TOKEN)], &[], Some(&toml));
    let rtmp = proxy.addr("rtmp");
    let url = |name: &str| format!("rtmp://{rtmp}/live/{name}");
    let write = |text: &str| std::fs::write(proxy.config_path(), text).expect("rewriting the file");

    let mut one = ffmpeg_publish(&url("one"), 180, true, "flv");
    assert_eq!(wait_published_on(&proxy, "one"), "nginx-a");

    // The reload endpoint is as protected as the rest of the API.
    let anonymous = http("POST", proxy.addr("system-api"), "/api/v1/reload", &[], b"");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());

    // Add an origin, by SIGHUP; time from the signal to the origin being listed.
    write(&config_text(
        "lb_strategy = \"random\"",
        &[("nginx-a", &a, false), ("nginx-b", &b, false)],
    ));
    let sent = Instant::now();
    sighup(&proxy);
    // Polled back to back (each request is a fresh connection), to time the reload
    // rather than a polling interval.
    let listed = loop {
        if server(&get(&proxy, "/api/v1/servers"), "nginx-b").is_some() {
            break sent.elapsed();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "nginx-b never listed after SIGHUP; log:\n{}",
            proxy.log_text()
        );
    };
    let logged = wait_for(Duration::from_secs(5), || {
        proxy
            .log_text()
            .lines()
            .find(|l| l.contains("configuration reloaded") && l.contains("SIGHUP"))
            .map(str::to_owned)
    })
    .expect("the reload is logged");
    eprintln!("reload latency: SIGHUP to the new origin listed by the API: {listed:?}");
    eprintln!("the proxy's own account: {logged}");

    // Drain the old origin, through the file and the endpoint: new streams go to the new one.
    write(&config_text(
        "lb_strategy = \"random\"",
        &[("nginx-a", &a, true), ("nginx-b", &b, false)],
    ));
    let r = post_reload(&proxy);
    assert_eq!(r.status, 200, "{}", r.text());
    let outcome = r.json();
    assert!(
        outcome["data"]["applied"]
            .as_array()
            .unwrap()
            .contains(&json!("static_origins")),
        "{outcome}"
    );
    let servers = get(&proxy, "/api/v1/servers");
    assert_eq!(server(&servers, "nginx-a").unwrap()["state"], "draining");
    assert_eq!(server(&servers, "nginx-b").unwrap()["state"], "up");
    let mut two = ffmpeg_publish(&url("two"), 120, true, "flv");
    let mut three = ffmpeg_publish(&url("three"), 120, true, "flv");
    assert_eq!(wait_published_on(&proxy, "two"), "nginx-b");
    assert_eq!(wait_published_on(&proxy, "three"), "nginx-b");

    // Change the strategy (and take the drain back): least-streams puts the next stream on
    // nginx-a, which has one stream to nginx-b's two.
    write(&config_text(
        "lb_strategy = \"least-streams\"",
        &[("nginx-a", &a, false), ("nginx-b", &b, false)],
    ));
    let r = post_reload(&proxy);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get(&proxy, "/api/v1/proxy")["data"]["strategy"],
        "least-streams"
    );
    let effective = get(&proxy, "/api/v1/config")["data"].clone();
    assert_eq!(effective["lb_strategy"], "least-streams");
    assert_eq!(effective["system_api_token"], "***", "the token is masked");
    assert!(!effective.to_string().contains(TOKEN), "{effective}");
    let mut four = ffmpeg_publish(&url("four"), 60, true, "flv");
    assert_eq!(wait_published_on(&proxy, "four"), "nginx-a");

    // A bad value changes nothing, and says what is wrong.
    let before = get(&proxy, "/api/v1/config");
    write(&format!(
        "lb_strategy = \"fastest\"\n{}",
        config_text("", &[("nginx-a", &a, true)])
    ));
    let r = post_reload(&proxy);
    assert_eq!(r.status, 400, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("lb_strategy") && error.contains("fastest"),
        "{error}"
    );
    assert_eq!(get(&proxy, "/api/v1/config"), before, "nothing changed");
    let servers = get(&proxy, "/api/v1/servers");
    assert_eq!(server(&servers, "nginx-b").unwrap()["state"], "up");
    assert_eq!(server(&servers, "nginx-a").unwrap()["state"], "up");
    // A file that does not parse, by SIGHUP: logged, counted, nothing changed.
    write("this is [ not toml");
    sighup(&proxy);
    let failed = wait_for(Duration::from_secs(10), || {
        let n = metric(&proxy, "proxy_config_reloads_total{result=\"failed\"}");
        (n >= 2.0).then_some(n)
    });
    assert_eq!(failed, Some(2.0), "log:\n{}", proxy.log_text());
    // The log reaches the test through a pipe and a reader thread: wait for it.
    let logged = wait_for(Duration::from_secs(5), || {
        proxy
            .log_text()
            .contains("configuration reload failed; nothing changed: parsing config file")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", proxy.log_text());
    assert_eq!(get(&proxy, "/api/v1/config"), before, "nothing changed");

    // What only a restart changes is said so, and keeps its running value.
    write(&config_text(
        "lb_strategy = \"least-streams\"\nload_balancer_type = \"redis\"",
        &[("nginx-a", &a, false), ("nginx-b", &b, false)],
    ));
    let r = post_reload(&proxy);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["needs_restart"], json!(["balancer"]));
    assert_eq!(
        get(&proxy, "/api/v1/config")["data"]["balancer"]["type"],
        "memory"
    );

    // Limits apply to new connections: with four publishers on, a limit of four turns the
    // next client away.
    write(&config_text(
        "lb_strategy = \"least-streams\"\nmax_connections = 4",
        &[("nginx-a", &a, false), ("nginx-b", &b, false)],
    ));
    let r = post_reload(&proxy);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&proxy, "/api/v1/proxy")["data"]["max_connections"], 4);
    let refused_before = metric(
        &proxy,
        "proxy_refusals_total{protocol=\"rtmp\",reason=\"connection_limit\"}",
    );
    let mut extra = TcpStream::connect(rtmp).expect("connecting to the RTMP listener");
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    let read = std::io::Read::read(&mut extra, &mut byte);
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the fifth connection was served: {read:?}"
    );
    let refused = wait_for(Duration::from_secs(5), || {
        let n = metric(
            &proxy,
            "proxy_refusals_total{protocol=\"rtmp\",reason=\"connection_limit\"}",
        );
        (n > refused_before).then_some(n)
    });
    assert!(refused.is_some(), "no connection_limit refusal counted");

    // The log filter changes live: at `warn`, a reload's own info line is no longer logged.
    write(&config_text(
        "lb_strategy = \"least-streams\"\nlog_filter = \"warn\"",
        &[("nginx-a", &a, false), ("nginx-b", &b, false)],
    ));
    let r = post_reload(&proxy);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["data"]["applied"]
            .as_array()
            .unwrap()
            .contains(&json!("log_filter")),
        "{}",
        r.text()
    );
    let logged_reloads = || proxy.log_text().matches("configuration reloaded").count();
    let before_quiet = logged_reloads();
    let r = post_reload(&proxy);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        logged_reloads(),
        before_quiet,
        "info lines are filtered out"
    );

    // Removing an origin leaves the streams on it running.
    write(&config_text(
        "lb_strategy = \"least-streams\"",
        &[("nginx-a", &a, false)],
    ));
    let r = post_reload(&proxy);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["origins_removed"], json!(["nginx-b"]));
    assert!(server(&get(&proxy, "/api/v1/servers"), "nginx-b").is_none());

    // The first publisher went on through every reload, on its first origin, and still
    // sends.
    let sent_by_one = || {
        get(&proxy, "/api/v1/streams")["data"]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["name"] == "one"))
            .and_then(|s| s["sessions"]["bytes_to_origin"].as_u64())
            .unwrap_or(0)
    };
    let before_wait = sent_by_one();
    assert!(
        wait_for(Duration::from_secs(10), || (sent_by_one() > before_wait)
            .then_some(()))
        .is_some(),
        "publisher one stopped sending"
    );
    for (name, publisher) in [
        ("one", &mut one),
        ("two", &mut two),
        ("three", &mut three),
        ("four", &mut four),
    ] {
        assert!(still_running(publisher), "publisher {name} ended");
    }
    assert_eq!(published_on(&proxy, "one").as_deref(), Some("nginx-a"));
    assert!(
        !proxy.log_text().contains("session ended with an error"),
        "{}",
        proxy.log_text()
    );
}

/// A minimal DevTools-protocol client: one WebSocket to a page, calls by id, events kept.
struct Cdp {
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
    errors: Vec<String>,
}

impl Cdp {
    fn connect(ws_url: &str) -> Self {
        let authority = ws_url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .expect("a ws:// DevTools URL");
        let stream = TcpStream::connect(authority).expect("connecting to DevTools");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(ws_url, stream).expect("DevTools WebSocket handshake");
        Cdp {
            ws,
            next_id: 1,
            errors: Vec::new(),
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws
            .send(tungstenite::Message::text(message))
            .expect("sending to DevTools");
        loop {
            let message = self.ws.read().expect("reading from DevTools");
            let Ok(text) = message.to_text() else {
                continue;
            };
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if value["id"].as_u64() == Some(id) {
                if let Some(error) = value.get("error") {
                    panic!("{method} failed: {error}");
                }
                return value["result"].clone();
            }
            self.event(&value);
        }
    }

    /// Keeps what counts as a page error: an uncaught exception, or console.error.
    fn event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => self
                .errors
                .push(format!("exception: {}", params["exceptionDetails"])),
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => self
                .errors
                .push(format!("console.error: {}", params["args"])),
            _ => {}
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("evaluating {expression}: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true; one that throws (the page still loading) is not.
    fn wait_true(&mut self, what: &str, expression: &str) {
        let guarded = format!("(() => {{ try {{ return ({expression}) === true; }} catch (_) {{ return false; }} }})()");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.eval(&guarded) == json!(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let page = self.eval("document.body.innerText");
        panic!("the page never showed {what}; it shows:\n{page}");
    }

    /// A real mouse click (pressed, released) at the middle of the element `selector`,
    /// once the element is what is on top there: the page re-renders as data arrives, and
    /// a click computed before a layout shift would land on something else.
    fn click(&mut self, selector: &str) {
        let locate = format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             const x = r.x + r.width / 2, y = r.y + r.height / 2; \
             const top = document.elementFromPoint(x, y); \
             return top && (top === e || e.contains(top)) ? {{ x, y }} : null; }})()"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let point = loop {
            let point = self.eval(&locate);
            if !point.is_null() {
                break point;
            }
            assert!(Instant::now() < deadline, "{selector} is never clickable");
            std::thread::sleep(Duration::from_millis(100));
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1 }),
            );
        }
    }

    fn screenshot(&mut self, path: &PathBuf) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).expect("writing the screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

/// Headless Chromium with its own profile, on a DevTools port it chose; stopped on drop.
struct Chromium {
    process: Process,
    port: u16,
    _profile: TempDir,
}

impl Chromium {
    fn start() -> Self {
        let binary = require_program("chromium", "chromium");
        let profile = TempDir::new("chromium");
        let mut cmd = Command::new(binary);
        cmd.args([
            "--headless",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            // Tests run as root in CI containers, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut process = Process::spawn("chromium", &mut cmd);
        let stderr = process.child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Read to the end, so that Chromium never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("DevTools listening on ws://").nth(1) {
                    let port = rest
                        .split('/')
                        .next()
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    if let (Some(port), Some(tx)) = (port, tx.take()) {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Chromium did not say where DevTools listens within 30 s");
        Chromium {
            process,
            port,
            _profile: profile,
        }
    }

    /// A DevTools connection to the page Chromium opened.
    fn page(&self) -> Cdp {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let targets = wait_for(Duration::from_secs(10), || {
            let list = http("GET", addr, "/json/list", &[], b"").json();
            list.as_array()?
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
        });
        Cdp::connect(&targets.expect("Chromium lists a page target"))
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.process.terminate(Duration::from_secs(5));
    }
}

/// Chromium on the proxy's console, logged in with the token.
fn open_console(proxy: &Proxy) -> (Chromium, Cdp) {
    let chromium = Chromium::start();
    let mut page = chromium.page();
    page.call("Runtime.enable", json!({}));
    page.call("Page.enable", json!({}));
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{}/dashboard", proxy.addr("system-api")) }),
    );
    page.wait_true("the token form", "!document.getElementById('login').hidden");
    page.eval(&format!(
        "document.getElementById('token').value = {TOKEN:?}; true"
    ));
    page.click("#login button[type=submit]");
    (chromium, page)
}

#[test]
fn the_console_previews_a_stream_through_whep_in_chromium() {
    let origin = crate::webrtc::peers::PyOrigin::start(true);
    // A fixed WHEP port: the page builds the preview's URL from the configured one.
    let whep = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::start(
        &[("system-api-token", TOKEN), ("http-api", &whep)],
        &[],
        Some(&origin.origin_toml("aiortc")),
    );
    let whip = format!(
        "http://{}/rtc/v1/whip/?app=live&stream=cam",
        proxy.addr("http-api")
    );
    let mut publisher = crate::webrtc::peers::client("publish", &whip, 120, false);
    publisher.wait(Duration::from_secs(20), "connected publisher", |v| {
        v["state"] == "connected"
    });

    let (_chromium, mut page) = open_console(&proxy);
    page.wait_true(
        "the WebRTC stream",
        "document.querySelector('#streams tr[data-stream$=\"/live/cam\"]')?.textContent.includes('webrtc publish')",
    );
    page.click("#streams tr[data-stream$=\"/live/cam\"] button[data-action=detail]");
    page.wait_true(
        "the stream's detail",
        "!document.getElementById('detail').hidden && \
         document.querySelector('#detail-clients tbody').textContent.includes('publish')",
    );
    page.click("#preview-start");
    page.wait_true(
        "the preview starting",
        "document.getElementById('preview-status').textContent !== ''",
    );
    page.wait_true(
        "the preview playing",
        "(() => { const v = document.getElementById('preview'); \
         return !v.hidden && v.videoWidth > 0 && v.currentTime > 1; })()",
    );
    // The browser is a WHEP player of the stream, on this proxy.
    let players = wait_for(Duration::from_secs(10), || {
        let streams = get(&proxy, "/api/v1/streams");
        let stream = streams["data"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "cam")?
            .clone();
        stream["sessions"]["clients"]
            .as_array()?
            .iter()
            .any(|c| c["protocol"] == "webrtc" && c["role"] == "play")
            .then_some(())
    });
    assert!(players.is_some(), "no WebRTC player listed");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    page.screenshot(&dir.join("console-preview.png"));
    page.click("#preview-stop");
    page.eval("true");
    assert!(
        page.errors.is_empty(),
        "the page logged JavaScript errors: {:?}",
        page.errors
    );
}

#[test]
fn the_console_in_chromium_shows_a_live_origin_and_stream_and_drains_the_origin() {
    let nginx = NginxRtmp::start(None);
    let toml = config_text("", &[("nginx-a", &nginx, false)]);
    let proxy = Proxy::start(&[("system-api-token", TOKEN)], &[], Some(&toml));
    let mut publisher = ffmpeg_publish(
        &format!("rtmp://{}/live/cam", proxy.addr("rtmp")),
        180,
        true,
        "flv",
    );
    assert_eq!(wait_published_on(&proxy, "cam"), "nginx-a");

    let chromium = Chromium::start();
    let mut page = chromium.page();
    page.call("Runtime.enable", json!({}));
    page.call("Page.enable", json!({}));
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{}/dashboard", proxy.addr("system-api")) }),
    );

    // Without the token the page asks for it and shows nothing.
    page.wait_true("the token form", "!document.getElementById('login').hidden");
    assert_eq!(
        page.eval(
            "document.getElementById('console').hidden && \
             document.querySelectorAll('#origins tbody tr, #streams tbody tr').length === 0"
        ),
        json!(true),
        "nothing is shown before the token"
    );
    page.eval(&format!(
        "document.getElementById('token').value = {TOKEN:?}; true"
    ));
    page.click("#login button[type=submit]");

    page.wait_true(
        "nginx-a up",
        "document.querySelector('#origins tr[data-origin=\"nginx-a\"] [data-state]')?.textContent === 'up'",
    );
    page.wait_true(
        "the stream with its RTMP publisher and a bitrate in",
        "(() => { const r = document.querySelector('#streams tr[data-stream$=\"/live/cam\"]'); \
         return !!r && r.cells[1].textContent.startsWith('nginx-a') \
           && r.cells[2].textContent.includes('rtmp publish') \
           && /[1-9].*bit\\/s/.test(r.cells[3].textContent); })()",
    );
    page.wait_true(
        "this proxy's balancer",
        "document.getElementById('proxy').textContent.includes('memory')",
    );

    // The stream's detail lists its publisher.
    page.click("#streams tr[data-stream$=\"/live/cam\"] button[data-action=detail]");
    page.wait_true(
        "the stream's detail",
        "!document.getElementById('detail').hidden && \
         document.querySelector('#detail-clients tbody').textContent.includes('publish')",
    );

    // Drain through the page; the API then says so.
    page.click("button[data-action=drain][data-origin=\"nginx-a\"]");
    let drained = wait_for(Duration::from_secs(10), || {
        let servers = get(&proxy, "/api/v1/servers");
        (server(&servers, "nginx-a")?["state"] == "draining").then_some(())
    });
    assert!(drained.is_some(), "the API never showed nginx-a draining");
    page.wait_true(
        "nginx-a draining",
        "document.querySelector('#origins tr[data-origin=\"nginx-a\"] [data-state]')?.textContent === 'draining'",
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    page.screenshot(&dir.join("console-dashboard.png"));

    // On a phone's width, the page fits: tables scroll inside their own boxes.
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
    );
    page.wait_true(
        "a page no wider than the phone",
        "document.documentElement.scrollWidth <= window.innerWidth",
    );
    page.screenshot(&dir.join("console-dashboard-phone.png"));

    // Events that came in after the last call.
    page.eval("true");
    assert!(
        page.errors.is_empty(),
        "the page logged JavaScript errors: {:?}",
        page.errors
    );
    assert!(still_running(&mut publisher), "the publisher ended");
}
