#!/usr/bin/env bash
# Runs every test of ipcxx on a fresh Linux machine: installs what the tests need (Debian and
# pip packages), builds and runs the GoogleTest suite through ctest, then for every Python
# version the package claims (pyproject.toml's classifiers; a Free Threading one adds 3.14t)
# builds the package in its own venv and runs upstream posix_ipc's and sysv_ipc's own tests
# (fetched from PyPI, each in a private IPC namespace) and the ipcxx pytest suite; on 3.14t the
# suite with PYTHON_GIL=0, and the upstream suites and the thread stress once more with
# PYTHON_GIL=1. Interpreters this machine lacks are provided (scripts/pythons.sh):
# 3.14 and 3.15 are Debian's own builds in a Debian unstable chroot, 3.14t is built from source,
# both cached outside the project tree. Then the ipcxx suite once more against the build with
# the free-threading object locks compiled in (newest regular version), and against the ASan +
# UBSan build of the extensions. Lint once; stubs on the oldest and newest. Exits non-zero on any
# failure, when a runner collects no tests, and when a claimed Python version is missing.
#
# Nothing is installed into any interpreter's own site-packages: every pip install goes into
# a venv under build/. IPCXX_PYTHON_VERSIONS="3.11" narrows the run for a quick local check
# (CI uses the default: every claimed version).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# The claimed versions (python_versions), find_interpreters and `on` (scripts/pythons.sh).
# shellcheck source=scripts/pythons.sh
source scripts/pythons.sh
# Lint and the sanitizer run use this one (the machine's default python3).
main_version=3.11

pip_options=(--quiet --disable-pip-version-check)
# A hung pytest run is killed (its whole process group) instead of using up CI's time limit.
bounded=(timeout --kill-after=30 "${IPCXX_SUITE_TIMEOUT:-900}")
test_packages=("pytest>=7,<10" "hypothesis>=6,<7" "numpy>=1.22"
  "scikit-build-core>=0.10,<2" "nanobind>=2.4,<4")
tool_packages=("mypy>=1.8,<2" "ruff>=0.4,<1")

