#!/usr/bin/env bash
# Proves the README's first command on a fresh machine: builds a minimal root filesystem with
# debootstrap (variant minbase, plus ca-certificates, git and sudo), clones this repository into
# it, runs `bash scripts/demo.sh` there (as a user with sudo) until the demo says it is running,
# then from inside fetches the login page, signs in, lists the cameras, gets a stream token and
# fetches the playlist and one segment through the portal's proxy; stops the demo with Ctrl-C
# (SIGINT) and prints one result line with the times. Not part of the test suite: it downloads
# several hundred MB. See docs/install.md.
#
#   sudo bash scripts/fresh-machine-check.sh [--keep] [--root] [debian12|ubuntu2404] [REPO]
#
#   --keep  keep debootstrap's download as a tarball (reused by the next --keep run) and keep
#           the root filesystem afterwards; default: all fresh, the rootfs removed on success
#   --root  run the demo as root instead of as a user with sudo
#   REPO    the checkout to clone (default: this one); its committed HEAD is what is tested
# Environment: FRESH_WORK (/var/tmp/platebridge-fresh), FRESH_TIMEOUT (2400 s for the demo to
# come up), MIRROR (Debian: the host's apt mirror; Ubuntu: http://archive.ubuntu.com/ubuntu),
# FRESH_PORTAL_PORT, FRESH_POD_PORT, FRESH_CAMERA_PORTS (default: the first free ports from 18080,
# 18000 and 18554: the chroot shares the host's network, so not the demo's defaults).
set -euo pipefail
# The whole script is one block, read before it runs: editing the file mid-run cannot derail it.
{
FRESH_NAME=fresh-machine-check
# shellcheck source=scripts/lib/rootfs.sh
. "$(dirname "$0")/lib/rootfs.sh"
fresh_enter_namespace "$@"  # root; a private mount namespace: no mount outlives the check

KEEP=0 AS_ROOT=0 TARGET=debian12 REPO=""
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --root) AS_ROOT=1 ;;
    debian12 | ubuntu2404) TARGET="$1" ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) REPO="$1" ;;
  esac
  shift
done
src="${REPO:-$(dirname "$0")/..}"
REPO="$(cd "$src" 2>/dev/null && git rev-parse --show-toplevel 2>/dev/null)" \
  || die "'$src' is neither debian12, ubuntu2404 nor a git checkout"
COMMIT="$(git -C "$REPO" rev-parse --short HEAD)"  # until the clone says which

TIMEOUT="${FRESH_TIMEOUT:-2400}"
WORK="${FRESH_WORK:-/var/tmp/platebridge-fresh}/$TARGET"
ROOT="$WORK/rootfs"
DEMO_LOG="$WORK/demo.log"
START=$SECONDS

# --- the host: debootstrap, the mirror --------------------------------------------------------

case "$TARGET" in
  debian12)
    SUITE=bookworm
    MIRROR="${MIRROR:-$(host_mirror bookworm)}"
    [ -n "$MIRROR" ] || die "no Debian bookworm mirror in the host's apt sources: set MIRROR=URL"
    SECURITY="$(host_mirror bookworm-security)"
    SECURITY="${SECURITY:-${MIRROR%/debian}/debian-security}"
    SOURCES="deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY bookworm-security main"
    ;;
  ubuntu2404)
    SUITE=noble
    MIRROR="${MIRROR:-http://archive.ubuntu.com/ubuntu}"
    # As a standard Ubuntu install has them (universe holds GStreamer's RTSP server, wrk, ...).
    SOURCES="deb $MIRROR noble main restricted universe multiverse
deb $MIRROR noble-updates main restricted universe multiverse
deb $MIRROR noble-security main restricted universe multiverse"
    ;;
esac

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  log "installing on the host: ${need[*]}"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    "${need[@]}" >/dev/null; }; then
    die "cannot install ${need[*]} on the host"
  fi
fi
curl -sfI -m 10 "$MIRROR/dists/$SUITE/Release" >/dev/null \
  || die "the mirror $MIRROR does not answer for $SUITE (set MIRROR=...)"

# --- clean-up: always, in every way the check can end -----------------------------------------

