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
