#!/usr/bin/env bash
# A Debian unstable chroot holding Debian's own builds of the CPython versions that this machine's
# Debian lacks (python3.14 from unstable, python3.15 from experimental: they need a newer C
# library than bookworm's), with their -dev and -venv packages and the C++ toolchain to build
# ipcxx's extensions for them. scripts/test.sh uses it through two commands:
#
#   debian_chroot.sh create        makes it with debootstrap (installed with apt-get when
#                                  missing), or does nothing when the cached one is complete
#   debian_chroot.sh run CMD...    runs CMD in it, in the current directory (which must be in
#                                  the repository or /tmp), with CMD's exit status
#
# The chroot is a cache outside the project tree: $IPCXX_CACHE (default ~/.cache/ipcxx)/debian-sid,
# made anew when its package list changes. `run` mounts what CMD needs (/proc; /dev with the
# caller's /dev/shm and this IPC namespace's /dev/mqueue; /tmp and the repository at their own
# paths; read-only, the files that resolve and trust network names) in a mount namespace of its
# own (unshare --mount, private propagation): nothing is mounted on the host, and every mount is
# gone when CMD exits, whatever its status. Run in scripts/test.sh's private IPC namespace, CMD
# sees that namespace's System V tables, message queues and /dev/shm. Needs root.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${IPCXX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipcxx}
chroot_dir=$cache/debian-sid
mirror=${IPCXX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the chroot holds beyond debootstrap's minimal base, from unstable or, for a package
# that only experimental has (python3.15 was there first), from experimental. A change here
# makes the chroot anew.
packages=(ca-certificates g++ cmake ninja-build python3.14 python3.14-dev python3.14-venv
  python3.15 python3.15-dev python3.15-venv)
stamp=$chroot_dir/.ipcxx-packages

# enter DIRECTORY CMD...: CMD in the chroot DIRECTORY, in a mount namespace of its own. The
# machine's certificate bundle replaces the chroot's (the trust pip and apt see here) once the
# chroot is made ($trust_host_certificates): while its ca-certificates package installs, the
# file is that package's to write.
trust_host_certificates=1
enter() {
  local target=$1
  shift
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --propagation private -- bash -c '
    set -eu
    target=$1 root=$2 cwd=$3 host_files=$4
    shift 4
    mount -t proc proc "$target/proc"
    # /dev without its submounts, then the ones that count: the caller'"'"'s /dev/shm (a private
    # tmpfs in test.sh'"'"'s isolated namespaces), the message queues of this IPC namespace (an
    # mqueue mount shows its mounter'"'"'s namespace), and /dev/pts.
    mount --bind /dev "$target/dev"
    mkdir -p "$target/dev/shm" "$target/dev/mqueue" "$target/dev/pts"
    mount --bind /dev/shm "$target/dev/shm"
    mount -t mqueue none "$target/dev/mqueue"
    if mountpoint -q /dev/pts; then mount --bind /dev/pts "$target/dev/pts"; fi
    for shared in /tmp "$root"; do
      mkdir -p "$target$shared"
      mount --bind "$shared" "$target$shared"
    done
    for file in $host_files; do
      [ -e "$file" ] || continue
      mkdir -p "$(dirname "$target$file")"
      [ -e "$target$file" ] || touch "$target$file"
      mount -o bind,ro "$(readlink -f "$file")" "$target$file"
    done
    exec chroot "$target" /bin/sh -c '"'"'cd "$0" && exec "$@"'"'"' "$cwd" "$@"' \
    enter "$target" "$root" "$PWD" \
    "/etc/resolv.conf /etc/hosts${trust_host_certificates:+ /etc/ssl/certs/ca-certificates.crt}" "$@"
}

create() {
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${packages[*]}" ]; then
    echo "cached: $chroot_dir"
    return
  fi
  if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap ||
      { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends debootstrap; }
  fi
  # Made beside the cache entry and moved into place complete: an interrupted run leaves no
  # half-made chroot that a later one would take for done (only its finished debootstrap stage
  # is reused).
  local fresh=$chroot_dir.new
  rm -rf "$chroot_dir"
  if ! [ -f "$fresh/.ipcxx-debootstrap" ]; then
    rm -rf "$fresh"
    debootstrap --variant=minbase sid "$fresh" "$mirror"
    touch "$fresh/.ipcxx-debootstrap"
  fi
  echo "deb $mirror experimental main" >"$fresh/etc/apt/sources.list.d/experimental.list"
  # The chroot's apt reaches the archive as this machine's does: its proxies, and whether it
  # accepts a Release file past its Valid-Until (an archive served as a dated snapshot).
  local option value
  for option in Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until \
    Acquire::Check-Date; do
    value=$(apt-config dump --no-empty "$option" | sed -n "s|^$option \"\(.*\)\";\$|\1|p")
    [ -z "$value" ] || echo "$option \"$value\";"
  done >"$fresh/etc/apt/apt.conf.d/50ipcxx-host"
  cat "$fresh/etc/apt/apt.conf.d/50ipcxx-host"
  trust_host_certificates=
  enter "$fresh" env DEBIAN_FRONTEND=noninteractive sh -c "apt-get update -q &&
    apt-get install -y -q --no-install-recommends ${packages[*]} && apt-get clean"
  echo "${packages[*]}" >"$fresh/.ipcxx-packages"
  mv "$fresh" "$chroot_dir"
  trust_host_certificates=1
  enter "$chroot_dir" sh -c 'python3.14 -VV && python3.15 -VV && g++ --version | head -1'
}

case ${1:-} in
create)
  # One maker at a time (two test runs on one machine share the cache).
  mkdir -p "$cache"
  exec 9>"$cache/debian-sid.lock"
  flock 9
  create
  ;;
run)
  shift
  [ -f "$stamp" ] || { echo "error: no chroot at $chroot_dir; run '$0 create' first" >&2 && exit 1; }
  enter "$chroot_dir" "$@"
  ;;
*)
  echo "usage: $0 create | run COMMAND..." >&2
  exit 2
  ;;
esac
