#!/usr/bin/env bash
# Runs the whole test suite. On a fresh Debian machine it first installs what the tests
# need (Debian packages, when missing and when running as root; cargo-nextest), so that a
# test never passes by skipping: a test whose program is missing fails and names it.
set -euo pipefail
cd "$(dirname "$0")/.."

# program-or-file -> Debian package
requirements=(
  "ffmpeg:ffmpeg"
  "ffprobe:ffmpeg"
  "redis-server:redis-server"
  "nginx:nginx"
  "/usr/lib/nginx/modules/ngx_rtmp_module.so:libnginx-mod-rtmp"
  "srt-live-transmit:srt-tools"
  "python3:python3"
  "systemd-analyze:systemd"
  "prlimit:util-linux"
  "redis-cli:redis-tools"
  "chromium:chromium"
  "openssl:openssl"
  "curl:curl"
  # the load generators in benches/ measure against HAProxy in mode tcp
  "haproxy:haproxy"
)
missing=()
for req in "${requirements[@]}"; do
  what=${req%%:*} package=${req#*:}
  if [[ $what == /* ]]; then [[ -e $what ]] && continue; else command -v "$what" >/dev/null 2>&1 && continue; fi
  [[ " ${missing[*]-} " == *" $package "* ]] || missing+=("$package")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1 && [[ ${NO_INSTALL:-} != 1 ]]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: missing ${missing[*]}; the tests that need them will fail (install: apt-get install -y ${missing[*]})" >&2
  fi
fi
# nginx is started by the tests themselves; a packaged service must not hold port 80.
if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx redis-server >/dev/null 2>&1 || true; fi

# Python packages for the WebRTC tests (aiortc as a real WebRTC peer).
if [[ -f scripts/test-python-requirements.txt ]] && command -v python3 >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  pip=(python3 -m pip install --quiet --disable-pip-version-check -r scripts/test-python-requirements.txt)
  # Debian's own python3 refuses system-wide installs unless told (PEP 668).
  "${pip[@]}" 2>/dev/null || "${pip[@]}" --break-system-packages || \
    echo "warning: could not install the Python test requirements; the WebRTC tests will fail and say so" >&2
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi

cargo fmt --all --check || { echo "the tree is not formatted: run cargo fmt --all" >&2; exit 1; }
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc --quiet

# Every library crate packages as crates.io would take it, in dependency order. One
# `cargo package` call for all of them: cargo (>= 1.84) verifies each tarball against a
# local registry overlay holding the others, so dependents verify before their
# dependencies are published (no --no-verify needed); cargo orders them by dependency.
# --allow-dirty: a checkout with local edits or build leftovers still packages. Verifying
# builds each crate from its tarball: seconds when the dependencies are built, a few
# minutes on an empty target directory.
library_crates=(rtmp-peek flv-http hls-rewrite stun-ufrag srt-streamid lb-core lb-memory lb-redis proxy-server)
# The overlay's sources look immutable to cargo, and they are not from one run to the
# next: cargo never unpacks a name-version again once $CARGO_HOME/registry/src/-<hash of
# the overlay's path>/ holds it, and the unpacked files all carry the tarball's fixed
# mtime, so builds of them from an earlier run look fresh. Drop both, so verification
# builds this run's tarballs. (Overlay registries are the directories whose names start
# with '-'; our crates' other fingerprints only cost a rebuild of our own crates.)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
target=${CARGO_TARGET_DIR:-$PWD/target}
for crate in "${library_crates[@]}"; do
  rm -rf "$cargo_home"/registry/src/-*/"$crate"-[0-9]* \
    "$cargo_home"/registry/cache/-*/"$crate"-[0-9]*.crate \
    "$target"/debug/.fingerprint/"$crate"-[0-9a-f]*
done
cargo package --quiet --allow-dirty "${library_crates[@]/#/--package=}"

# Embedding as a user would: a project outside the workspace depends on rtmp-peek and
# hls-rewrite by version; [patch.crates-io] points those versions at the tarballs just
# packaged (not at the source tree), so the published contents are what builds and runs.
embed_check() {
  local target=${CARGO_TARGET_DIR:-$PWD/target} dir
  dir=$(mktemp -d)
  embed_dir=$dir
  trap 'rm -rf "$embed_dir"' EXIT
  mkdir -p "$dir/vendor" "$dir/src"
  for crate in rtmp-peek hls-rewrite; do
    tar -xzf "$target/package/$crate-0.1.0.crate" -C "$dir/vendor"
  done
  cat >"$dir/Cargo.toml" <<'TOML'
[package]
name = "embed-check"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rtmp-peek = "0.1.0"
hls-rewrite = "0.1.0"

[patch.crates-io]
rtmp-peek = { path = "vendor/rtmp-peek-0.1.0" }
hls-rewrite = { path = "vendor/hls-rewrite-0.1.0" }

[workspace]
TOML
  cat >"$dir/src/main.rs" <<'RUST'
//! A user's tool: learns the stream an RTMP publisher names, and rewrites an HLS playlist.
use rtmp_peek::{ClientConfig, ClientSession, OriginRequest, ServerConfig, ServerEvent, ServerSession, StreamKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let request = OriginRequest::new(StreamKind::Publish, "live", "rtmp://h/live", "cam?k=1")?;
    let mut publisher = ClientSession::new(request, ClientConfig::default())?;
    let mut front = ServerSession::new(ServerConfig::default());
    let identified = loop {
        front.feed(&publisher.take_output())?;
        publisher.feed(&front.take_output())?;
        if let Some(ServerEvent::Identified(id)) = front.poll_event() {
            break id;
        }
    };
    let playlist = "#EXTM3U\n#EXTINF:2.0,\nseg-1.ts\n";
    let rewritten = hls_rewrite::rewrite(playlist, hls_rewrite::DEFAULT_TOKEN_PARAM, "t1", "/live/cam.m3u8")?;
    println!("{} {} {}", identified.app, identified.stream, rewritten.lines().last().unwrap_or(""));
    Ok(())
}
RUST
  # The workspace's lock file pins the same third-party versions the workspace tested.
  cp Cargo.lock "$dir/"
  local out
  out=$(cargo run --quiet --manifest-path "$dir/Cargo.toml")
  [[ $out == "live cam?k=1 seg-1.ts?spbhid=t1" ]] || {
    echo "embedding check: the external project printed '$out', expected 'live cam?k=1 seg-1.ts?spbhid=t1'" >&2
    return 1
  }
  echo "embedding check: an external project built on rtmp-peek and hls-rewrite 0.1.0 ran"
}
embed_check

# Supply chain: licences, banned/duplicate crates and sources of the dependency tree.
# Advisories are left out: the advisory database cannot be fetched here. Where it can,
# run `cargo deny check` (all four checks, advisories included); see README.md.
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install cargo-deny --locked
fi
# Duplicate versions are warnings (deny.toml); their inclusion graphs would drown the log.
cargo deny check --hide-inclusion-graph licenses bans sources
