#!/usr/bin/env bash
# Runs every test of ipcxx on a fresh Linux machine: installs what the tests need (Debian and
# pip packages), builds and runs the GoogleTest suite through ctest, installs the Python
# package, runs pytest (our suite, the examples, and upstream posix_ipc's own tests fetched
# from PyPI), checks the type stubs, and lints. Exits non-zero on any failure, and when a
# runner collects no tests.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}

step() { printf '\n==== %s\n' "$*"; }
# POSIX objects on this machine, one path a line, sorted.
ipc_objects() {
  {
    find /dev/shm /dev/mqueue -mindepth 1 -maxdepth 1 2>/dev/null
    for kind in sem shm msg; do
      awk -v kind="$kind" 'NR > 1 { print "sysv-" kind ":key=" $1 ":id=" $2 }' "/proc/sysvipc/$kind"
    done
  } | sort
}

step "Debian packages"
missing=()
for package in libgtest-dev cmake ninja-build g++ clang-format; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

step "IPC namespaces visible to the leak guard"
# The kernel serves message queues without this mount, but the guard lists /dev/mqueue.
if ! mountpoint -q /dev/mqueue 2>/dev/null; then
  mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue ||
    echo "warning: /dev/mqueue not mountable; the leak guard cannot list message queues"
fi

initial_objects=$(ipc_objects)

step "Python packages"
"$python" -m pip install --quiet --disable-pip-version-check \
  "pytest>=7,<10" "mypy>=1.8,<2" "ruff>=0.4,<1" "hypothesis>=6,<7" "numpy>=1.22" \
  "scikit-build-core>=0.10,<2" "nanobind>=2.4,<4"

step "Lint"
lint_paths=()
for folder in python tests bench examples scripts; do [ -d "$folder" ] && lint_paths+=("$folder"); done
"$python" -m ruff check "${lint_paths[@]}"
"$python" -m ruff format --check "${lint_paths[@]}"
git ls-files -- '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

step "C++ core: build with -Werror and run GoogleTest"
build=build/ci-cpp
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIPCXX_BUILD_TESTS=ON -DIPCXX_WERROR=ON >/dev/null
cmake --build "$build"
ctest --test-dir "$build" --output-on-failure --no-tests=error

step "C++ core: GoogleTest under AddressSanitizer and UndefinedBehaviorSanitizer"
cmake -S . -B build/ci-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DIPCXX_BUILD_TESTS=ON -DIPCXX_WERROR=ON -DIPCXX_SANITIZE=ON >/dev/null
cmake --build build/ci-sanitize
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build/ci-sanitize --output-on-failure --no-tests=error

step "C++ core: find_package(ipcxx) from an installed copy"
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix/install" >/dev/null
cmake -S examples/cpp -B "$prefix/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$prefix/install" >/dev/null
cmake --build "$prefix/consumer"
"$prefix/consumer/ipcxx_example"

step "Python package: install (warnings are errors)"
"$python" -m pip install --quiet --disable-pip-version-check --no-build-isolation \
  -C cmake.define.IPCXX_WERROR=ON .

step "Type stubs"
(cd "$prefix" && "$python" -m mypy.stubtest posix_ipc sysv_ipc)
"$python" -m mypy --strict tests/typing/posix_ipc_sample.py tests/typing/sysv_ipc_sample.py

# Upstream's suites, unmodified, against ipcxx. They were written for unittest: run them
# without capture so sys.stdin.fileno() works. They leave randomly named POSIX segments
# behind; what they create is removed afterwards.
run_upstream_suite() {
  local package=$1 version=$2 folder before status=0
  step "Upstream $package $version test suite, unmodified, against ipcxx"
  folder=$("$python" scripts/fetch_upstream_tests.py "$package" "$version" "$prefix/upstream")
  before=$(ipc_objects)
  (cd "$folder" && "$python" -m pytest -q -s -p no:cacheprovider tests </dev/null) || status=$?
  comm -13 <(echo "$before") <(ipc_objects) | while read -r path; do
    echo "removing an object upstream's suite left behind: $path"
    rm -f -- "$path"
  done
  return "$status"
}
run_upstream_suite posix_ipc 1.3.2
run_upstream_suite sysv_ipc 1.2.0

step "No IPC object left behind by the steps so far (pytest has its own guard)"
leftover=$(comm -13 <(echo "$initial_objects") <(ipc_objects))
if [ -n "$leftover" ]; then
  echo "left behind:"; echo "$leftover"
  exit 1
fi
echo "none"

step "pytest: the ipcxx suite"
"$python" -m pytest -q -p no:cacheprovider tests

