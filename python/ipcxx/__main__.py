"""Command line of ipcxx: `python -m ipcxx ls | stat | rm | demo` (also the `ipcxx` command)."""

import argparse
import os
import sys

from . import __version__
from .cli.commands import add_commands

# The demo modules import posix_ipc and sysv_ipc at their top; they are imported only when a
# demo runs, so that ls/stat/rm still work when one of the extension modules fails to load.


def _run_demo(arguments: argparse.Namespace) -> int:
    from . import demo

    return demo.run(arguments.rounds)


def _run_sysv_child(arguments: argparse.Namespace) -> int:
    from . import demo_sysv

    return demo_sysv.child(*arguments.keys)


def _run_child(arguments: argparse.Namespace) -> int:
    from . import demo

    return demo.child(*arguments.names, rounds=arguments.rounds)


def main(argv: "list[str] | None" = None) -> int:
    """Runs one subcommand with argv (sys.argv[1:] when None) and returns its exit status;
    the `ipcxx` console script calls it with no arguments."""
    # Run as `python -m ipcxx`, argv[0] is this file; as the console script it is `ipcxx`.
    program = os.path.basename(sys.argv[0])
    parser = argparse.ArgumentParser(
        prog="python -m ipcxx" if program == "__main__.py" else program,
        description="Inspect and remove POSIX and System V IPC objects, or run the demo.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"ipcxx {__version__}")
    # The demo's child commands get no help=, which keeps them out of the listing (help=SUPPRESS
    # is listed as '==SUPPRESS==' by Python 3.11), and the metavar keeps them out of the usage.
    commands = parser.add_subparsers(dest="command", required=True, metavar="{ls,stat,rm,demo}")
    add_commands(commands)
    run = commands.add_parser("demo", help="exchange data with a second process and time it")
    run.add_argument("--rounds", type=int, default=10_000, help="ping-pong round trips")
    run.set_defaults(run=_run_demo)
    sysv_child = commands.add_parser("demo-sysv-child")
    sysv_child.add_argument("keys", nargs=3)
    sysv_child.set_defaults(run=_run_sysv_child)
    child = commands.add_parser("demo-child")
    child.add_argument("names", nargs=4)
    child.add_argument("--rounds", type=int, required=True)
    child.set_defaults(run=_run_child)
    arguments = parser.parse_args(argv)
    # Everything ls, stat and rm print is escaped (cli/names.py), so it encodes on any stream;
    # should something still not encode, a backslash escape beats a traceback half way.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return arguments.run(arguments)
    except BrokenPipeError:
        # `ipcxx ls | head`: the reader is gone, which is not an error of ours. Point stdout
        # at /dev/null so that the interpreter's final flush does not report it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
