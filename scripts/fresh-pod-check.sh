#!/usr/bin/env bash
# Proves scripts/install-pod.sh on a fresh Debian 12: a minimal root filesystem (debootstrap
# minbase + ca-certificates, git, sudo, as scripts/fresh-machine-check.sh builds it, plus the
# `systemd` package every real Debian 12 / Raspberry Pi OS install has), this repository cloned
# into it, and then, against a real portal and an RTSP test camera with a password, both run on
# this host (the chroot shares its network):
#
#   1. the installer with a wrong key: it fails with enroll's message, no pod.yaml;
#   2. the installer with the right answers (key and secret from the environment): pod.yaml
#      0640 root:platebridge, the user without a login shell, the unit enabled, and
#      `systemd-analyze verify` on it inside the rootfs;
#   3. the agent started the way the unit starts it (user platebridge, /run/platebridge-pod,
#      working directory /var/lib/platebridge, ExecStart): /health, camera active, its
#      heartbeats in the portal, a clean SIGTERM stop;
#   4. a re-run (upgrade in place, pod.yaml unchanged); --uninstall (config kept); install
#      again (the kept config used); --uninstall --purge (all gone).
#
# systemd itself does not run in the rootfs. Not part of the test suite: it downloads a few
# hundred MB. Prints one result line with the times. See docs/deploy.md "POD install".
#
#   sudo bash scripts/fresh-pod-check.sh [--keep]     (--keep: keep the rootfs afterwards)
# Environment: FRESH_WORK (/var/tmp/platebridge-pod-check), MIRROR (http://deb.debian.org/debian),
# FRESH_PORTAL_PORT (18180), FRESH_POD_PORT (18100), FRESH_CAMERA_PORT (18654).
set -euo pipefail

FRESH_NAME=fresh-pod-check
# shellcheck source=scripts/lib/rootfs.sh
. "$(dirname "$0")/lib/rootfs.sh"
fresh_enter_namespace "$@"
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
REPO="$(cd "$(dirname "$0")/.." && git rev-parse --show-toplevel)"
COMMIT="$(git -C "$REPO" rev-parse --short HEAD)"
WORK="${FRESH_WORK:-/var/tmp/platebridge-pod-check}"
ROOT="$WORK/rootfs"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
PORTAL_PORT="${FRESH_PORTAL_PORT:-18180}" POD_PORT="${FRESH_POD_PORT:-18100}"
CAM_PORT="${FRESH_CAMERA_PORT:-18654}"
VENV_HOST="$REPO/.venv/bin"
[ -x "$VENV_HOST/platebridge-portal" ] || die "run scripts/setup.sh first (the portal runs on this host)"
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
for p in "$PORTAL_PORT" "$POD_PORT" "$CAM_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (set FRESH_*_PORT)"; fi
done
START=$SECONDS

