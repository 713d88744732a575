#!/usr/bin/env bash
# ThreadSanitizer run of the free-threaded build (issue 19, docs/free-threading.md): builds a
# TSan-instrumented CPython 3.14t from the source release in ../shared/toolchains
# (scripts/build_cpython.sh 3.14t-tsan, cached outside the tree apart from the plain 3.14t), builds
# the three extension modules with -fsanitize=thread against it, and runs, with the GIL off
# (PYTHON_GIL=0) in a private IPC namespace, the thread stress (every kind of
# tests/test_thread_stress.py, at its CI size) and scripts/view_exit_storm.py. Reports go to log
# files (child processes included); entries of scripts/tsan.supp and of CPython's own list
# (Tools/tsan/suppressions_free_threading.txt of the same source) are suppressed. Prints the
# number of reports and of reports with a frame in ipcxx's own code; exits non-zero if any
# report is left or a run failed. Not part of CI: too slow (the instrumented CPython build is
# several times longer than the plain one's 6.5 minutes, once; the runs are 5-15 times slower
# than plain ones). Needs root (unshare). Usage:
#
#   bash scripts/tsan_free_threaded.sh [STORM_RUNS (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
storm_runs=${1:-5}
started=$SECONDS
step() { printf '\n==== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "TSan-instrumented CPython 3.14t (scripts/build_cpython.sh 3.14t-tsan)"
python=$(bash scripts/build_cpython.sh 3.14t-tsan)
"$python" -VV

# The suppressions: ours (each entry says why it is a tool artifact) and CPython's own list for
# its free-threaded build (races in the interpreter that its developers track), from the same
# source release.
logs=$root/build/tsan-logs
rm -rf "$logs" && mkdir -p "$logs"
suppressions=$root/build/tsan-suppressions.txt
{
  cat scripts/tsan.supp
  tar -xJOf "${IPCXX_TOOLCHAINS:-$root/../shared/toolchains}/Python-3.14.7.tar.xz" \
    Python-3.14.7/Tools/tsan/suppressions_free_threading.txt
} >"$suppressions"

# Interpreter start-up and pip run under TSan too; their reports (CPython's, pip's) are not the
# subject of this run and go to a separate folder.
export TSAN_OPTIONS="suppressions=$suppressions log_path=$root/build/tsan-setup/tsan exitcode=0"
rm -rf "$root/build/tsan-setup" && mkdir -p "$root/build/tsan-setup"

step "venv and the extensions built with -fsanitize=thread"
venv=build/venv-3.14t-tsan
made=$("$venv/bin/python" -c 'import sys; print(sys.version, sys.base_prefix)' 2>/dev/null) || true
if [ "$made" != "$("$python" -c 'import sys; print(sys.version, sys.prefix)')" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pytest>=7,<10" \
  "scikit-build-core>=0.10,<2" "nanobind>=2.4,<4"
flags="-fsanitize=thread -fno-omit-frame-pointer -g"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation \
  --config-settings=cmake.build-type=RelWithDebInfo \
  "--config-settings=cmake.define.CMAKE_CXX_FLAGS=$flags" \
  "--config-settings=cmake.define.CMAKE_C_FLAGS=$flags" \
  --config-settings=cmake.define.CMAKE_MODULE_LINKER_FLAGS=-fsanitize=thread \
  --config-settings=cmake.define.CMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
  --config-settings=cmake.define.IPCXX_WERROR=ON --config-settings=build-dir=build/tsan-py .
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
extensions=$(find "$site/posix_ipc" "$site/sysv_ipc" "$site/ipcxx" -name '*.so')
[ -n "$extensions" ] || { echo "error: no extension module installed in $site" >&2 && exit 1; }
for file in $extensions; do
  # grep without -q: -q would stop reading at the first match, nm would die of SIGPIPE, and
  # pipefail would report the instrumented module as not instrumented.
  if ! nm -D "$file" | grep __tsan_func_entry >/dev/null; then
    echo "error: $file is not instrumented" >&2
    exit 1
  fi
done

# The runs: the GIL off, reports to $logs (one file per process, children included), no report
# turned into an exit status (the count below decides), second stacks for every race.
export PYTHON_GIL=0
export TSAN_OPTIONS="suppressions=$suppressions log_path=$logs/tsan exitcode=0 history_size=4"
# shellcheck disable=SC2016 # expanded by the inner shell
isolated=(unshare --ipc --mount -- bash -c 'mount -t tmpfs tmpfs /dev/shm &&
  mount -t mqueue none /dev/mqueue && exec "$@"' isolated)
status=0

step "Thread stress: every kind of tests/test_thread_stress.py, 2 rounds (its CI size)"
kinds=$("$venv/bin/python" -c 'import sys; sys.path.insert(0, "tests")
import test_thread_stress as t; print(" ".join(t.KINDS))')
for kind in $kinds; do
  # The child of the pytest test, run directly with a longer deadline (TSan runs it 5-15
  # times slower); it prints its report as JSON and removes every object it made.
  kind_started=$SECONDS
  report=$(IPCXX_STRESS_PREFIX="ipcxx_tsan_${kind}_" "${isolated[@]}" \
    "$venv/bin/python" tests/test_thread_stress.py "$kind" 2 300 | tail -n 1) || status=1
  printf '%-22s %4ss  %s\n' "$kind" $((SECONDS - kind_started)) "$report"
  "$venv/bin/python" -c 'import json, sys
report = json.loads(sys.argv[1])
sys.exit(1 if report["failures"] or report["operations"] <= 32 else 0)' "$report" || status=1
done

step "scripts/view_exit_storm.py: $storm_runs runs of 8 threads x 2 000 exits of one view"
"${isolated[@]}" "$venv/bin/python" scripts/view_exit_storm.py --runs "$storm_runs" \
  --exits 2000 || status=1

step "ThreadSanitizer reports"
reports=0
ours=0
shopt -s nullglob
for log in "$logs"/*; do
  # One report is the text between a "WARNING: ThreadSanitizer" line and its "=====" end;
  # it is ipcxx's when one of its frames is in cpp/ or python/src/ of this checkout.
  counts=$(awk -v here="$root/" '
    /WARNING: ThreadSanitizer/ { inside = 1; total++; mine = 0 }
    inside && (index($0, here "cpp/") || index($0, here "python/src/")) { mine = 1 }
    inside && /^==================/ && total { if (mine) own++; inside = 0 }
    END { print total + 0, own + 0 }' "$log")
  read -r total own <<<"$counts"
  reports=$((reports + total))
  ours=$((ours + own))
  if ((total)); then
    printf '\n---- %s\n' "$log"
    cat "$log"
  fi
done
echo "ThreadSanitizer: $reports reports, $ours with a frame in ipcxx's code" \
  "($(date -u +%Y-%m-%dT%H:%MZ), $((SECONDS - started)) s, $(git rev-parse --short HEAD))"
if ((reports || status)); then
  exit 1
fi
