//! The Python WebRTC peers (aiortc) of tests/e2e/webrtc_peers/: an origin answering with
//! SRS's paths and a WHIP publisher / WHEP player, each a process stopped on drop, whose
//! JSON event lines are collected.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{http, require_program, Process};

const INSTALL: &str = "python3 -m pip install -r scripts/test-python-requirements.txt";

/// Fails the test, naming the package and how to install it, without python3 and aiortc.
pub fn require_aiortc() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(python) = CHECKED.get() {
        return python.clone();
    }
    let python = require_program("python3", "python3 python3-pip");
    let check = Command::new(&python)
        .args(["-c", "import aiortc, aioice, av"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running python3: {e}"));
    assert!(
        check.status.success(),
        "this test needs the Python package `aiortc` (a real WebRTC stack for the origin and the clients), which python3 cannot import: run `{INSTALL}` (or scripts/test.sh, which does it)\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    CHECKED.get_or_init(|| python).clone()
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/webrtc_peers")
        .join(name)
}

/// A Python peer process and its events.
pub struct Peer {
    pub name: String,
    events: Receiver<Value>,
    pub seen: Vec<Value>,
    stderr: Arc<Mutex<String>>,
    _process: Process,
}

impl Peer {
    fn spawn(name: &str, script_name: &str, args: &[&str]) -> Self {
        Self::spawn_with_env(name, script_name, args, &[])
    }

    fn spawn_with_env(name: &str, script_name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let python = require_aiortc();
        let mut cmd = Command::new(python);
        cmd.arg("-u").arg(script(script_name)).args(args);
        cmd.envs(env.iter().copied());
        // No __pycache__ in the source tree.
        cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        // stdin stays open while the process lives: the origin runs until it closes.
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut process = Process::spawn(name, &mut cmd);
        let stdout = process.child.stdout.take().expect("piped stdout");
        let mut err_pipe = process.child.stderr.take().expect("piped stderr");
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Peer {
            name: name.to_owned(),
            events,
            seen: Vec::new(),
            stderr,
            _process: process,
        }
    }

    /// The first event (seen before or arriving within `timeout`) that `check` accepts.
    pub fn wait(&mut self, timeout: Duration, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.seen.iter().find(|v| check(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if check(&v) {
                        return v;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "{}: no {what} within {timeout:?}; events: {:?}\nstderr:\n{}",
            self.name,
            self.seen,
            self.stderr()
        )
    }

    /// The first event named `event`.
    pub fn event(&mut self, event: &str, timeout: Duration) -> Value {
        self.wait(timeout, event, |v| v["event"] == event)
    }

    /// Waits until a player has decoded at least `n` frames, and returns the count.
    pub fn frames_at_least(&mut self, n: u64, timeout: Duration) -> u64 {
        let v = self.wait(timeout, &format!("{n} decoded frames"), |v| {
            v["event"] == "frames" && v["count"].as_u64().unwrap_or(0) >= n
        });
        v["count"].as_u64().unwrap_or(0)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// The aiortc origin (NOT SRS): SRS's WHIP/WHEP paths and replies, one media port (`rtc`)
/// unless started without the demultiplexer.
pub struct PyOrigin {
    pub api: u16,
    pub rtc: Option<u16>,
    pub peer: Peer,
}

impl PyOrigin {
    pub fn start(one_media_port: bool) -> Self {
        let args: &[&str] = if one_media_port { &[] } else { &["--no-mux"] };
        let mut peer = Peer::spawn("aiortc origin", "origin.py", args);
        let ready = peer.event("ready", Duration::from_secs(20));
        let api = ready["api"].as_u64().expect("api port") as u16;
        let rtc = ready["rtc"].as_u64().map(|p| p as u16);
        PyOrigin { api, rtc, peer }
    }

    /// The `[[origins]]` entry listing this origin statically.
    pub fn origin_toml(&self, name: &str) -> String {
        let mut toml = format!("[[origins]]\nname = \"{name}\"\napi = {}\n", self.api);
        if let Some(rtc) = self.rtc {
            toml.push_str(&format!("rtc = \"udp://127.0.0.1:{rtc}\"\n"));
        }
        toml
    }

    /// What the origin saw: requests, frames decoded per published stream, sessions.
    pub fn state(&self) -> Value {
        http(
            "GET",
            ([127, 0, 0, 1], self.api).into(),
            "/debug/state",
            &[],
            b"",
        )
        .json()
    }

    /// Frames decoded from the publisher of `app/stream`.
    pub fn frames(&self, stream: &str) -> u64 {
        self.state()["frames"][stream].as_u64().unwrap_or(0)
    }
}

/// A WHIP publisher (`publish`) or WHEP player (`play`) running for `seconds`.
pub fn client(mode: &str, url: &str, seconds: u32, delete: bool) -> Peer {
    client_with_env(mode, url, seconds, delete, &[])
}

/// As [`client`], with environment variables (`SSL_CERT_FILE` naming a test CA for an
/// `https://` URL).
pub fn client_with_env(
    mode: &str,
    url: &str,
    seconds: u32,
    delete: bool,
    env: &[(&str, &str)],
) -> Peer {
    let seconds = seconds.to_string();
    let mut args = vec![mode, url, "--seconds", seconds.as_str()];
    if delete {
        args.push("--delete");
    }
    Peer::spawn_with_env(&format!("aiortc {mode}er"), "client.py", &args, env)
}