PIDS=()
cleanup() {
  local code=$?
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  rootfs_release
  if [ "$code" -ne 0 ]; then
    echo "fresh-pod-check: FAIL (commit $COMMIT) after $(elapsed $((SECONDS - START))); logs in $WORK" >&2
  elif [ "$KEEP" = 0 ]; then
    rm -rf --one-file-system "$ROOT"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the root filesystem --------------------------------------------------------------------------
rootfs_clear
T0=$SECONDS
# shellcheck disable=SC2054  # debootstrap's lists are comma-separated
DB_ARGS=(--variant=minbase --include=ca-certificates,git,sudo)
: >"$WORK/debootstrap.log"
rootfs_debootstrap bookworm "$MIRROR" 0
rootfs_configure "deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main"
CHROOT_ENV=(/usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
  ${TLS_ENV[@]+"${TLS_ENV[@]}"})
rootfs_mount
mount -t tmpfs -o mode=755 run "$ROOT/run"
in_root() { chroot "$ROOT" "${CHROOT_ENV[@]}" "$@"; }
log "installing systemd in the rootfs (every real Debian 12 has it; minbase has not)"
in_root apt-get update -qq >>"$WORK/debootstrap.log" 2>&1
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd \
  >>"$WORK/debootstrap.log" 2>&1 || die "apt-get install systemd failed"
T_ROOTFS=$((SECONDS - T0))
log "rootfs ready in $(elapsed $T_ROOTFS) ($(du -sh --one-file-system "$ROOT" | cut -f1))"
git clone --quiet "$REPO" "$ROOT/root/platebridge"

# --- the portal and a camera on this host ---------------------------------------------------------
export PLATEBRIDGE_DATABASE_URL="sqlite:///$WORK/portal.db"
rm -f "$WORK/portal.db"
setsid "$VENV_HOST/platebridge-portal" serve --host 127.0.0.1 --port "$PORTAL_PORT" --log-level warning \
  >"$WORK/portal.log" 2>&1 &
PIDS+=($!)
CAM_PW="fresh-cam-$RANDOM$RANDOM"
setsid /usr/bin/python3 "$REPO/tools/rtsp_test_camera.py" --port "$CAM_PORT" --user admin \
  --password "$CAM_PW" --width 320 --height 240 --fps 15 >"$WORK/camera.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$PORTAL_PORT/health" >/dev/null 2>&1 && grep -q READY "$WORK/camera.log" && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORTAL_PORT/health" >/dev/null || die "the portal did not start ($WORK/portal.log)"
grep -q READY "$WORK/camera.log" || die "the test camera did not start ($WORK/camera.log)"
P="$VENV_HOST/platebridge-portal"
"$P" company create --name "Fresh Co" >/dev/null
"$P" community create --company "Fresh Co" --name "Fresh Community" >/dev/null
"$P" site create --community "Fresh Community" --name "Fresh Gate" >/dev/null
pod_json="$("$P" pod create --site "Fresh Gate" --pod-id fresh-pod --json)"
json() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$pod_json" "$1"; }
KEY="$(json api_key)" SECRET="$(json stream_token_secret)"
CAMERA="gate-camera-1:Fresh gate=rtsp://admin:$CAM_PW@127.0.0.1:$CAM_PORT/stream"
ANSWERS=(--portal "http://127.0.0.1:$PORTAL_PORT" --pod-id fresh-pod --camera "$CAMERA")
INSTALL=(bash /root/platebridge/scripts/install-pod.sh)
no_secrets() {  # the key, the secret and the camera password must never be printed
  ! grep -qF -e "$KEY" -e "$SECRET" -e "$CAM_PW" "$1" || die "a secret leaked into $1"
}

# --- 1. a wrong key: enroll fails, nothing written ------------------------------------------------
T1=$SECONDS
log "1. install-pod.sh with a wrong key (log: $WORK/install-1.log)"
if in_root PLATEBRIDGE_POD_KEY=pbk_WrongKeyForTheFreshCheck0123 PLATEBRIDGE_STREAM_SECRET="$SECRET" \
  "${INSTALL[@]}" "${ANSWERS[@]}" >"$WORK/install-1.log" 2>&1; then
  die "the installer succeeded with a wrong key"
fi
grep -q "the portal refused the key (unknown or revoked)" "$WORK/install-1.log" || die "no clear message ($WORK/install-1.log)"
[ ! -e "$ROOT/etc/platebridge/pod.yaml" ] || die "pod.yaml written despite the wrong key"
no_secrets "$WORK/install-1.log"
T_FIRST=$((SECONDS - T1))
log "   refused as it should (first install incl. apt and pip: $(elapsed $T_FIRST))"

# --- 2. the right answers -------------------------------------------------------------------------
T2=$SECONDS
log "2. install-pod.sh with the right answers (log: $WORK/install-2.log)"
in_root PLATEBRIDGE_POD_KEY="$KEY" PLATEBRIDGE_STREAM_SECRET="$SECRET" \
  "${INSTALL[@]}" "${ANSWERS[@]}" --advertise-address 127.0.0.1 >"$WORK/install-2.log" 2>&1 \
  || { tail -n 20 "$WORK/install-2.log" >&2; die "the installer failed"; }
T_SECOND=$((SECONDS - T2))
no_secrets "$WORK/install-2.log"
# (stat inside: the user exists only in the rootfs)
[ "$(in_root stat -c '%a %U:%G' /etc/platebridge/pod.yaml)" = "640 root:platebridge" ] || die "pod.yaml mode/owner"
[ "$(in_root stat -c '%a %U:%G' /etc/platebridge)" = "750 root:platebridge" ] || die "/etc/platebridge mode/owner"
[ "$(in_root stat -c '%a %U' /var/lib/platebridge)" = "750 platebridge" ] || die "/var/lib/platebridge mode/owner"
[ "$(in_root getent passwd platebridge | cut -d: -f7)" = /usr/sbin/nologin ] || die "platebridge has a login shell"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/platebridge-pod.service" ] || die "the unit is not enabled"
in_root systemd-analyze verify /etc/systemd/system/platebridge-pod.service >"$WORK/verify.log" 2>&1 \
  || { cat "$WORK/verify.log" >&2; die "systemd-analyze verify failed"; }
[ ! -s "$WORK/verify.log" ] || { cat "$WORK/verify.log" >&2; die "systemd-analyze verify warned"; }
log "   installed in $(elapsed $T_SECOND): pod.yaml 0640 root:platebridge, unit enabled, systemd-analyze verify clean"

# --- 3. the agent as the unit starts it ------------------------------------------------------------
echo "listen_port: $POD_PORT  # fresh-pod-check: the rootfs shares the host's network" \
  >>"$ROOT/etc/platebridge/pod.yaml"
install -d -m 0750 -o "$(in_root id -u platebridge)" -g "$(in_root id -g platebridge)" "$ROOT/run/platebridge-pod"
exec_start="$(sed -n 's/^ExecStart=//p' "$ROOT/etc/systemd/system/platebridge-pod.service")"
log "3. the agent as the unit runs it: $exec_start"
# shellcheck disable=SC2086  # ExecStart is a plain command line without quoting
setsid chroot --userspec=platebridge:platebridge "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin \
  HOME=/var/lib/platebridge LANG=C.UTF-8 /bin/sh -c "cd /var/lib/platebridge && exec $exec_start" \
  >"$WORK/agent.log" 2>&1 &
AGENT=$!
PIDS+=("$AGENT")
ok=""
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$POD_PORT/health" 2>/dev/null | grep -q '"status":"active"'; then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || { tail -n 20 "$WORK/agent.log" >&2; die "the agent's camera never became active"; }
seen=""
for _ in $(seq 1 30); do
  seen="$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT stream_port FROM pods WHERE pod_id = ?", ("fresh-pod",)).fetchone()[0])' "$WORK/portal.db")"
  [ "$seen" = "$POD_PORT" ] && break
  sleep 1
