#!/usr/bin/env bash
# Print packaging/nginx/platebridge.conf for one deployment (used by install-portal.sh, and by
# tests/deploy/test_nginx_tls.py, which runs the result for real):
#   render-nginx.sh --domain D --cert C --key K --ports 8081,8082 \
#                   [--https-listen ADDR:PORT] [--http-listen ADDR:PORT] [--acme-root DIR]
#                   [--access-log FILE]
# Fails if the template no longer has a line it must change.
set -euo pipefail
TEMPLATE="$(dirname "$0")/../packaging/nginx/platebridge.conf"
DOMAIN="" CERT="" KEY="" PORTS="" HTTPS_LISTEN="" HTTP_LISTEN="" ACME_ROOT="" ACCESS_LOG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --domain) DOMAIN="$2"; shift 2 ;;
    --cert) CERT="$2"; shift 2 ;;
    --key) KEY="$2"; shift 2 ;;
    --ports) PORTS="$2"; shift 2 ;;
    --https-listen) HTTPS_LISTEN="$2"; shift 2 ;;
    --http-listen) HTTP_LISTEN="$2"; shift 2 ;;
    --acme-root) ACME_ROOT="$2"; shift 2 ;;
    --access-log) ACCESS_LOG="$2"; shift 2 ;;
    *) echo "render-nginx: unknown option $1" >&2; exit 2 ;;
  esac
done
for v in DOMAIN CERT KEY PORTS; do
  [ -n "${!v}" ] || { echo "render-nginx: --${v,,} is required" >&2; exit 2; }
done
[[ "$DOMAIN" =~ ^[A-Za-z0-9.-]+$ ]] || { echo "render-nginx: bad --domain" >&2; exit 2; }
[[ "$PORTS" =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "render-nginx: --ports is a comma list of ports" >&2; exit 2; }
for anchor in "    server 127.0.0.1:8081;" "    server 127.0.0.1:8082;" "    listen 80;" \
  "    listen [::]:80;" "    listen 443 ssl http2;" "    listen [::]:443 ssl http2;" \
  "/etc/letsencrypt/live/portal.example.com/fullchain.pem;" \
  "/etc/letsencrypt/live/portal.example.com/privkey.pem;" "root /var/www/acme;"; do
  [ "$(grep -cF -- "$anchor" "$TEMPLATE")" = 1 ] \
    || { echo "render-nginx: the template lost the line: $anchor" >&2; exit 1; }
done
awk -v domain="$DOMAIN" -v cert="$CERT" -v key="$KEY" -v ports="$PORTS" \
    -v https="$HTTPS_LISTEN" -v http="$HTTP_LISTEN" -v acme="$ACME_ROOT" -v alog="$ACCESS_LOG" '
  $0 == "    server 127.0.0.1:8081;" {
    n = split(ports, p, ","); for (i = 1; i <= n; i++) printf "    server 127.0.0.1:%s;\n", p[i]; next }
  $0 == "    server 127.0.0.1:8082;" { next }
  $0 == "    listen 80;" && http != "" { print "    listen " http ";"; next }
  $0 == "    listen [::]:80;" && http != "" { next }
  $0 == "    listen 443 ssl http2;" && https != "" { print "    listen " https " ssl http2;"; next }
  $0 == "    listen [::]:443 ssl http2;" && https != "" { next }
  index($0, "/etc/letsencrypt/live/portal.example.com/fullchain.pem;") { print "    ssl_certificate " cert ";"; next }
  index($0, "/etc/letsencrypt/live/portal.example.com/privkey.pem;") { print "    ssl_certificate_key " key ";"; next }
  index($0, "root /var/www/acme;") && acme != "" { sub("/var/www/acme", acme) }
  index($0, "access_log /var/log/nginx/platebridge.access.log") && alog != "" { sub("/var/log/nginx/platebridge.access.log", alog) }
  { gsub("portal.example.com", domain); print }
' "$TEMPLATE"
