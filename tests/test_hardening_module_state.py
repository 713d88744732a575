"""Issue 9, class 1: every module instance has its own state. A second instance, a re-import,
a saved function whose module was dropped, and sub-interpreters all keep working: the
exception a method raises is its own module's, and nothing points into a dead module."""

from __future__ import annotations

import sys
import textwrap

import pytest

from . import child_python


def run_python(code: str, *args: str, timeout: float = 120) -> str:
    """The scenario's standard output (child_python.run_python says what fails)."""
    return child_python.run_python(code, *args, timeout=timeout).stdout


FRESH_INSTANCE = """
import importlib.util, sys
def fresh(name):
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
"""


@pytest.mark.parametrize("package", ["posix_ipc", "sysv_ipc"])
def test_a_second_instance_raises_its_own_exceptions(package, make_name):
    output = run_python(
        FRESH_INSTANCE
        + """
import gc, posix_ipc, sysv_ipc
package = sys.argv[1]
first = sys.modules[package + "._" + package]
second = fresh(package + "._" + package)
assert second is not first and second.BusyError is not first.BusyError
if package == "posix_ipc":
    made = second.Semaphore(sys.argv[2], second.O_CREX)
    busy = lambda: made.acquire(0)
else:
    made = second.Semaphore(None, second.IPC_CREX)
    busy = lambda: made.acquire(0)
try:
    busy()
except first.BusyError:
    raise SystemExit("the first instance's class caught the second's error")
except second.BusyError as error:
    print("own", type(error).__module__)
# The instance keeps its module alive: drop every other reference and use it again.
del second
gc.collect()
try:
    busy()
except first.BusyError:
    raise SystemExit("wrong class after the module was dropped")
except Exception as error:
    print("after drop", type(error).__name__)
if package == "posix_ipc":
    made.unlink()
    made.close()
else:
    made.remove()
""",
        package,
        make_name(),
    )
    assert output.split("\n")[:2] == [f"own {package}", "after drop BusyError"]


def test_reimport_after_removal_from_sys_modules_gives_independent_modules(make_name):
    output = run_python(
        """
import gc, sys
import posix_ipc as old
name = sys.argv[1]
held = old.Semaphore(name, old.O_CREX)
for key in [k for k in sys.modules if k.startswith("posix_ipc")]:
    del sys.modules[key]
import posix_ipc as new
assert new.BusyError is not old.BusyError
fresh = new.Semaphore(name)
for semaphore, module in ((held, old), (fresh, new)):
    try:
        semaphore.acquire(0)
    except module.BusyError:
        print("ok", module is new)
del old
gc.collect()
try:
    held.acquire(0)
except Exception as error:
    print(type(error).__name__, type(error) is not new.BusyError)
held.unlink()
held.close()
fresh.close()
""",
        make_name(),
    )
    assert output.split() == ["ok", "False", "ok", "True", "BusyError", "True"]


def test_a_saved_function_outlives_its_dropped_module():
    output = run_python(
        FRESH_INSTANCE
        + """
import gc
module = fresh("posix_ipc._posix_ipc")
unlink = module.unlink_semaphore
error_class = module.ExistentialError
del module
gc.collect()
try:
    unlink("/ipcxx_no_such_semaphore_for_this_test")
except error_class as error:
    print("raised", error)
sysv = fresh("sysv_ipc._sysv_ipc")
remove, attach, sysv_error = sysv.remove_semaphore, sysv.attach, sysv.Error
del sysv
gc.collect()
for call in (lambda: remove(-1), lambda: attach(-1)):
    try:
        call()
    except (sysv_error, ValueError) as error:
        print("sysv", type(error).__name__)
"""
    )
    lines = output.splitlines()
    assert lines[0].startswith("raised No semaphore exists")
    assert lines[1:] == ["sysv ExistentialError", "sysv ValueError"]


def test_many_instances_created_and_dropped_leave_the_first_working(make_name):
    run_python(
        FRESH_INSTANCE
        + """
import gc, posix_ipc, sysv_ipc
for _ in range(200):
    fresh("posix_ipc._posix_ipc")
    fresh("sysv_ipc._sysv_ipc")
gc.collect()
semaphore = posix_ipc.Semaphore(sys.argv[1], posix_ipc.O_CREX)
try:
    semaphore.acquire(0)
except posix_ipc.BusyError:
    pass
semaphore.unlink()
semaphore.close()
""",
        make_name(),
    )


SUBINTERPRETER = """
import sys
code = sys.argv[1]
try:
    import _interpreters as interpreters
except ImportError:
    try:
        import _xxsubinterpreters as interpreters
    except ImportError:
        interpreters = None
if interpreters is not None and sys.argv[2] == "isolated":
    interp = interpreters.create()
    try:
        failure = interpreters.run_string(interp, code)
        if failure is not None:
            raise SystemExit(f"sub-interpreter failed: {failure}")
    finally:
        interpreters.destroy(interp)
else:
    import _testcapi
    if _testcapi.run_in_subinterp(code) != 0:
        raise SystemExit("legacy sub-interpreter failed")
"""

IN_SUBINTERPRETER = """
import posix_ipc, sysv_ipc
name = {name!r}
s = posix_ipc.Semaphore(name, posix_ipc.O_CREX)
try:
    s.acquire(0)
except posix_ipc.BusyError:
    pass
q = posix_ipc.MessageQueue(name, posix_ipc.O_CREX)
try:
    q.request_notification((print, None))
    raise SystemExit("callback notifications must be refused here")
except posix_ipc.Error:
    pass
q.request_notification(None)
q.close(); q.unlink()
s.unlink(); s.close()
k = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX)
try:
    k.acquire(0)
except sysv_ipc.BusyError:
    pass
k.remove()
"""


@pytest.mark.parametrize("kind", ["isolated", "legacy"])
def test_both_modules_work_in_a_sub_interpreter_and_after_it_is_destroyed(kind, make_name):
    """Imported first in the main interpreter, then in a sub-interpreter that is destroyed:
    the main interpreter's modules must not point into the dead one (and vice versa)."""
    inner = IN_SUBINTERPRETER.format(name=make_name())
    run_python(
        "import posix_ipc, sysv_ipc\n"
        + SUBINTERPRETER
        + textwrap.dedent(
            """
            for _ in range(3):
                pass
            try:
                posix_ipc.unlink_semaphore("/ipcxx_no_such_semaphore_for_this_test")
            except posix_ipc.ExistentialError:
                pass
            k = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX)
            try:
                k.acquire(0)
            except sysv_ipc.BusyError:
                pass
            k.remove()
            """
        ),
        inner,
        kind,
    )


def test_a_module_first_imported_in_a_destroyed_sub_interpreter_imports_again(make_name):
    inner = IN_SUBINTERPRETER.format(name=make_name())
    run_python(
        SUBINTERPRETER
        + textwrap.dedent(
            """
            import posix_ipc, sysv_ipc
            try:
                posix_ipc.Semaphore("/ipcxx_no_such_semaphore_for_this_test")
            except posix_ipc.ExistentialError:
                print("main ok")
            """
        ),
        inner,
        "isolated",
    )


def test_modules_declare_sub_interpreter_support():
    if sys.version_info < (3, 12):
        pytest.skip("Py_mod_multiple_interpreters exists from Python 3.12 on")
    # An isolated sub-interpreter (own GIL) refuses modules that do not declare support.
    run_python(
        SUBINTERPRETER,
        "import posix_ipc, sysv_ipc; assert posix_ipc.Semaphore and sysv_ipc.Semaphore",
        "isolated",
    )