step() { printf '\n==== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
# POSIX and System V objects visible here, one a line, sorted.
ipc_objects() {
  {
    find /dev/shm /dev/mqueue -mindepth 1 -maxdepth 1 2>/dev/null
    for kind in sem shm msg; do
      awk -v kind="$kind" 'NR > 1 { print "sysv-" kind ":key=" $1 ":id=" $2 }' "/proc/sysvipc/$kind"
    done
  } | sort
}
export -f ipc_objects

# make_venv FOLDER VERSION PACKAGE...: a venv of VERSION's interpreter (reused when a previous
# run made it from the same interpreter) with the packages installed.
make_venv() {
  local folder=$1 version=$2
  shift 2
  local made expected
  made=$(on "$version" "$folder/bin/python" -c 'import sys; print(sys.version, sys.base_prefix)' \
    2>/dev/null) || true
  expected=$(on "$version" "${interpreter[$version]}" -c 'import sys; print(sys.version, sys.prefix)')
  if [ "$made" != "$expected" ]; then
    rm -rf "$folder"
    on "$version" "${interpreter[$version]}" -m venv "$folder"
  fi
  on "$version" "$folder/bin/python" -m pip install "${pip_options[@]}" "$@"
}

step "Debian packages"
missing=()
for package in libgtest-dev cmake ninja-build g++ clang-format util-linux mount spin; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi

step "Python interpreters: ${python_versions[*]}"
find_interpreters "${python_versions[@]}" "$main_version"

step "IPC namespaces visible to the leak guard"
# The kernel serves message queues without this mount, but the guard lists /dev/mqueue.
if ! mountpoint -q /dev/mqueue 2>/dev/null; then
  mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue ||
    echo "warning: /dev/mqueue not mountable; the leak guard cannot list message queues"
fi
# Upstream's suites leave objects behind; each runs in a private IPC and mount namespace
# (own System V tables, own message queues, a private tmpfs on /dev/shm) that vanishes with
# them. Without it (not root, no unshare) they run here and must leave nothing. The ipcxx
# suites run in such a namespace too, shielded from other programs on the machine.
isolate=0
if unshare --ipc --mount -- sh -c \
  'mount -t tmpfs tmpfs /dev/shm && mount -t mqueue none /dev/mqueue' 2>/dev/null; then
  isolate=1
  echo "upstream's suites run in private IPC namespaces (unshare --ipc --mount)"
else
  echo "warning: unshare --ipc --mount with private /dev/shm and /dev/mqueue failed; upstream's"
  echo "suites run without isolation, nothing is removed, and any leftover fails the run;"
  echo "the ipcxx suites' leak guard then sees every object other programs create meanwhile"
fi

initial_objects=$(ipc_objects)

step "Python $main_version venv with the test and lint tools"
main_venv=build/venv-$main_version
make_venv "$main_venv" "$main_version" "${test_packages[@]}" "${tool_packages[@]}"
main_python=$main_venv/bin/python

step "Lint"
lint_paths=()
for folder in python tests bench examples scripts; do [ -d "$folder" ] && lint_paths+=("$folder"); done
"$main_python" -m ruff check "${lint_paths[@]}"
"$main_python" -m ruff format --check "${lint_paths[@]}"
git ls-files -- '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

step "C++ core: build with -Werror and run GoogleTest"
build=build/ci-cpp
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DIPCXX_BUILD_TESTS=ON -DIPCXX_WERROR=ON >/dev/null
cmake --build "$build"
ctest --test-dir "$build" --output-on-failure --no-tests=error

step "Channel protocol: spin model check (model/channel.pml)"
bash scripts/check_model.sh

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
"$prefix/consumer/ipcxx_channel_example"

step "No IPC object left behind by the C++ steps (each pytest run has its own guard)"
leftover=$(comm -13 <(echo "$initial_objects") <(ipc_objects))
if [ -n "$leftover" ]; then
  echo "left behind:"
  echo "$leftover"
  exit 1
fi
echo "none"

step "Upstream test suites from PyPI"
posix_upstream=$("$main_python" scripts/fetch_upstream_tests.py posix_ipc 1.3.2 "$prefix/upstream")
sysv_upstream=$("$main_python" scripts/fetch_upstream_tests.py sysv_ipc 1.2.0 "$prefix/upstream")
echo "$posix_upstream"
echo "$sysv_upstream"

# isolated FOLDER COMMAND...: COMMAND, run in FOLDER, in a private IPC and mount namespace
# with its own /dev/shm and /dev/mqueue; lists what it left there, which vanishes with it.
isolated() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --ipc --mount -- bash -c '
    set -eu
    mount -t tmpfs tmpfs /dev/shm
    mount -t mqueue none /dev/mqueue
    folder=$1
    shift
    status=0
    (cd "$folder" && "$@") || status=$?
    left=$(ipc_objects)
    echo "left in the private IPC namespace (gone with it): ${left:-nothing}"
    exit "$status"' isolated "$@"
}

# run_upstream_suite VERSION PYTHON FOLDER: upstream's suite, unmodified, against ipcxx. It was
# written for unittest: run it without capture so sys.stdin.fileno() works.
run_upstream_suite() {
  local version=$1 python=$2 folder=$3 before appeared status=0 place
  mapfile -t place < <(entry "$version")
  local suite=("${bounded[@]}" "${place[@]}" "$python" -m pytest -q -s -p no:cacheprovider tests)
  if ((isolate)); then
    isolated "$folder" "${suite[@]}" </dev/null
    return
  fi
  before=$(ipc_objects)
  (cd "$folder" && "${suite[@]}" </dev/null) || status=$?
  appeared=$(comm -13 <(echo "$before") <(ipc_objects))
  if [ -n "$appeared" ]; then
    echo "error: these objects appeared during upstream's suite and are still there (not removed;"
    echo "they may be upstream's leftovers or another program's):"
    echo "$appeared"
    return 1
  fi
  return "$status"
}

# Tests that cannot pass in one configuration, by pytest node id; each is deselected in that
# configuration only, and the log says so. None today: the tests themselves know (a
# version-aware expectation, a skip under IPCXX_SANITIZED=1 with its reason).
declare -A incompatible=()

