#!/usr/bin/env bash
# The Python versions ipcxx claims and their interpreters, for scripts/test.sh and
# scripts/test_packaging.sh (sourced from the repository root). Sets claimed_versions (from
# pyproject.toml) and python_versions (those, or $IPCXX_PYTHON_VERSIONS); find_interpreters
# VERSION... fills interpreter[VERSION], finding each interpreter on this machine or providing
# it; `on VERSION COMMAND...` runs a command where VERSION's interpreter runs. Expects $root,
# the repository root, as the working directory.

# The versions pyproject.toml claims (its "Python :: 3.X" classifiers, the lowest of which is
# requires-python's bound); each is built and tested. A "Python :: Free Threading" classifier
# claims the free-threaded build too: 3.14t, the first release that supports it officially
# (PEP 779), built from source (scripts/build_cpython.sh).
free_threaded_version=3.14t
mapfile -t claimed_versions < <(
  grep -oP '^\s*"Programming Language :: Python :: \K3\.[0-9]+(?=")' pyproject.toml | sort -V)
if ! ((${#claimed_versions[@]})) ||
  ! grep -qxF "requires-python = \">=${claimed_versions[0]}\"" pyproject.toml; then
  echo "error: pyproject.toml's requires-python and its Python :: 3.X classifiers disagree" >&2
  exit 1
fi
if grep -q '^\s*"Programming Language :: Python :: Free Threading' pyproject.toml; then
  claimed_versions+=("$free_threaded_version")
fi
# shellcheck disable=SC2034 # used by the scripts that source this one
read -r -a python_versions <<<"${IPCXX_PYTHON_VERSIONS:-${claimed_versions[*]}}"

# The interpreter of one X.Y version, or X.Yt (free-threaded), on this machine: pyenv's newest
# patch release first, then python3.X anywhere on PATH (a pyenv shim that is not selected
# fails the version check and is passed over; so does a debug build).
find_python() {
  local version=$1 candidate
  local candidates=()
  mapfile -t candidates < <(
    ls -d "$HOME/.pyenv/versions/$version".*/bin/python3 2>/dev/null | sort -rV
    type -aP "python$version" 2>/dev/null || true
  )
  for candidate in "${candidates[@]}"; do
    [ -x "$candidate" ] || continue
    if [ "$("$candidate" -c 'import sys; print("%d.%d%s" % (*sys.version_info[:2], sys.abiflags))' \
      2>/dev/null)" = "$version" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# Each version's interpreter, and where it runs: on this machine, or (in_chroot set) in the
# Debian unstable chroot of scripts/debian_chroot.sh, which sees the repository and /tmp at their
# own paths.
declare -A interpreter in_chroot
# on VERSION COMMAND...: COMMAND (a program of VERSION's venv or interpreter, its arguments)
# where VERSION's interpreter runs.
on() {
  local version=$1
  shift
  if [ -n "${in_chroot[$version]:-}" ]; then
    "${root:?}/scripts/debian_chroot.sh" run "$@"
  else
    "$@"
  fi
}
# entry VERSION: the words that prefix a command to run it where VERSION's interpreter runs
# (for commands that run in another shell, such as isolated's), one a line.
entry() {
  if [ -n "${in_chroot[$1]:-}" ]; then
    printf '%s\n' "$root/scripts/debian_chroot.sh" run
  fi
}

# find_interpreters VERSION...: interpreter[VERSION] for each, or an error naming the missing.
find_interpreters() {
  # Found on this machine first. Else a free-threaded version is built from the source release in
  # the shared toolchains folder (scripts/build_cpython.sh, cached outside the tree, ~6.5 min the
  # first time); 3.14 and 3.15 are Debian's own builds, run in a Debian unstable chroot
  # (scripts/debian_chroot.sh, cached outside the tree, made the first time).
  local chroot_versions=" 3.14 3.15 " absent=() version found
  for version in "$@"; do
    if found=$(find_python "$version"); then
      interpreter[$version]=$found
    elif [[ $version == *t ]]; then
      interpreter[$version]=$(bash scripts/build_cpython.sh "$version")
    elif [[ $chroot_versions == *" $version "* ]]; then
      bash scripts/debian_chroot.sh create
      interpreter[$version]=python$version
      in_chroot[$version]=1
    else
      absent+=("$version")
      continue
    fi
    echo "$version: ${interpreter[$version]}${in_chroot[$version]:+ (in the Debian chroot)}:" \
      "$(on "$version" "${interpreter[$version]}" -VV)"
  done
  if ((${#absent[@]})); then
    echo "error: no interpreter for Python ${absent[*]}, which the package claims to support;"
    echo "install it (e.g. pyenv install ${absent[0]}) or put python${absent[0]} on PATH"
    return 1
  fi
}
