#!/usr/bin/env bash
# Installs everything PlateBridge uses on a fresh Debian 12 / Ubuntu 24.04 machine (idempotent,
# and fast when all is installed: no apt-get update unless a package is missing). See
# docs/install.md (and scripts/fresh-machine-check.sh, which proves it in a fresh root filesystem).
# PLATEBRIDGE_SKIP_DISTRO_CHECK=1 allows other distributions.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: ERROR: $*" >&2; exit 1; }

# One group per line: why, then the Debian packages.
GROUPS_WHY=(
  "Python 3 and venv (the project's virtualenv in .venv)"
  "ffmpeg/ffprobe (the POD's RTSP->HLS remux, test cameras)"
  "GStreamer RTSP server (the demo's and the tests' RTSP cameras)"
  "Chromium and the library Playwright's driver needs (the browser tests and screenshots)"
  "ip, nft, ps, openssl, curl (network fault tests, process checks, TLS tests, fresh-machine check)"
  "nginx and wrk (the benchmarks, the nginx + TLS deployment test)"
  "systemd-analyze (checks of the shipped systemd units; systemd need not run)"
)
GROUPS_PKGS=(
  "python3 python3-venv python3-pip"
  "ffmpeg"
  "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gir1.2-gst-rtsp-server-1.0 python3-gi"
  "chromium libatomic1"
  "iproute2 nftables procps openssl curl ca-certificates"
  "nginx-light wrk"
  "systemd"
)
os_id="" os_version=""
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  os_id="$(. /etc/os-release && echo "${ID:-}")"
  # shellcheck disable=SC1091
  os_version="$(. /etc/os-release && echo "${VERSION_ID:-}")"
fi
# Chromium: on Ubuntu the apt package is only a wrapper that installs the snap (and snapd), which
# runs in no container or chroot and gives no /usr/bin/chromium; there Playwright's own build is
# used instead (below, after the venv).
if [ "$os_id" = ubuntu ]; then
  GROUPS_WHY[3]="the library Playwright's driver needs (the browser tests)"
  GROUPS_PKGS[3]="libatomic1"
fi
# Node.js + npm (front-end packages) only when no node/npm is on PATH already (e.g. /usr/local/bin).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  GROUPS_WHY+=("Node.js and npm (front-end packages from package-lock.json)")
  GROUPS_PKGS+=("nodejs npm")
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=() why=()
for i in "${!GROUPS_PKGS[@]}"; do
  group_missing=()
  for pkg in ${GROUPS_PKGS[$i]}; do
    installed "$pkg" || group_missing+=("$pkg")
  done
  if [ ${#group_missing[@]} -gt 0 ]; then
    missing+=("${group_missing[@]}")
    why+=("setup: installing ${GROUPS_WHY[$i]}: ${group_missing[*]}")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  case "$os_id $os_version" in
    "debian 12" | "ubuntu 24.04") ;;
    *)
      [ "${PLATEBRIDGE_SKIP_DISTRO_CHECK:-}" = 1 ] \
        || die "unsupported distribution '${os_id:-unknown} ${os_version}' (Debian 12 and Ubuntu 24.04 are supported); install the packages yourself or set PLATEBRIDGE_SKIP_DISTRO_CHECK=1 to try apt anyway. Missing: ${missing[*]}"
      ;;
  esac
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these packages yourself: ${missing[*]}"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and sudo is not installed; run as root or install sudo. Missing: ${missing[*]}"
    sudo -n true 2>/dev/null || echo "setup: sudo will ask for your password (installing Debian packages)"
    SUDO=(sudo)
  fi
  printf '%s\n' "${why[@]}"
  "${SUDO[@]}" apt-get update -qq || die "apt-get update failed (check the network and /etc/apt/sources.list*)"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv || die "python3 -m venv failed (is python3-venv installed?)"
  .venv/bin/pip install -q --upgrade pip
fi
stamp=.venv/.platebridge-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project into .venv"
  .venv/bin/pip install -q -e '.[dev]' || die "pip install -e '.[dev]' failed"
  touch "$stamp"
fi

# Ubuntu: Playwright's Chromium (and the libraries it needs) when there is no /usr/bin/chromium.
# Only the browser tests use it, so failing here (no access to Playwright's downloads) warns.
if [ "$os_id" = ubuntu ] && [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing Chromium for the browser tests (Playwright's build: Ubuntu has no deb)"
  if ! out="$(.venv/bin/python -m playwright install --with-deps chromium 2>&1)"; then
    reason="$(grep -m 1 -E 'Error|ERROR|Failed|failed' <<<"$out" || tail -n 1 <<<"$out")"
    echo "setup: WARNING: could not install Playwright's Chromium (${reason# *});" \
      "the demo does not need it, the browser tests do:" \
      ".venv/bin/python -m playwright install --with-deps chromium" >&2
  fi
fi

if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    command -v npm >/dev/null 2>&1 || die "npm not found (install nodejs and npm)"
    echo "setup: installing front-end packages (npm ci, npm $(npm --version))"
    npm ci --silent --no-audit --no-fund || die "npm ci failed"
    touch node_modules
  fi
fi
