# shellcheck shell=bash
# The fresh root filesystem of scripts/fresh-{machine,pod,portal}-check.sh: sourced by them, not
# run. A minimal Debian/Ubuntu root filesystem from debootstrap, configured like a real machine
# (apt sources, no daemons started by apt, the host's DNS, hostname and local CAs), with /proc,
# /sys and /dev mounted, inside a private mount namespace so that no mount outlives a check.
#
# The caller sets FRESH_NAME (the log prefix) before sourcing, and WORK and ROOT before calling
# the rootfs_* functions; its own EXIT trap calls rootfs_release (and whatever else it started).

die() { echo "$FRESH_NAME: ERROR: $*" >&2; exit 1; }
log() { echo "$FRESH_NAME: [$(date -u +%H:%M:%S)] $*"; }
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Root, then the calling script again in a private mount namespace ("$@": its arguments).
fresh_enter_namespace() {
  [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot): sudo bash $0 $*"
  if [ -z "${FRESH_IN_NS:-}" ]; then
    FRESH_IN_NS=1 exec unshare --mount --propagation private -- "$BASH" "$0" "$@"
  fi
}

# The first http(s) mirror that the host's apt sources give for a suite (one-line and deb822).
host_mirror() {
  local suite=$1 f
  {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -r "$f" ] || continue
      awk -v s="$suite" '$1 == "deb" {
          i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == s) print $i }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -r "$f" ] || continue
      awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" } {
          uris = ""; suites = ""; deb = 0; on = 1
          for (j = 1; j <= NF; j++) {
            l = $j; if (l ~ /^#/) continue
            if (l ~ /^Types:/ && l ~ /[ \t]deb([ \t]|$)/) deb = 1
            if (l ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", l); uris = l }
            if (l ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", l); suites = " " l " " }
            if (l ~ /^Enabled:[ \t]*[Nn]o/) on = 0
          }
          if (deb && on && index(suites, " " s " ")) { split(uris, u, /[ \t]+/); print u[1] } }' "$f"
    done
  } | grep -E '^https?://' | head -n 1 || true
}

# shellcheck disable=SC2317  # called from the callers' EXIT traps
chroot_pids() {  # every process whose root is our rootfs
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"
  done
  return 0
}

# shellcheck disable=SC2317
unmount_all() {  # deepest first; lazily if something still holds one (the namespace drops them)
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$ROOT" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

# shellcheck disable=SC2317
rootfs_release() {  # for the EXIT trap: kill what still runs in the rootfs, unmount it
  local left
  left="$(chroot_pids)"
  # shellcheck disable=SC2086
  [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
  unmount_all
}

# A clean start: nothing mounted, no previous rootfs.
rootfs_clear() {
  mkdir -p "$WORK"
  unmount_all
  if [ -d "$ROOT" ]; then
    ! findmnt -rn -o TARGET | grep -qF "$ROOT" || die "something is still mounted in $ROOT"
    log "removing the previous rootfs $ROOT"
    rm -rf --one-file-system "$ROOT"
  fi
}

# debootstrap SUITE from MIRROR into ROOT with the caller's DB_ARGS (array) and, optionally,
# DB_SCRIPT (array: debootstrap's script argument). KEEP=1: debootstrap's download is kept as
# a tarball in WORK and reused by the next KEEP=1 run. Appends to WORK/debootstrap.log; sets
# T_DEBOOTSTRAP (seconds).
rootfs_debootstrap() {
  local suite=$1 mirror=$2 keep=$3 tarball t0=$SECONDS
  local script=(${DB_SCRIPT[@]+"${DB_SCRIPT[@]}"})
  log "debootstrap $suite (${DB_ARGS[*]}) from $mirror into $ROOT (log: $WORK/debootstrap.log)"
  if [ "$keep" = 1 ]; then
    tarball="$WORK/debootstrap-$suite.tgz"
    if [ ! -f "$tarball" ]; then
      debootstrap "${DB_ARGS[@]}" --make-tarball="$tarball" "$suite" "$WORK/tarball-tmp" \
        "$mirror" ${script[@]+"${script[@]}"} >>"$WORK/debootstrap.log" 2>&1 \
        || die "debootstrap failed (see $WORK/debootstrap.log)"
      rm -rf --one-file-system "$WORK/tarball-tmp"
    fi
    DB_ARGS+=(--unpack-tarball="$tarball")
  fi
  debootstrap "${DB_ARGS[@]}" "$suite" "$ROOT" "$mirror" ${script[@]+"${script[@]}"} \
    >>"$WORK/debootstrap.log" 2>&1 || die "debootstrap failed (see $WORK/debootstrap.log)"
  T_DEBOOTSTRAP=$((SECONDS - t0))
  log "debootstrap done in $(elapsed $T_DEBOOTSTRAP) ($(du -sh --one-file-system "$ROOT" | cut -f1))"
}

# The rootfs as a real machine: apt SOURCES (the text of sources.list), no daemons started by
# apt's postinsts (policy-rc.d, the Debian way), the host's resolver and hostname (sudo looks
# it up). A host behind a TLS-inspecting proxy trusts its CA from /usr/local/share/
# ca-certificates; the rootfs must too, and pip and npm are pointed at the system bundle
# (npm does not read it by itself): TLS_ENV (array) then holds those variables, else nothing.
rootfs_configure() {
  local sources=$1 hostname_now
  printf '%s\n' "$sources" >"$ROOT/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  hostname_now="$(cat /proc/sys/kernel/hostname)"
  echo "$hostname_now" >"$ROOT/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost\n' "$hostname_now" \
    >"$ROOT/etc/hosts"
  TLS_ENV=()
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed"
    TLS_ENV=(PIP_CERT=/etc/ssl/certs/ca-certificates.crt
      NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
    log "the host's local CAs are trusted in the rootfs too (${TLS_ENV[*]})"
  fi
}

# /proc, /sys, /dev and /dev/pts in the rootfs (the caller adds /dev/shm or /run as it needs).
rootfs_mount() {
  mount -t proc proc "$ROOT/proc"
  mount -t sysfs sysfs "$ROOT/sys"
  mount --bind /dev "$ROOT/dev"
  mount --bind /dev/pts "$ROOT/dev/pts"
}