DEMO_PID=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local code=$?
  if [ -n "$DEMO_PID" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
    kill -INT -- "-$DEMO_PID" 2>/dev/null || true
    sleep 5
  fi
  rootfs_release
  if [ "$code" -ne 0 ]; then
    echo "fresh-machine-check: FAIL $TARGET (commit $COMMIT) after $(elapsed $((SECONDS - START)))." \
      "Logs: $WORK/debootstrap.log, $DEMO_LOG; rootfs kept in $ROOT" >&2
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the root filesystem ----------------------------------------------------------------------

rootfs_clear
rm -f "$DEMO_LOG"
START=$SECONDS  # the times are the check's own, not the removal of an old rootfs

# shellcheck disable=SC2054  # debootstrap's lists are comma-separated
DB_ARGS=(--variant=minbase --include=ca-certificates,git,sudo)
if [ "$TARGET" = ubuntu2404 ]; then
  # shellcheck disable=SC2054
  DB_ARGS+=(--components=main,universe)
  if [ -r /usr/share/keyrings/ubuntu-archive-keyring.gpg ]; then
    DB_ARGS+=(--keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg)
  else
    # Only the bootstrap is unverified: apt inside verifies against the keyring it installed.
    log "WARNING: no Ubuntu archive keyring on this host: the bootstrap is not GPG-checked"
    DB_ARGS+=(--no-check-gpg)
  fi
fi
DB_SCRIPT=()
[ -e "/usr/share/debootstrap/scripts/$SUITE" ] || DB_SCRIPT=(/usr/share/debootstrap/scripts/gutsy)

: >"$WORK/debootstrap.log"
rootfs_debootstrap "$SUITE" "$MIRROR" "$KEEP"
rootfs_configure "$SOURCES"
rootfs_mount
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOT/dev/shm"

if [ "$AS_ROOT" = 1 ]; then
  USER_NAME=root HOME_DIR=/root
else
  # A new user as a person would have one: in group sudo; NOPASSWD since nobody types here.
  USER_NAME=pb HOME_DIR=/home/pb
  chroot "$ROOT" useradd --create-home --shell /bin/bash --groups sudo "$USER_NAME"
  echo "$USER_NAME ALL=(ALL:ALL) NOPASSWD: ALL" >"$ROOT/etc/sudoers.d/$USER_NAME"
  chmod 440 "$ROOT/etc/sudoers.d/$USER_NAME"
fi
git clone --quiet "$REPO" "$ROOT$HOME_DIR/platebridge"
COMMIT="$(git -C "$ROOT$HOME_DIR/platebridge" rev-parse --short HEAD)"
chroot "$ROOT" chown -R "$USER_NAME:" "$HOME_DIR/platebridge"
log "cloned $REPO at $COMMIT into $HOME_DIR/platebridge (user $USER_NAME)"

# --- the README's first command ----------------------------------------------------------------

in_chroot_env=(/usr/bin/env -i "HOME=$HOME_DIR" "USER=$USER_NAME" "LOGNAME=$USER_NAME"
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" LANG=C.UTF-8 TERM=dumb
  ${TLS_ENV[@]+"${TLS_ENV[@]}"})
# The chroot shares the host's network: ports that are free now, from FRESH_* or else the first
# free ones from 18080 (portal), 18000 (POD), 18554 (cameras).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_from() {
  local p=$1
  while port_busy "$p" || [[ " $taken " == *" $p "* ]]; do p=$((p + 1)); done
  echo "$p"
}
pick_ports() {
  taken=""
  if [ -n "${FRESH_PORTAL_PORT:-}${FRESH_POD_PORT:-}${FRESH_CAMERA_PORTS:-}" ]; then
    PORTAL_PORT="${FRESH_PORTAL_PORT:-18080}" POD_PORT="${FRESH_POD_PORT:-18000}"
    CAMERA_PORTS="${FRESH_CAMERA_PORTS:-18554,18555}"
    local p
    for p in "$PORTAL_PORT" "$POD_PORT" ${CAMERA_PORTS//,/ }; do
      if port_busy "$p"; then die "port $p (FRESH_*) is in use on this machine"; fi
    done
  else
    PORTAL_PORT="$(free_from 18080)"
    taken+=" $PORTAL_PORT"
    POD_PORT="$(free_from 18000)"
    taken+=" $POD_PORT"
    local c1 c2
    c1="$(free_from 18554)"
    taken+=" $c1"
    c2="$(free_from $((c1 + 1)))"
    CAMERA_PORTS="$c1,$c2"
  fi
}

# No job control here, so a background job is no group leader: setsid makes it one (its pid is
# the group id), which is what a terminal's Ctrl-C reaches.
start_demo() {
  pick_ports
  log "running 'bash scripts/demo.sh' in the chroot, ports $PORTAL_PORT (portal)," \
    "$POD_PORT (POD), $CAMERA_PORTS (cameras) (log: $DEMO_LOG)"
  setsid chroot --userspec="$USER_NAME:$USER_NAME" "$ROOT" "${in_chroot_env[@]}" \
    "PORTAL_PORT=$PORTAL_PORT" "POD_PORT=$POD_PORT" "CAMERA_PORTS=$CAMERA_PORTS" \
    /bin/bash -c 'cd ~/platebridge && exec bash scripts/demo.sh' </dev/null >>"$DEMO_LOG" 2>&1 &
  DEMO_PID=$!
}

T1=$SECONDS
T_SETUP="" T_UP="" T_RESTART="" attempt=1
start_demo
while :; do
  if [ -z "$T_SETUP" ] && grep -qs '^demo: ' "$DEMO_LOG"; then
    T_SETUP=$((SECONDS - T1))
    log "setup.sh done in $(elapsed $T_SETUP); the demo is starting"
  fi
  if grep -qs '^PlateBridge demo is running\.$' "$DEMO_LOG"; then
    T_UP=$((SECONDS - ${T_RESTART:-$((T1 + ${T_SETUP:-0}))}))  # the last attempt's
    break
  fi
  if ! kill -0 "$DEMO_PID" 2>/dev/null; then
    wait "$DEMO_PID" || true
    # Another program took a port during setup: the demo says so; run it again (setup.sh is
    # then a no-op, which is worth seeing too).
    if [ "$attempt" -lt 3 ] && grep -qs '^demo: port [0-9]* is in use' "$DEMO_LOG"; then
      attempt=$((attempt + 1))
      log "$(grep '^demo: port [0-9]* is in use' "$DEMO_LOG" | tail -n 1); again with other ports"
      T_RESTART=$SECONDS
      start_demo
      continue
    fi
    tail -n 30 "$DEMO_LOG" >&2
    die "the demo exited before it was running (see $DEMO_LOG)"
  fi
  [ $((SECONDS - T1)) -lt "$TIMEOUT" ] || { tail -n 30 "$DEMO_LOG" >&2; die "no demo after ${TIMEOUT}s"; }
  sleep 2
done
T_SETUP="${T_SETUP:-0}"
log "the demo is running ($(elapsed $T_UP) after setup)"

# --- from inside: the login page, a sign-in, the cameras, a token, the playlist ---------------

PB_EMAIL="$(sed -n 's/^  E-mail: *//p' "$DEMO_LOG" | tail -n 1)"
PB_PASSWORD="$(sed -n 's/^  Password: *//p' "$DEMO_LOG" | tail -n 1)"
if [ -z "$PB_EMAIL" ] || [ -z "$PB_PASSWORD" ]; then die "the demo printed no login"; fi
cat >"$ROOT/tmp/fresh-probe.sh" <<'PROBE'
set -euo pipefail
P="http://127.0.0.1:$PORTAL_PORT"
fail() { echo "probe: FAIL: $*" >&2; exit 1; }
# req METHOD PATH [JSON]: the body on stdout if 2xx, else fail with the status and the body.
req() {
  local args=(-s -o /tmp/probe.body -w '%{http_code}' -X "$1" "$P$2")
  [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  local code
  code="$(curl "${args[@]}")" || fail "$1 $2: curl failed"
  case "$code" in 2??) cat /tmp/probe.body ;; *) fail "$1 $2: HTTP $code $(head -c 300 /tmp/probe.body)" ;; esac
}
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