# run_ipcxx_suite VERSION PYTHON CONFIGURATION [PATH...]: the ipcxx pytest suite (or the files
# given), whose session guard fails on any object a test left behind. In a private namespace when possible, so that objects other
# programs create meanwhile on a shared machine neither disturb the guard nor are seen by it.
run_ipcxx_suite() {
  local place node
  mapfile -t place < <(entry "$1")
  local suite=("${bounded[@]}" "${place[@]}" "$2" -m pytest -q -p no:cacheprovider)
  for node in ${incompatible[$3]:-}; do
    echo "deselected in this configuration (see scripts/test.sh): $node"
    suite+=(--deselect "$node")
  done
  if (($# > 3)); then
    suite+=("${@:4}")
  else
    suite+=(tests)
  fi
  if ((isolate)); then
    isolated "$root" "${suite[@]}"
  else
    "${suite[@]}"
  fi
}

# The newest regular (not free-threaded) version of the run.
newest_version=$main_version
for version in "${python_versions[@]}"; do
  [[ $version == *t ]] || newest_version=$version
done

for version in "${python_versions[@]}"; do
  venv=build/venv-$version
  python=$venv/bin/python
  step "Python $version: venv with the test packages"
  if [ "$version" != "$main_version" ]; then
    make_venv "$venv" "$version" "${test_packages[@]}"
  fi

  step "Python $version: install the package (warnings are errors)"
  on "$version" "$python" -m pip install "${pip_options[@]}" --no-build-isolation \
    --config-settings=cmake.define.IPCXX_WERROR=ON .

  # The stubs depend on the version (PEP 688's Buffer is an ABC from 3.12 on; numpy declares
  # __buffer__ only from 3.12 on): they are checked against the oldest and the newest Python run.
  if [ "$version" = "${python_versions[0]}" ] || [ "$version" = "$newest_version" ]; then
    step "Python $version: type stubs (stubtest; mypy --strict on tests/typing and the guide)"
    on "$version" "$python" -m pip install "${pip_options[@]}" "${tool_packages[@]}"
    (cd "$prefix" && on "$version" "$root/$python" -m mypy.stubtest posix_ipc sysv_ipc ipcxx._ipcxx)
    on "$version" "$python" tests/typing/check.py
  fi

  step "Python $version: upstream posix_ipc 1.3.2 test suite, unmodified, against ipcxx"
  run_upstream_suite "$version" "$root/$python" "$posix_upstream"
  step "Python $version: upstream sysv_ipc 1.2.0 test suite, unmodified, against ipcxx"
  run_upstream_suite "$version" "$root/$python" "$sysv_upstream"

  # faster-fifo's suite moves over 4 million objects (5 GB in its big-message test) between 23
  # processes or threads: 232 s of tests on this 2-core machine at load 35, plus its numpy < 2
  # install. One interpreter runs it, the main version; the compat layer is pure Python.
  if [ "$version" = "$main_version" ]; then
    step "Python $version: faster-fifo 1.4.7 test suite, unmodified, against ipcxx.compat.faster_fifo"
    mapfile -t place < <(entry "$version")
    ff_suite=("${bounded[@]}" "${place[@]}" "$root/$python" scripts/faster_fifo_tests.py
      "$prefix/upstream")
    if ((isolate)); then
      isolated "$root" "${ff_suite[@]}" </dev/null
    else
      "${ff_suite[@]}" </dev/null
    fi
  fi

  if [[ $version != *t ]]; then
    step "Python $version: pytest, the ipcxx suite"
    run_ipcxx_suite "$version" "$root/$python" "$version"
    continue
  fi

  # The free-threaded build. Importing a module that does not declare Py_mod_gil =
  # Py_MOD_GIL_NOT_USED turns the GIL back on (with a warning): every module of the package must
  # leave it off, so the runs above already had it off.
  step "Python $version: the GIL stays off after importing every module of the package"
  (cd "$prefix" && on "$version" "$root/$python" -W error -c 'import importlib, pkgutil, sys
imported = []
for name in ("posix_ipc", "sysv_ipc", "ipcxx"):
    package = importlib.import_module(name)
    imported += [name] + [importlib.import_module(module.name).__name__ for module in
        pkgutil.walk_packages(package.__path__, name + ".") if module.name != "ipcxx.__main__"]
assert not sys._is_gil_enabled(), "an import enabled the GIL"
print(f"the GIL is off after importing {len(imported)} modules:", ", ".join(imported))')
  # The ipcxx suite runs once, with PYTHON_GIL=0: the GIL stays off whatever any module (the
  # test tools' included) declares, which is what free-threading users run. The extensions are
  # the same code with the GIL on (PYTHON_GIL=1: Py_GIL_DISABLED is a compile-time switch, the
  # object locks are PyMutex either way), and the newest regular version runs the whole suite on
  # those locks with a GIL below (IPCXX_OBJECT_LOCKS=ON), so with the GIL on 3.14t only the
  # upstream suites and the thread stress run again: the stress because the GIL changes which
  # interleavings its threads meet.
  step "Python $version with PYTHON_GIL=0: the ipcxx suite"
  PYTHON_GIL=0 run_ipcxx_suite "$version" "$root/$python" "$version-gil0"
  step "Python $version with PYTHON_GIL=1: upstream suites and the thread stress"
  PYTHON_GIL=1 run_upstream_suite "$version" "$root/$python" "$posix_upstream"
  PYTHON_GIL=1 run_upstream_suite "$version" "$root/$python" "$sysv_upstream"
  PYTHON_GIL=1 run_ipcxx_suite "$version" "$root/$python" "$version-gil1" \
    tests/test_thread_stress.py
done

step "Packaging: companion wheels, every version's manylinux ipcxx wheel, installed offline"
IPCXX_PACKAGING_PYTHON="${interpreter[$main_version]}" bash scripts/test_packaging.sh

# The locking paths of the free-threading audit (docs/free-threading.md), compiled in on a regular
# interpreter: the newest regular Python of the run (its PyMutex) runs the whole suite on them,
# with the GIL (the free-threaded build runs them without).
locks_version=$newest_version
step "Python $locks_version: the ipcxx suite against the object-locks build (IPCXX_OBJECT_LOCKS=ON)"
locks_venv=build/venv-$locks_version-locks
make_venv "$locks_venv" "$locks_version" "${test_packages[@]}"
on "$locks_version" "$locks_venv/bin/python" -m pip install "${pip_options[@]}" \
  --no-build-isolation --config-settings=cmake.define.IPCXX_OBJECT_LOCKS=ON \
  --config-settings=cmake.define.IPCXX_WERROR=ON \
  "--config-settings=build-dir=build/locks-py-$locks_version" .
run_ipcxx_suite "$locks_version" "$root/$locks_venv/bin/python" locks

step "Python $main_version: the ipcxx suite against the ASan + UBSan build of the extensions"
sanitize_venv=build/venv-$main_version-sanitize
make_venv "$sanitize_venv" "$main_version" "${test_packages[@]}"
"$sanitize_venv/bin/python" -m pip install "${pip_options[@]}" --no-build-isolation \
  --config-settings=cmake.define.IPCXX_SANITIZE=ON --config-settings=cmake.define.IPCXX_WERROR=ON \
  --config-settings=cmake.build-type=RelWithDebInfo --config-settings=build-dir=build/sanitize-py .
# CPython is not built with ASan: the runtime is preloaded, into every child process too (they
# inherit the environment). PYTHONMALLOC=malloc routes Python's own objects through malloc
# so that ASan also sees writes past the end of a bytes object the extension fills. CPython
# leaks at exit by design, hence no leak detection. Each report also goes to a log file, so
# that a report in a child whose exit status a test ignores still fails the run.
sanitize_logs=$root/build/sanitize-logs
rm -rf "$sanitize_logs" && mkdir -p "$sanitize_logs"
sanitize_status=0
LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$sanitize_logs/asan \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$sanitize_logs/ubsan \
  PYTHONMALLOC=malloc IPCXX_SANITIZED=1 \
  run_ipcxx_suite "$main_version" "$root/$sanitize_venv/bin/python" sanitize || sanitize_status=$?
if compgen -G "$sanitize_logs/*" >/dev/null; then
  for report in "$sanitize_logs"/*; do
    printf '\n---- %s\n' "$report"
    cat "$report"
  done
  echo "error: AddressSanitizer or UndefinedBehaviorSanitizer reported the errors above"
  exit 1
fi
if ((sanitize_status)); then
  exit "$sanitize_status"
fi

step "All passed: Python ${python_versions[*]}"
