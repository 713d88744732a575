#!/usr/bin/env bash
# Builds a free-threaded CPython (scripts/build_cpython.sh 3.14t) that no package registry serves,
# or the same with ThreadSanitizer (3.14t-tsan, for scripts/tsan_free_threaded.sh),
# from the source release in the shared toolchains folder (../shared/toolchains beside the
# repository, or $IPCXX_TOOLCHAINS), checked against its pinned sha256, with the build
# dependencies from Debian (apt-get). Installs it into $IPCXX_CACHE (default ~/.cache/ipcxx),
# outside the project tree, as cpython-X.Y.Zt (cpython-X.Y.Zt-tsan), and prints its interpreter's
# path; a complete cached build (stamp file) is reused. About 6.5 minutes on 2 cores (3.14t).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${IPCXX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipcxx}
toolchains=${IPCXX_TOOLCHAINS:-$root/../shared/toolchains}
variant=${1:?usage: $0 X.Yt | X.Yt-tsan}
version=${variant%-tsan}
# The source releases this script builds, with their sha256 (shared/toolchains/README.md).
declare -A sources=(
  [3.14t]="Python-3.14.7.tar.xz ab58a70c881e1b9380dbfa0c09882f656235c8b7e4612f0fb5f631d83f56aef3"
)
[ -n "${sources[$version]:-}" ] || { echo "error: no source release known for $version" >&2 && exit 1; }
read -r tarball sha256 <<<"${sources[$version]}"
release=${tarball#Python-}
release=${release%.tar.xz}
configure_options=(--disable-gil --with-ensurepip=install)
prefix=$cache/cpython-${release}t
if [ "$variant" != "$version" ]; then
  configure_options+=(--with-thread-sanitizer)
  prefix+=-tsan
  # The build runs the new interpreter (sysconfig, ensurepip): CPython's own races, which its
  # suppressions list names, are no business of this build's.
  export TSAN_OPTIONS="exitcode=0 report_bugs=0"
fi
python=$prefix/bin/python$version
stamp=$prefix/.ipcxx-build
stamp_text="$tarball $sha256 ${configure_options[*]}"

mkdir -p "$cache"
# One builder at a time (two test runs on one machine share the cache).
exec 9>"$prefix.lock"
flock 9
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ] && [ -x "$python" ]; then
  echo "$python"
  exit 0
fi

{
  echo "building CPython $release (${configure_options[*]}) into $prefix"
  if ! echo "$sha256  $toolchains/$tarball" | sha256sum --check --quiet; then
    echo "error: $toolchains/$tarball is missing or is not the pinned source release" >&2
    exit 1
  fi
  build_dependencies=(build-essential pkg-config libssl-dev zlib1g-dev libffi-dev libbz2-dev
    liblzma-dev libsqlite3-dev libreadline-dev libncurses-dev libgdbm-dev uuid-dev libzstd-dev
    libexpat1-dev)
  missing=()
  for package in "${build_dependencies[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  started=$SECONDS
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  tar -xJf "$toolchains/$tarball" -C "$work"
  rm -rf "$prefix"
  cd "$work/Python-$release"
  ./configure -q --prefix="$prefix" "${configure_options[@]}"
  make -s -j"$(nproc)"
  make -s install >/dev/null
  "$python" -c 'import sys; assert not sys._is_gil_enabled(), "the GIL is enabled"'
  echo "$stamp_text" >"$stamp"
  echo "built in $((SECONDS - started))s: $("$python" -VV)"
} >&2
echo "$python"
