#!/usr/bin/env bash
# Proves scripts/install-portal.sh on a fresh Debian 12: a minimal root filesystem (debootstrap
# minbase + ca-certificates, git and sudo, from the host's apt mirror, as
# scripts/fresh-machine-check.sh builds it), this repository cloned into it, a self-signed
# certificate for portal.test made there with openssl, and then:
#
#   1. `install-portal.sh --domain portal.test --cert … --key … --processes 2 --local-services`
#      in the rootfs (apt, pip and npm over the host's network). systemd does not run in a
#      rootfs, so the installer installs the units and starts nothing;
#   2. everything started the way the units would start it, inside a private network namespace
#      (only its own loopback: the rootfs's PostgreSQL on 5432, Redis on 6379 and nginx on 80/443
#      never meet the host's): PostgreSQL, Redis, the migrate unit's ExecStart once, one portal
#      process per installed instance (ExecStart, User, WorkingDirectory, EnvironmentFile and
#      Environment parsed from the installed unit files, %i = the port) and nginx with the
#      installed /etc/nginx/conf.d/platebridge.conf. From inside that namespace: plain HTTP is
#      sent to HTTPS, the login page over TLS (certificate checked for portal.test, and with
#      curl -k on 127.0.0.1), a portal started with PLATEBRIDGE_COOKIE_SECURE=false refuses to
#      run (exit 1, naming it), the CLI as the docs give it (user platebridge, portal.env
#      loaded) creates a company, community, site, admin and pod, a JSON sign-in through nginx
#      (a Secure cookie), GET /api/cameras and /api/pods 200 (the pod the CLI made); no
#      Traceback and no secret in any log; everything stopped, nothing left running;
#   3. an upgrade in place: a new commit in the rootfs's clone (a marker in the login page), the
#      installer again (portal.env kept byte for byte, the venv upgraded), step 2 again, and the
#      marker served.
#
# Not part of the test suite: it downloads about 300 MB. Prints the times and one result line.
# See docs/deploy.md "Portal install (production)".
#
#   sudo bash scripts/fresh-portal-check.sh [--keep] [REPO]
#
#   --keep  keep the rootfs afterwards, and debootstrap's download as a tarball (reused by the
#           next --keep run); default: all fresh, the rootfs removed at the end
#   REPO    the checkout to clone (default: this one); its committed HEAD is what is tested
# Environment: FRESH_WORK (/var/tmp/platebridge-portal-check), MIRROR (the host's apt mirror).
set -euo pipefail
# The whole script is one block, read before it runs: editing the file mid-run cannot derail it.
{
FRESH_NAME=fresh-portal-check
# shellcheck source=scripts/lib/rootfs.sh
. "$(dirname "$0")/lib/rootfs.sh"
fresh_enter_namespace "$@"  # root; a private mount namespace: no mount outlives the check

KEEP=0 REPO=""
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) REPO="$1" ;;
  esac
  shift
done
REPO="$(cd "${REPO:-$(dirname "$0")/..}" && git rev-parse --show-toplevel)" \
  || die "not a git checkout: ${REPO:-$(dirname "$0")/..}"
COMMIT="$(git -C "$REPO" rev-parse --short HEAD)"
WORK="${FRESH_WORK:-/var/tmp/platebridge-portal-check}"
ROOT="$WORK/rootfs"
DOMAIN=portal.test
START=$SECONDS

MIRROR="${MIRROR:-$(host_mirror bookworm)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY="$(host_mirror bookworm-security)"
SECURITY="${SECURITY:-http://deb.debian.org/debian-security}"
for tool in debootstrap curl unshare ip; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing on this host (apt-get install debootstrap curl util-linux iproute2)"
done
curl -sfI -m 10 "$MIRROR/dists/bookworm/Release" >/dev/null \
  || die "the mirror $MIRROR does not answer for bookworm (set MIRROR=...)"