done
[ "$seen" = "$POD_PORT" ] || die "the portal never saw the agent's heartbeat (stream_port $seen)"
kill -TERM "$AGENT"
for _ in $(seq 1 20); do kill -0 "$AGENT" 2>/dev/null || break; sleep 1; done
! kill -0 "$AGENT" 2>/dev/null || die "the agent did not stop on SIGTERM"
[ -z "$(chroot_pids)" ] || die "processes left in the rootfs after the agent stopped: $(chroot_pids)"
no_secrets "$WORK/agent.log"
log "   /health with the camera active, heartbeats in the portal, clean SIGTERM stop"

# --- 4. upgrade, uninstall, reinstall, purge ---------------------------------------------------------
sum="$(sha256sum <"$ROOT/etc/platebridge/pod.yaml")"
T4=$SECONDS
in_root "${INSTALL[@]}" >"$WORK/install-upgrade.log" 2>&1 || die "the upgrade failed ($WORK/install-upgrade.log)"
T_UPGRADE=$((SECONDS - T4))
grep -q "upgrading /opt/platebridge/venv" "$WORK/install-upgrade.log" || die "no upgrade message"
[ "$sum" = "$(sha256sum <"$ROOT/etc/platebridge/pod.yaml")" ] || die "the upgrade changed pod.yaml"
log "4. upgrade in place in $(elapsed $T_UPGRADE), pod.yaml unchanged"
in_root "${INSTALL[@]}" --uninstall >"$WORK/uninstall.log" 2>&1 || die "--uninstall failed"
[ ! -e "$ROOT/opt/platebridge/venv" ] && [ ! -e "$ROOT/etc/systemd/system/platebridge-pod.service" ] \
  || die "--uninstall left the venv or the unit"
[ ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/platebridge-pod.service" ] || die "still enabled"
[ "$sum" = "$(sha256sum <"$ROOT/etc/platebridge/pod.yaml")" ] && [ -d "$ROOT/var/lib/platebridge" ] \
  || die "--uninstall did not keep the config and state"
in_root "${INSTALL[@]}" >"$WORK/reinstall.log" 2>&1 || die "the reinstall failed"
grep -q "keeping /etc/platebridge/pod.yaml" "$WORK/reinstall.log" || die "the reinstall did not keep pod.yaml"
in_root "${INSTALL[@]}" --uninstall --purge >"$WORK/purge.log" 2>&1 || die "--purge failed"
[ ! -e "$ROOT/etc/platebridge" ] && [ ! -e "$ROOT/var/lib/platebridge" ] && [ ! -e "$ROOT/opt/platebridge" ] \
  || die "--purge left files behind"
! in_root getent passwd platebridge >/dev/null || die "--purge left the user"
log "   --uninstall kept config and state; reinstall used them; --uninstall --purge removed everything"

arch="$(dpkg --print-architecture)"
echo "fresh-pod-check: PASS debian12/$arch (commit $COMMIT) in $(elapsed $((SECONDS - START))):" \
  "rootfs $(elapsed $T_ROOTFS), first install (apt+pip, wrong key refused) $(elapsed $T_FIRST)," \
  "enroll+install $(elapsed $T_SECOND), upgrade $(elapsed $T_UPGRADE)"
