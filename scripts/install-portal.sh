#!/usr/bin/env bash
# Production portal on one Debian 12 / Ubuntu 24.04 host (docs/deploy.md "Portal install"):
# N portal processes (systemd instances, one port each) on PostgreSQL + Redis, behind nginx
# with TLS. Re-running upgrades in place (new code, migrations once, processes restarted one
# at a time, each back on /health before the next). Run from a clone of this repository:
#
#   sudo bash scripts/install-portal.sh --domain portal.example.com \
#        --cert /path/fullchain.pem --key /path/privkey.pem [--processes 2] [--local-services]
#
# --local-services installs PostgreSQL and Redis on this host and creates the database; without
# it, set PLATEBRIDGE_DATABASE_URL / PLATEBRIDGE_REDIS_URL in /etc/platebridge/portal.env.
# Without --cert/--key, nginx uses the ACME (Let's Encrypt) paths of --domain: run
# `certbot certonly --webroot -w /var/www/acme -d DOMAIN` once nginx answers on port 80.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"

die() { echo "install-portal: ERROR: $*" >&2; exit 1; }
say() { echo "install-portal: $*"; }

DOMAIN="" CERT="" KEY="" PROCESSES=2 FIRST_PORT=8081 LOCAL_SERVICES=0
while [ $# -gt 0 ]; do
  case "$1" in
    --domain) DOMAIN="${2:?}"; shift 2 ;;
    --cert) CERT="${2:?}"; shift 2 ;;
    --key) KEY="${2:?}"; shift 2 ;;
    --processes) PROCESSES="${2:?}"; shift 2 ;;
    --first-port) FIRST_PORT="${2:?}"; shift 2 ;;
    --local-services) LOCAL_SERVICES=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash scripts/install-portal.sh …)"
[ -n "$DOMAIN" ] || die "--domain is required (the portal's public host name)"
[[ "$DOMAIN" =~ ^[A-Za-z0-9.-]+$ ]] || die "--domain must be a host name"
[[ "$PROCESSES" =~ ^[1-9][0-9]?$ ]] || die "--processes must be 1-99"
if [ -n "$CERT$KEY" ]; then
  { [ -r "$CERT" ] && [ -r "$KEY" ]; } || die "--cert and --key must both name readable files"
else
  CERT="/etc/letsencrypt/live/$DOMAIN/fullchain.pem" KEY="/etc/letsencrypt/live/$DOMAIN/privkey.pem"
fi