# --- clean-up: always, in every way the check can end ------------------------------------------

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local code=$?
  rootfs_release
  if [ "$code" -ne 0 ]; then
    echo "fresh-portal-check: FAIL (commit $COMMIT) after $(elapsed $((SECONDS - START)));" \
      "logs in $WORK, rootfs kept in $ROOT" >&2
  elif [ "$KEEP" = 0 ]; then
    rm -rf --one-file-system "$ROOT"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the root filesystem -----------------------------------------------------------------------

rootfs_clear
rm -f "$WORK"/*.log
START=$SECONDS

# shellcheck disable=SC2054  # debootstrap's lists are comma-separated
DB_ARGS=(--variant=minbase --include=ca-certificates,git,sudo)
rootfs_debootstrap bookworm "$MIRROR" "$KEEP"
rootfs_configure "deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY bookworm-security main"
rootfs_mount
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOT/dev/shm"  # PostgreSQL's shared memory
mount -t tmpfs -o mode=755,nosuid,nodev run "$ROOT/run"  # no /run/systemd/system: no systemd

ROOT_ENV=(/usr/bin/env -i HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
in_root() { chroot "$ROOT" "${ROOT_ENV[@]}" "$@"; }
git clone --quiet "$REPO" "$ROOT/root/platebridge"
COMMIT="$(git -C "$ROOT/root/platebridge" rev-parse --short HEAD)"
log "cloned $REPO at $COMMIT into /root/platebridge"
CERT=/etc/ssl/certs/portal.test.pem KEY=/etc/ssl/private/portal.test.key
in_root openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$DOMAIN" \
  -addext "subjectAltName=DNS:$DOMAIN,IP:127.0.0.1" -keyout "$KEY" -out "$CERT" \
  >"$WORK/openssl.log" 2>&1 || die "openssl failed ($WORK/openssl.log)"
chmod 600 "$ROOT$KEY"
log "a self-signed certificate for $DOMAIN and 127.0.0.1 in $CERT"

INSTALL=(bash /root/platebridge/scripts/install-portal.sh --domain "$DOMAIN" --cert "$CERT"
  --key "$KEY" --processes 2 --local-services)
install_portal() {  # LOG: the installer in the rootfs, over the host's network
  in_root ${TLS_ENV[@]+"${TLS_ENV[@]}"} "${INSTALL[@]}" >"$1" 2>&1 \
    || { tail -n 30 "$1" >&2; die "install-portal.sh failed (see $1)"; }
}

# --- 1. the installer --------------------------------------------------------------------------

T1=$SECONDS
log "1. ${INSTALL[*]} (log: $WORK/install-1.log)"
install_portal "$WORK/install-1.log"
T_INSTALL=$((SECONDS - T1))
grep -q "systemd is not running here" "$WORK/install-1.log" || die "the installer did not say it started nothing"
[ "$(in_root stat -c '%a %U:%G' /etc/platebridge/portal.env)" = "640 root:platebridge" ] \
  || die "portal.env is not 0640 root:platebridge"
[ "$(in_root stat -c '%a %U:%G' /etc/platebridge)" = "750 root:platebridge" ] || die "/etc/platebridge mode/owner"
[ "$(in_root getent passwd platebridge | cut -d: -f7)" = /usr/sbin/nologin ] || die "platebridge has a login shell"
[ ! -e "$ROOT/etc/nginx/sites-enabled/default" ] || die "nginx's default site is still enabled"
PORTS="$(sed -n 's/^ *server 127\.0\.0\.1:\([0-9]*\);$/\1/p' "$ROOT/etc/nginx/conf.d/platebridge.conf" | xargs)"
[ "$PORTS" = "8081 8082" ] || die "the nginx site names the ports '$PORTS', not 8081 8082"
log "   installed in $(elapsed $T_INSTALL): units, portal.env 0640 root:platebridge, nginx site for ports $PORTS"

# --- 2. start it as the units would, in a private network namespace ------------------------------

# The secrets the logs must never hold: the secret key and the database password.
env_value() { sed -n "s/^$1=//p" "$ROOT/etc/platebridge/portal.env" | tail -n 1; }
SECRET_KEY="$(env_value PLATEBRIDGE_SECRET_KEY)"
DB_PASSWORD="$(env_value PLATEBRIDGE_DATABASE_URL | sed -n 's|^postgresql://[^:/@]*:\([^@]*\)@.*|\1|p')"
[ ${#SECRET_KEY} -ge 32 ] || die "portal.env has no production-sized PLATEBRIDGE_SECRET_KEY"
[ -n "$DB_PASSWORD" ] || die "portal.env's database URL has no password (Debian's pg_hba.conf wants one on 127.0.0.1)"

# serve LABEL MARKER: run in `unshare --net` (below). Starts PostgreSQL, Redis, the migration,
# the portal processes and nginx, probes them, stops them all. MARKER: a string /login must hold.
# shellcheck disable=SC2317,SC2329  # run by the exported-function call below
serve() {
  set -euo pipefail
  local label=$1 marker=$2 t0=$SECONDS pids=() port pid code logs
  ip link set lo up
  say() { echo "fresh-portal-check: [$(date -u +%H:%M:%S)]    $*"; }
  fail() { echo "fresh-portal-check: ERROR: $*" >&2; exit 1; }
  chroot_env=(/usr/bin/env -i LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  r() { chroot "$ROOT" "${chroot_env[@]}" "$@"; }  # as root in the rootfs
  stop_all() {
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    done
    r pg_ctlcluster "$PG_VER" main stop >/dev/null 2>&1 || true
  }
  trap stop_all EXIT
  # unit_cmd UNIT INSTANCE [VAR=VALUE…]: CMD = the unit's service as systemd would run it:
  # User/Group, WorkingDirectory, EnvironmentFile (read as systemd reads it: KEY=VALUE lines),
  # Environment, ExecStart, with %i replaced by the instance; extra variables last (they win).
  unit_cmd() {
    local unit="$ROOT/etc/systemd/system/$1" inst=$2 key line file envs=() user group dir exec
    shift 2
    value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
    user="$(value User)" group="$(value Group)" dir="$(value WorkingDirectory)"
    exec="$(value ExecStart)"
    while IFS= read -r file; do
      file="${file#-}"
      while IFS= read -r line || [ -n "$line" ]; do
        line="${line#"${line%%[![:space:]]*}"}"
        case "$line" in '' | '#'* | ';'*) continue ;; esac
        key="${line%%=*}" line="${line#*=}"
        line="${line%\"}" line="${line#\"}"
        envs+=("$key=$line")
      done <"$ROOT$file"
    done < <(sed -n 's/^EnvironmentFile=//p' "$unit")
    while IFS= read -r line; do envs+=("${line//%i/$inst}"); done < <(sed -n 's/^Environment=//p' "$unit")
    CMD=(chroot --userspec="$user:$group" "$ROOT" "${chroot_env[@]}" "HOME=/var/lib/platebridge"
      "USER=$user" "${envs[@]}" "$@" /bin/sh -c "cd $dir && exec ${exec//%i/$inst}")
  }
  wait_for() {  # WHAT SECONDS COMMAND…
    local what=$1 secs=$2
    shift 2
    for _ in $(seq 1 "$secs"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
    fail "$what did not come up within ${secs}s"
  }
  logs="$WORK/$label"
  mkdir -p "$logs"

  # PostgreSQL and Redis, with the runtime directories their units and tmpfiles.d make.
  r install -d -m 2775 -o postgres -g postgres /run/postgresql
  r pg_ctlcluster "$PG_VER" main start || fail "PostgreSQL did not start"
  wait_for PostgreSQL 30 r pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
  r install -d -m 2775 -o redis -g redis /run/redis
  setsid chroot --userspec=redis:redis "$ROOT" "${chroot_env[@]}" /usr/bin/redis-server \
    /etc/redis/redis.conf --supervised no --daemonize no >"$logs/redis.log" 2>&1 &
  pids+=($!)
  wait_for Redis 30 sh -c "chroot '$ROOT' /usr/bin/redis-cli -h 127.0.0.1 ping | grep -q PONG"
  say "PostgreSQL $PG_VER on 127.0.0.1:$PG_PORT and Redis on 127.0.0.1:6379 up (the namespace's loopback)"

  unit_cmd platebridge-portal-migrate.service ""
  "${CMD[@]}" >"$logs/migrate.log" 2>&1 || { cat "$logs/migrate.log" >&2; fail "the migrate unit's ExecStart failed"; }
  say "migrate unit: $(tail -n 1 "$logs/migrate.log")"

  for port in $PORTS; do
    unit_cmd platebridge-portal@.service "$port"
    setsid "${CMD[@]}" >"$logs/portal-$port.log" 2>&1 &
    pids+=($!)
  done
  for port in $PORTS; do
    wait_for "the portal on port $port" 90 curl -fsS "http://127.0.0.1:$port/health"
  done
  say "portal processes on $PORTS healthy, started as platebridge@PORT: ${CMD[*]: -1}"

  r nginx -t -q || fail "nginx -t failed in the rootfs"
  setsid chroot "$ROOT" "${chroot_env[@]}" /usr/sbin/nginx -g 'daemon off; master_process on;' \
    >"$logs/nginx.log" 2>&1 &
  pids+=($!)
  wait_for nginx 30 curl -fsS -o /dev/null --cacert "$ROOT$CERT" --resolve "$DOMAIN:443:127.0.0.1" \
    "https://$DOMAIN/health"
  echo $((SECONDS - t0)) >"$logs/start.seconds"
  say "nginx up: everything started in $(elapsed $((SECONDS - t0)))"

  # Probes, from inside the namespace.
  local TLS=(--cacert "$ROOT$CERT" --resolve "$DOMAIN:443:127.0.0.1" --resolve "$DOMAIN:80:127.0.0.1")
  code="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1/login")"
  [ "$code" = "301 https://127.0.0.1/login" ] || fail "http://127.0.0.1/login: '$code', not 301 to https"
  code="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "${TLS[@]}" "http://$DOMAIN/.well-known/acme-challenge/x")"
  [ "${code%% *}" = 404 ] || fail "the ACME webroot location answered '$code', not 404 for a missing file"
  curl -s -D "$logs/login.headers" -o "$logs/login.html" -w '%{http_code}' "${TLS[@]}" \
    "https://$DOMAIN/login" >"$logs/login.code"
  [ "$(cat "$logs/login.code")" = 200 ] || fail "GET https://$DOMAIN/login: HTTP $(cat "$logs/login.code")"
  { grep -q 'action="/login"' "$logs/login.html" && grep -q 'name="password"' "$logs/login.html"; } \
    || fail "GET /login: 200 but no login form"
  grep -qi '^strict-transport-security: max-age=' "$logs/login.headers" || fail "no HSTS header"
  [ "$(curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1/login)" = 200 ] \
    || fail "curl -k https://127.0.0.1/login is not 200"
  if [ -n "$marker" ]; then
    grep -qF "$marker" "$logs/login.html" || fail "the upgraded code is not served (no '$marker' in /login)"
    say "GET /login serves the upgraded code ('$marker')"
  fi
  say "http:// → 301 https://; ACME webroot; GET https://$DOMAIN/login 200 (certificate checked), form, HSTS; curl -k https://127.0.0.1/login 200"

  # The production refusal: the unit's own command with one development default.
  unit_cmd platebridge-portal@.service 8089 PLATEBRIDGE_COOKIE_SECURE=false
  set +e
  timeout 60 "${CMD[@]}" >"$logs/refusal.log" 2>&1
  code=$?
  set -e
  [ "$code" = 1 ] || fail "a portal with PLATEBRIDGE_COOKIE_SECURE=false exited $code, not 1 ($logs/refusal.log)"
  grep -q "PLATEBRIDGE_COOKIE_SECURE" "$logs/refusal.log" || fail "the refusal does not name PLATEBRIDGE_COOKIE_SECURE"
  say "PLATEBRIDGE_COOKIE_SECURE=false: exit 1, $(grep -o 'refusing[^;]*' "$logs/refusal.log" | head -n 1)"

  # The CLI as docs/deploy.md gives it: user platebridge, portal.env loaded.
  cli() {
    chroot "$ROOT" "${chroot_env[@]}" HOME=/root sudo -u platebridge sh -c \
      'set -a; . /etc/platebridge/portal.env; exec /opt/platebridge/venv/bin/platebridge-portal "$@"' \
      sh "$@" 2>>"$logs/cli.log"
  }
  local co="Fresh Portal Co $label" email="admin-$label@portal.test" password
  password="fresh-$RANDOM$RANDOM-$RANDOM$RANDOM"
  cli company create --name "$co" --json >>"$logs/cli.log" || fail "company create failed ($logs/cli.log)"
  cli community create --company "$co" --name "Community $label" --json >>"$logs/cli.log" || fail "community create failed"
  cli site create --community "Community $label" --name "Gate $label" --json >>"$logs/cli.log" || fail "site create failed"
  cli user create --company "$co" --email "$email" --password "$password" --role admin --json \
    >>"$logs/cli.log" || fail "user create failed"
  cli pod create --site "Gate $label" --pod-id "pod-$label" --json >"$logs/pod.json" || fail "pod create failed"
  say "CLI as platebridge with portal.env: company, community, site, admin user, pod created"

  local body token
  body="$(printf '{"email": "%s", "password": "%s"}' "$email" "$password")"
  curl -s -D "$logs/signin.headers" -o "$logs/signin.json" -w '%{http_code}' "${TLS[@]}" \
    -H 'Content-Type: application/json' --data-binary "$body" "https://$DOMAIN/api/auth/login" \
    >"$logs/signin.code"
  [ "$(cat "$logs/signin.code")" = 200 ] || fail "JSON sign-in: HTTP $(cat "$logs/signin.code") $(head -c 300 "$logs/signin.json")"
  grep -i '^set-cookie:' "$logs/signin.headers" | grep -qi 'secure' || fail "the session cookie is not Secure"
  token="$(sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p' "$logs/signin.json")"
  [ -n "$token" ] || fail "the sign-in gave no access_token"
  for path in /api/cameras /api/pods; do
    code="$(curl -s -o "$logs/get.json" -w '%{http_code}' "${TLS[@]}" -H "Authorization: Bearer $token" \
      "https://$DOMAIN$path")"
    [ "$code" = 200 ] || fail "GET $path: HTTP $code $(head -c 300 "$logs/get.json")"
    cp "$logs/get.json" "$logs/${path##*/}.json"
  done
  grep -q '"cameras"' "$logs/cameras.json" || fail "GET /api/cameras: no cameras list"
  grep -q "\"pod-$label\"" "$logs/pods.json" || fail "GET /api/pods does not list the pod the CLI made"
  say "JSON sign-in through nginx 200 (Secure cookie); GET /api/cameras 200; GET /api/pods 200 with pod-$label"
  # Both processes behind nginx: uvicorn logs a proxied request with the client address taken
  # from nginx's X-Forwarded-For (port 0), which it does only for PLATEBRIDGE_TRUSTED_PROXIES.
  for _ in $(seq 1 10); do curl -s -o /dev/null "${TLS[@]}" "https://$DOMAIN/login"; done
  for port in $PORTS; do
    grep -q '127\.0\.0\.1:0 - "GET /login ' "$logs/portal-$port.log" \
      || fail "no request through nginx reached the portal on port $port ($logs/portal-$port.log)"
  done
  say "nginx balanced over $PORTS; each took the client address from X-Forwarded-For"

  stop_all
  trap - EXIT
  for pid in "${pids[@]}"; do ! kill -0 "$pid" 2>/dev/null || fail "process $pid did not stop"; done
  sleep 1
  [ -z "$(for p in /proc/[0-9]*; do [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo x; done)" ] \
    || fail "processes left in the rootfs after the stop"
  ! grep -l Traceback "$logs"/*.log || fail "a Traceback in the logs above"
  say "all stopped (portals, nginx, Redis, PostgreSQL), nothing left; no Traceback"
}
# The cluster's port: 5433 here if the host's PostgreSQL had 5432 while the package was installed
# (the rootfs shares the host's network then); the installer's database URL follows it.
read -r PG_VER _ PG_PORT _ < <(in_root pg_lsclusters --no-header | head -n 1) || die "no PostgreSQL cluster in the rootfs"
env_value PLATEBRIDGE_DATABASE_URL | grep -q "@127.0.0.1:$PG_PORT/platebridge\$" \
  || die "portal.env's database URL does not name the cluster's port $PG_PORT"
export ROOT WORK PORTS CERT DOMAIN PG_VER PG_PORT
export -f serve elapsed
run_serve() {  # LABEL MARKER
  unshare --net -- "$BASH" -c 'serve "$@"' serve "$1" "$2" || die "step '$1' failed (logs in $WORK/$1)"
}
no_secrets() {  # the secret key and the database password are never in a log
  local hits
  hits="$(grep -rlF --exclude-dir=rootfs -e "$SECRET_KEY" -e "$DB_PASSWORD" "$WORK" || true)"
  [ -z "$hits" ] || die "a secret is in: $hits"
}

T2=$SECONDS
log "2. started as the units would, in a private network namespace (logs: $WORK/first)"
run_serve first ""
T_START="$(cat "$WORK/first/start.seconds")"
T_SERVE=$((SECONDS - T2))
no_secrets

# --- 3. upgrade in place -------------------------------------------------------------------------

MARKER="fresh-portal-check upgrade $RANDOM$RANDOM"
LOGIN_TEMPLATE="$ROOT/root/platebridge/src/platebridge/portal/templates/login.html"
# Inside the page's last block (a child template renders nothing outside its blocks).
sed -i "\$ s|^{% endblock %}\$|<!-- $MARKER -->\n{% endblock %}|" "$LOGIN_TEMPLATE"
grep -qF "<!-- $MARKER -->" "$LOGIN_TEMPLATE" || die "login.html no longer ends with {% endblock %}: no marker"
git -C "$ROOT/root/platebridge" -c user.name=check -c user.email=check@portal.test \
  commit -q -am "fresh-portal-check: a new version" || die "cannot commit the upgrade in the clone"
ENV_SUM="$(sha256sum <"$ROOT/etc/platebridge/portal.env")"
T3=$SECONDS
log "3. the installer again, after a new commit (log: $WORK/install-2.log)"
install_portal "$WORK/install-2.log"
T_UPGRADE=$((SECONDS - T3))
grep -q "keeping /etc/platebridge/portal.env" "$WORK/install-2.log" || die "the upgrade did not say it kept portal.env"
[ "$ENV_SUM" = "$(sha256sum <"$ROOT/etc/platebridge/portal.env")" ] || die "the upgrade changed portal.env"
[ "$(in_root stat -c '%a %U:%G' /etc/platebridge/portal.env)" = "640 root:platebridge" ] || die "portal.env mode after the upgrade"
log "   upgraded in $(elapsed $T_UPGRADE), portal.env unchanged"
run_serve upgrade "$MARKER"
no_secrets

SIZE="$(du -sh --one-file-system "$ROOT" | cut -f1)"
unmount_all
TOTAL=$((SECONDS - START))
[ "$KEEP" = 1 ] || log "removing the rootfs"
echo "fresh-portal-check: PASS debian12/$(dpkg --print-architecture) (minbase + ca-certificates git" \
  "sudo, commit $COMMIT): debootstrap $(elapsed $T_DEBOOTSTRAP), install $(elapsed $T_INSTALL)," \
  "start $(elapsed "$T_START") (with the probes $(elapsed $T_SERVE)), upgrade $(elapsed $T_UPGRADE)," \
  "total $(elapsed $TOTAL); rootfs $SIZE; $(date -u +%Y-%m-%d)"
exit 0
}
