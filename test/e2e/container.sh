#!/usr/bin/env bash
# A real systemd 252 as PID 1 of a systemd-nspawn container, for test/e2e/systemd.test.ts.
#
#   container.sh check          exit 0 if this machine can build and boot the container, else print why and exit 1
#   container.sh root           build the container root once (debootstrap, ~1 min, ~250 MB) and print its path
#   container.sh boot NAME ARGS run systemd-nspawn --boot in the foreground from its own cgroup NAME
#                               (exec: the caller's child pid is nspawn's pid); ARGS go to systemd-nspawn
#   container.sh cleanup NAME   SIGKILL whatever is left in cgroup NAME and remove it
#
# The root is cached outside the repo ($SMOOTHD_E2E_ROOT, default
# /var/cache/smoothd-e2e/ROOT) and never changed by a test: boot uses
# --volatile=overlay, so everything the test installs lives in a tmpfs.
set -euo pipefail

ROOT="${SMOOTHD_E2E_ROOT:-/var/cache/smoothd-e2e/ROOT}"
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus

cgroup_dirs() {
  # The hierarchies nspawn needs its own subtree in (cgroup v1 named "systemd" and/or v2 "unified"/root).
  local name=$1
  if [ -d /sys/fs/cgroup/systemd ] && [ -d /sys/fs/cgroup/unified ]; then
    echo "/sys/fs/cgroup/systemd/$name /sys/fs/cgroup/unified/$name"
  elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo "/sys/fs/cgroup/$name"
  elif [ -d /sys/fs/cgroup/systemd ]; then
    echo "/sys/fs/cgroup/systemd/$name"
  fi
}

case "${1:-}" in
  check)
    [ "$(id -u)" = 0 ] || { echo "needs root (systemd-nspawn and debootstrap)"; exit 1; }
    for c in systemd-nspawn nsenter; do
      command -v "$c" >/dev/null 2>&1 || { echo "$c is not installed (apt-get install systemd-container util-linux)"; exit 1; }
    done
    if [ ! -x "$ROOT/lib/systemd/systemd" ]; then
      command -v debootstrap >/dev/null 2>&1 || { echo "debootstrap is not installed and $ROOT does not exist (apt-get install debootstrap)"; exit 1; }
    fi
    [ -n "$(cgroup_dirs probe)" ] || { echo "no usable cgroup hierarchy under /sys/fs/cgroup"; exit 1; }
    mkdir -p /sys/fs/cgroup/systemd/smoothd-e2e-probe 2>/dev/null || [ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "cannot create cgroups under /sys/fs/cgroup/systemd"; exit 1; }
    rmdir /sys/fs/cgroup/systemd/smoothd-e2e-probe 2>/dev/null || true
    exit 0
    ;;
  root)
    if [ ! -x "$ROOT/lib/systemd/systemd" ]; then
      tmp="$ROOT.tmp.$$"
      rm -rf "$tmp"
      mkdir -p "$(dirname "$ROOT")"
      # The mirror the host's apt uses (none named here); debootstrap's default otherwise.
      mirror=$(sed -n 's/^URIs: *\([^ ]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 || true)
      [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\/debian\)\/* bookworm .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1 || true)
      echo "building $ROOT with debootstrap (once, about a minute)" >&2
      debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" ${mirror:+"$mirror"} >&2 \
        || { rm -rf "$tmp"; echo "debootstrap failed" >&2; exit 1; }
      # Quiet, fast boots: no getty on the console, no units that make no sense in a test container.
      chroot "$tmp" systemctl mask console-getty.service getty@tty1.service systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
      echo smoothd-e2e >"$tmp/etc/hostname"
      rm -rf "$tmp/var/cache/apt/archives"/*.deb
      mv "$tmp" "$ROOT"
    fi
    echo "$ROOT"
    ;;
  boot)
    name=${2:?name}
    shift 2
    for d in $(cgroup_dirs "$name"); do
      mkdir -p "$d"
      echo $$ >"$d/cgroup.procs"
    done
    exec systemd-nspawn -D "$ROOT" --boot --register=no --keep-unit --private-network \
      --volatile=overlay --console=pipe --machine="$name" "$@"
    ;;
  cleanup)
    name=${2:?name}
    for d in $(cgroup_dirs "$name"); do
      [ -d "$d" ] || continue
      # Kill every process left anywhere in the subtree, then remove the folders bottom-up.
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
        [ -z "$pids" ] && break
        kill -9 $pids 2>/dev/null || true
        sleep 0.2
      done
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
    ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 64
    ;;
esac