req GET /login >/tmp/login.html
grep -q 'action="/login"' /tmp/login.html && grep -q 'name="password"' /tmp/login.html \
  || fail "GET /login: 200 but no login form"
echo "probe: GET /login 200, login form"
login="$(python3 -c 'import json, os; print(json.dumps({"email": os.environ["PB_EMAIL"], "password": os.environ["PB_PASSWORD"]}))')"
TOKEN="$(req POST /api/auth/login "$login" | field access_token)"
echo "probe: POST /api/auth/login 200, bearer token"
read -r pod cam count < <(req GET /api/cameras | python3 -c '
import json, sys
cams = [c for c in json.load(sys.stdin)["cameras"] if c["streamable"]]
print(cams[0]["pod_id"], cams[0]["id"], len(cams)) if cams else print("- - 0")')
[ "$count" -ge 1 ] || fail "GET /api/cameras: no streamable camera"
echo "probe: GET /api/cameras 200, $count streamable cameras; using $cam on $pod"
body="$(python3 -c 'import json, sys; print(json.dumps({"pod_id": sys.argv[1], "camera_id": sys.argv[2]}))' "$pod" "$cam")"
proxy="$(req POST /api/pod/stream-token "$body" | field proxy_url)"
echo "probe: POST /api/pod/stream-token 200, proxy URL"
TOKEN=""  # the playlist authorises itself with the stream token in its URL, as a player would
for _ in $(seq 60); do  # the POD's ffmpeg may still be writing its first segments
  code="$(curl -s -o /tmp/playlist.m3u8 -w '%{http_code}' "$P$proxy")" || code=000
  [ "$code" = 200 ] && grep -qv '^#' /tmp/playlist.m3u8 && break
  sleep 2
done
[ "$code" = 200 ] || fail "GET the proxied playlist: HTTP $code $(head -c 300 /tmp/playlist.m3u8)"
[ "$(head -n 1 /tmp/playlist.m3u8 | tr -d '\r')" = "#EXTM3U" ] || fail "the playlist is not #EXTM3U"
segment="$(grep -v '^#' /tmp/playlist.m3u8 | grep -v '^$' | tail -n 1)"
echo "probe: GET the proxied playlist 200, #EXTM3U, $(grep -c '^#EXTINF' /tmp/playlist.m3u8) segments"
size="$(curl -sf -o /tmp/segment.ts -w '%{size_download}' "$P$segment")" || fail "GET a segment failed"
[ "$(head -c 1 /tmp/segment.ts | od -An -tx1 | tr -d ' ')" = 47 ] || fail "the segment is not MPEG-TS"
echo "probe: GET one segment 200, $size bytes of MPEG-TS"
PROBE
T2=$SECONDS
chroot "$ROOT" "${in_chroot_env[@]}" "PORTAL_PORT=$PORTAL_PORT" "PB_EMAIL=$PB_EMAIL" \
  "PB_PASSWORD=$PB_PASSWORD" /bin/bash /tmp/fresh-probe.sh || die "the checks from inside failed"
T_CHECKS=$((SECONDS - T2))

# --- stop it as Ctrl-C would ------------------------------------------------------------------

log "stopping the demo (SIGINT to its process group)"
kill -INT -- "-$DEMO_PID"
for _ in $(seq 60); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 1; done
kill -0 "$DEMO_PID" 2>/dev/null && die "the demo did not stop within 60 s of SIGINT"
wait "$DEMO_PID" && demo_code=0 || demo_code=$?
DEMO_PID=""
grep -q '^demo: stopped\.$' "$DEMO_LOG" || die "the demo did not say 'demo: stopped.'"
[ "$demo_code" -eq 0 ] || die "the demo exited with $demo_code after SIGINT"
sleep 1
left="$(chroot_pids)"
[ -z "$left" ] || die "processes left in the chroot after the demo stopped: $left"
log "the demo stopped cleanly (exit 0, no process left)"

SIZE="$(du -sh --one-file-system "$ROOT" | cut -f1)"
unmount_all
TOTAL=$((SECONDS - START))
if [ "$KEEP" = 0 ]; then
  log "removing the rootfs"
  rm -rf --one-file-system "$ROOT"
fi
echo "fresh-machine-check: PASS $TARGET ($SUITE minbase + ca-certificates git sudo, user" \
  "$USER_NAME, commit $COMMIT): debootstrap $(elapsed $T_DEBOOTSTRAP), setup.sh" \
  "$(elapsed "$T_SETUP"), demo up $(elapsed "$T_UP") (attempt $attempt), checks $(elapsed $T_CHECKS)," \
  "total $(elapsed $TOTAL); rootfs $SIZE; $(date -u +%Y-%m-%d)"
exit 0
}
