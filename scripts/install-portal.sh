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
  [ -r "$CERT" ] && [ -r "$KEY" ] || die "--cert and --key must both name readable files"
else
  CERT="/etc/letsencrypt/live/$DOMAIN/fullchain.pem" KEY="/etc/letsencrypt/live/$DOMAIN/privkey.pem"
fi

PKGS=(python3 python3-venv nginx-light curl ca-certificates nodejs npm)
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
rm -rf /opt/platebridge/assets && install -d /opt/platebridge/assets
cp "$REPO/package.json" "$REPO/package-lock.json" /opt/platebridge/assets/
(cd /opt/platebridge/assets && npm ci --omit=dev --no-audit --no-fund --silent)

ENV=/etc/platebridge/portal.env
if [ ! -e "$ENV" ]; then
  say "writing $ENV (a new secret key; edit the database and Redis URLs if not local)"
  secret="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
  sed -e "s|^PLATEBRIDGE_SECRET_KEY=.*|PLATEBRIDGE_SECRET_KEY=$secret|" "$REPO/packaging/portal.env.example" > "$ENV.new"
  echo "PLATEBRIDGE_NODE_MODULES_DIR=/opt/platebridge/assets/node_modules" >> "$ENV.new"
  chmod 0640 "$ENV.new" && chown root:platebridge "$ENV.new" && mv "$ENV.new" "$ENV"
else
  say "keeping $ENV"
fi

if [ "$LOCAL_SERVICES" = 1 ]; then
  systemctl enable --now postgresql redis-server 2>/dev/null || true
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='platebridge'\"" | grep -q 1 \
    || su postgres -c "createuser platebridge"
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='platebridge'\"" | grep -q 1 \
    || su postgres -c "createdb -O platebridge platebridge"
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
    nginx -t && systemctl reload nginx
  else
    say "no certificate at $CERT yet: get one (certbot, see above), then: nginx -t && systemctl reload nginx"
  fi
else
  say "systemd is not running here: units installed but not started"
fi
say "done: https://$DOMAIN/ (first company and admin: see docs/deploy.md)"