PKGS=(python3 python3-venv nginx curl ca-certificates)
# Node.js + npm from Debian/Ubuntu only when none is on PATH: a NodeSource `nodejs` already
# brings npm, and Debian's `npm` package conflicts with it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then PKGS+=(nodejs npm); fi
[ "$LOCAL_SERVICES" = 1 ] && PKGS+=(postgresql redis-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

id platebridge >/dev/null 2>&1 || useradd --system --home-dir /var/lib/platebridge --shell /usr/sbin/nologin platebridge
install -d -m 0755 /opt/platebridge
install -d -m 0750 -o root -g platebridge /etc/platebridge
install -d -m 0750 -o platebridge -g platebridge /var/lib/platebridge
install -d -m 0755 /var/www/acme

say "installing the portal into /opt/platebridge/venv"
[ -x /opt/platebridge/venv/bin/python ] || python3 -m venv /opt/platebridge/venv
/opt/platebridge/venv/bin/pip install -q --upgrade pip
/opt/platebridge/venv/bin/pip install -q --upgrade "$REPO"
say "front-end packages (npm ci from package-lock.json)"
# Built aside, then swapped in: running processes keep serving hls.js during an upgrade.
rm -rf /opt/platebridge/assets.new /opt/platebridge/assets.old && install -d /opt/platebridge/assets.new
cp "$REPO/package.json" "$REPO/package-lock.json" /opt/platebridge/assets.new/
(cd /opt/platebridge/assets.new && npm ci --omit=dev --no-audit --no-fund --silent)
[ ! -d /opt/platebridge/assets ] || mv /opt/platebridge/assets /opt/platebridge/assets.old
mv /opt/platebridge/assets.new /opt/platebridge/assets && rm -rf /opt/platebridge/assets.old

ENV=/etc/platebridge/portal.env
token() { python3 -c "import secrets; print(secrets.token_urlsafe(${1:-32}))"; }
# write_env FILE: install it as $ENV, 0640 root:platebridge (systemd reads it as root; the
# platebridge user reads it too, for the CLI: docs/deploy.md "First company and admin").
write_env() { chmod 0640 "$1" && chown root:platebridge "$1" && mv "$1" "$ENV"; }
if [ ! -e "$ENV" ]; then
  say "writing $ENV (a new secret key; edit the database and Redis URLs if not local)"
  (umask 077  # never readable by others, not even for a moment
    sed -e "s|^PLATEBRIDGE_SECRET_KEY=.*|PLATEBRIDGE_SECRET_KEY=$(token 48)|" \
      "$REPO/packaging/portal.env.example" > "$ENV.new"
    echo "PLATEBRIDGE_NODE_MODULES_DIR=/opt/platebridge/assets/node_modules" >> "$ENV.new")
  write_env "$ENV.new"
else
  say "keeping $ENV"
fi

if [ "$LOCAL_SERVICES" = 1 ]; then
  if [ -d /run/systemd/system ]; then
    systemctl enable --now postgresql redis-server >/dev/null 2>&1 \
      || die "systemctl enable --now postgresql redis-server failed (systemctl status postgresql redis-server)"
  fi
  # The cluster's own port: 5432 unless another PostgreSQL had it when the package was installed.
  read -r pg_ver pg_name pg_port pg_status _ < <(pg_lsclusters --no-header | head -n 1) \
    || die "no PostgreSQL cluster (pg_lsclusters shows none)"
  # Debian's pg_hba.conf wants a password on 127.0.0.1 (scram-sha-256): the local role gets a
  # random one, kept in the database URL of $ENV (made once; re-runs apply the same one).
  db_url="$(sed -n 's/^PLATEBRIDGE_DATABASE_URL=//p' "$ENV" | tail -n 1)"
  db_pw=""
  if [[ "$db_url" =~ ^postgresql://platebridge(:([A-Za-z0-9_-]+))?@127\.0\.0\.1:[0-9]+/platebridge$ ]]; then
    db_pw="${BASH_REMATCH[2]:-$(token)}"
    local_url="postgresql://platebridge:$db_pw@127.0.0.1:$pg_port/platebridge"
    if [ "$db_url" != "$local_url" ]; then
      (umask 077
        sed -e "s|^PLATEBRIDGE_DATABASE_URL=.*|PLATEBRIDGE_DATABASE_URL=$local_url|" "$ENV" > "$ENV.new")
      write_env "$ENV.new"
      say "PLATEBRIDGE_DATABASE_URL in $ENV: the local cluster (port $pg_port), role platebridge with a password"
    fi
  else
    say "PLATEBRIDGE_DATABASE_URL in $ENV is not the local database: its role and password are yours to set"
  fi
  as_postgres() { (cd / && runuser -u postgres -- "$@"); }
  pg_temp=""
  if [ "$pg_status" != online ] && [ -d /run/systemd/system ]; then
    die "PostgreSQL $pg_ver/$pg_name is not running (systemctl status postgresql@$pg_ver-$pg_name)"
  elif [ "$pg_status" != online ]; then
    # No systemd (a chroot, an image build): the cluster is started on its Unix socket only,
    # for the set-up below, and stopped again; nothing listens on a TCP port meanwhile.
    say "PostgreSQL $pg_ver/$pg_name is not running: starting it on its Unix socket only, for the set-up"
    pg_ctlcluster "$pg_ver" "$pg_name" start -- -o "-c listen_addresses=''" \
      || die "cannot start PostgreSQL $pg_ver/$pg_name (pg_ctlcluster)"
    pg_temp=1
    trap 'pg_ctlcluster "$pg_ver" "$pg_name" stop || true' EXIT
  fi
  psql_() { as_postgres psql -p "$pg_port" -q -v ON_ERROR_STOP=1 "$@"; }
  [ "$(psql_ -tAc "SELECT 1 FROM pg_roles WHERE rolname='platebridge'")" = 1 ] \
    || as_postgres createuser -p "$pg_port" platebridge
  if [ -n "$db_pw" ]; then  # on stdin, not in a command line others can read
    echo "ALTER ROLE platebridge PASSWORD '$db_pw';" | psql_ >/dev/null
  fi
  [ "$(psql_ -tAc "SELECT 1 FROM pg_database WHERE datname='platebridge'")" = 1 ] \
    || as_postgres createdb -p "$pg_port" -O platebridge platebridge
  if [ -n "$pg_temp" ]; then
    pg_ctlcluster "$pg_ver" "$pg_name" stop && trap - EXIT
  fi
  say "PostgreSQL $pg_ver/$pg_name (port $pg_port): role and database platebridge ready"
fi

say "systemd units: migrations + $PROCESSES portal processes from port $FIRST_PORT"
install -m 0644 "$REPO/packaging/systemd/platebridge-portal@.service" /etc/systemd/system/
install -m 0644 "$REPO/packaging/systemd/platebridge-portal-migrate.service" /etc/systemd/system/
ports=()
for ((i = 0; i < PROCESSES; i++)); do ports+=($((FIRST_PORT + i))); done

say "nginx site /etc/nginx/conf.d/platebridge.conf"
ports_csv="$(IFS=,; echo "${ports[*]}")"
bash "$REPO/scripts/render-nginx.sh" --domain "$DOMAIN" --cert "$CERT" --key "$KEY" \
  --ports "$ports_csv" > /etc/nginx/conf.d/platebridge.conf.new
mv /etc/nginx/conf.d/platebridge.conf.new /etc/nginx/conf.d/platebridge.conf
# Debian's stock "Welcome to nginx" site is the default server on port 80: a portal host has no
# use for it, and without it every plain-HTTP request goes to the portal's redirect to HTTPS.
# Only the untouched stock symlink is removed; a site you changed or added stays.
if [ -L /etc/nginx/sites-enabled/default ] \
  && [ "$(readlink -f /etc/nginx/sites-enabled/default)" = /etc/nginx/sites-available/default ]; then
  say "disabling nginx's stock default site (/etc/nginx/sites-enabled/default)"
  rm /etc/nginx/sites-enabled/default
fi
if [ -r "$CERT" ]; then
  nginx -t -q || die "nginx -t failed: see the messages above"
fi

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl restart platebridge-portal-migrate.service  # alembic upgrade head, once
  systemctl enable platebridge-portal-migrate.service >/dev/null
  for port in "${ports[@]}"; do  # one at a time: the others keep serving
    systemctl enable "platebridge-portal@$port" >/dev/null
    systemctl restart "platebridge-portal@$port"
    for _ in $(seq 1 60); do
      curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
      sleep 1
    done
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null || die "portal on port $port is not healthy: journalctl -u platebridge-portal@$port"
  done
  if [ -r "$CERT" ]; then
    systemctl enable nginx >/dev/null 2>&1
    systemctl reload-or-restart nginx
  else
    say "no certificate at $CERT yet: get one (certbot, see above), then: nginx -t && systemctl reload nginx"
  fi
else
  say "systemd is not running here: units installed but not started"
fi
say "done: https://$DOMAIN/ (first company and admin: see docs/deploy.md)"
