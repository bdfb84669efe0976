#!/usr/bin/env bash
# The POD agent on a site's box: Debian 12 or Raspberry Pi OS (bookworm), amd64 or arm64
# (docs/deploy.md "POD install"). Run as root from a clone of this repository:
#
#   sudo bash scripts/install-pod.sh --portal https://portal.example --key pbk_… \
#        --pod-id main-gate-pod --camera 'gate-1:Main gate=rtsp://…' […]
#
# Installs ffmpeg and python3-venv (apt), a system user `platebridge`, the package into
# /opt/platebridge/venv, /etc/platebridge (0750 root:platebridge), /var/lib/platebridge and the
# systemd unit platebridge-pod.service (enabled; started when systemd runs). With enroll options
# (--portal, --key, --camera, …: see `platebridge-pod enroll --help`) and no pod.yaml yet, it runs
# `platebridge-pod enroll`, which checks the portal, the key and every camera before writing.
# The key and secret may come from PLATEBRIDGE_POD_KEY / PLATEBRIDGE_STREAM_SECRET instead
# (sudo --preserve-env=…), which keeps them out of `ps`.
#
# Re-running upgrades in place: new code, the unit rewritten, the agent restarted; pod.yaml kept.
#   --uninstall   remove the unit and the venv; keep /etc/platebridge and /var/lib/platebridge
#   --purge       with --uninstall: also remove the POD's config, state and the user
#   --no-apt      do not install Debian packages (they must be there already)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"

die() { echo "install-pod: ERROR: $*" >&2; exit 1; }
say() { echo "install-pod: $*"; }

OPT=/opt/platebridge VENV=/opt/platebridge/venv ETC=/etc/platebridge STATE=/var/lib/platebridge
CONFIG=$ETC/pod.yaml UNIT=platebridge-pod.service UNIT_DIR=/etc/systemd/system USER_NAME=platebridge
UNINSTALL=0 PURGE=0 APT=1
ENROLL=()
while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --no-apt) APT=0; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    --force | --output | --output=*) die "$1 is not an installer option (the config is always $CONFIG)" ;;
    --*=*) ENROLL+=("$1"); shift ;;
    --*) [ $# -ge 2 ] || die "$1 needs a value"; ENROLL+=("$1" "$2"); shift 2 ;;
    *) die "unexpected argument (see --help)" ;;  # never echo it: it may be a secret
  esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: sudo bash scripts/install-pod.sh …"
[ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge goes with --uninstall"
systemd_running() { [ -d /run/systemd/system ]; }
# The portal installer (scripts/install-portal.sh) shares the venv, the user and the state dir.
portal_here() { ls "$UNIT_DIR"/platebridge-portal@.service >/dev/null 2>&1; }

# --- uninstall -----------------------------------------------------------------------------------
if [ "$UNINSTALL" = 1 ]; then
  [ ${#ENROLL[@]} -eq 0 ] || die "--uninstall takes no enroll options"
  if systemd_running; then
    systemctl disable --now "$UNIT" 2>/dev/null || true
  elif command -v systemctl >/dev/null 2>&1; then
    systemctl disable "$UNIT" 2>/dev/null || true
  fi
  rm -f "$UNIT_DIR/$UNIT"
  systemd_running && systemctl daemon-reload
  if portal_here; then
    say "keeping $VENV: the portal (platebridge-portal@.service) uses it"
  else
    rm -rf "$VENV"
    rmdir "$OPT" 2>/dev/null || true
  fi
  if [ "$PURGE" = 1 ]; then
    rm -f "$CONFIG" "$ETC/pod.env" "$ETC"/.pod.yaml.*
    rmdir "$ETC" 2>/dev/null || true
    if portal_here; then
      say "keeping $STATE and the user $USER_NAME: the portal uses them"
    else
      rm -rf "$STATE"
      id "$USER_NAME" >/dev/null 2>&1 && userdel "$USER_NAME"
    fi
    say "uninstalled and purged (config, state and user removed)"
  else
    say "uninstalled; kept $ETC (config) and $STATE (state): --uninstall --purge removes them"
  fi
  exit 0
fi

# --- packages ------------------------------------------------------------------------------------
os_id="" os_version=""
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  os_id="$(. /etc/os-release && echo "${ID:-}")" os_version="$(. /etc/os-release && echo "${VERSION_ID:-}")"
fi
arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
say "installing on ${os_id:-unknown} ${os_version} ($arch)"
PKGS=(python3 python3-venv ffmpeg ca-certificates)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$APT" = 1 ] || die "--no-apt, but these Debian packages are missing: ${missing[*]}"
  case "$os_id $os_version" in
    "debian 12" | "raspbian 12" | "ubuntu 24.04") ;;
    *) [ "${PLATEBRIDGE_SKIP_DISTRO_CHECK:-}" = 1 ] \
      || die "unsupported distribution '${os_id:-unknown} ${os_version}' (Debian 12 / Raspberry Pi OS bookworm): install ${missing[*]} yourself or set PLATEBRIDGE_SKIP_DISTRO_CHECK=1" ;;
  esac
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these packages yourself: ${missing[*]}"
  say "installing Python venv support and ffmpeg/ffprobe (apt): ${missing[*]}"
  apt-get update -qq || die "apt-get update failed (check the network and /etc/apt/sources.list*)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
fi

# --- user, directories, code ---------------------------------------------------------------------
if ! id "$USER_NAME" >/dev/null 2>&1; then
  say "creating the system user $USER_NAME (no login shell)"
  useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
fi
install -d -m 0755 -o root -g root "$OPT"
install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$STATE"

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  say "$VENV is broken (the system Python changed?): recreating it"
  rm -rf "$VENV"
fi
if [ -x "$VENV/bin/platebridge-pod" ]; then
  say "upgrading $VENV from $REPO (was $("$VENV/bin/platebridge-pod" --version 2>/dev/null || echo '?'))"
else
  say "installing the agent into $VENV from $REPO"
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip || die "pip could not upgrade itself (network? PyPI?)"
# Built from a clean copy of the checkout (no stale build/ output, nothing written into the
# clone); pip replaces the installed copy even when the version number is unchanged.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/src" "$stage/"
find "$stage" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade "$stage" || die "pip install of $REPO failed"
say "installed: $("$VENV/bin/platebridge-pod" --version)"

# --- config --------------------------------------------------------------------------------------
if [ -e "$CONFIG" ]; then
  say "keeping $CONFIG (to enroll again: $VENV/bin/platebridge-pod enroll … --output $CONFIG --force)"
  [ ${#ENROLL[@]} -eq 0 ] || say "the enroll options given were not used"
elif [ ${#ENROLL[@]} -gt 0 ] || [ -n "${PLATEBRIDGE_POD_KEY:-}" ]; then
  say "enrolling: one heartbeat to the portal, a probe of each camera, then $CONFIG"
  set +e
  "$VENV/bin/platebridge-pod" enroll --output "$CONFIG" "${ENROLL[@]}"
  code=$?
  set -e
  [ "$code" -eq 0 ] || die "enroll failed (exit $code, nothing written); fix the answer above and run this again"
else
  say "no $CONFIG yet and no --portal/--key given: the agent stays stopped until you enroll"
fi
for f in "$CONFIG" "$ETC/pod.env"; do  # readable by the agent, by nobody else
  if [ -e "$f" ]; then chown root:"$USER_NAME" "$f" && chmod 0640 "$f"; fi
done

# --- systemd -------------------------------------------------------------------------------------
install -m 0644 "$REPO/packaging/systemd/$UNIT" "$UNIT_DIR/$UNIT"
if command -v systemctl >/dev/null 2>&1; then
  systemd_running && systemctl daemon-reload
  systemctl enable "$UNIT" >/dev/null 2>&1 || die "systemctl enable $UNIT failed"
  say "$UNIT installed and enabled"
else
  say "systemctl not found: $UNIT_DIR/$UNIT installed, not enabled"
fi
if ! systemd_running; then
  say "systemd is not running here: not started (the unit runs: runuser -u $USER_NAME -- $VENV/bin/platebridge-pod run --config $CONFIG)"
elif [ -e "$CONFIG" ]; then
  systemctl restart "$UNIT" || die "the agent did not start: journalctl -u platebridge-pod"
  say "agent (re)started: systemctl status platebridge-pod; journalctl -u platebridge-pod -f"
fi
say "done"
