"""Command line of ipcxx: `python -m ipcxx demo`."""

import argparse
import sys

from . import demo, demo_sysv


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipcxx", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="exchange data with a second process and time it")
    run.add_argument("--rounds", type=int, default=10_000, help="ping-pong round trips")
    sysv_child = commands.add_parser("demo-sysv-child", help=argparse.SUPPRESS)
    sysv_child.add_argument("keys", nargs=3)
    child = commands.add_parser("demo-child", help=argparse.SUPPRESS)
    child.add_argument("names", nargs=4)
    child.add_argument("--rounds", type=int, required=True)
    arguments = parser.parse_args(argv)
    if arguments.command == "demo":
        return demo.run(arguments.rounds)
    if arguments.command == "demo-sysv-child":
        return demo_sysv.child(*arguments.keys)
    return demo.child(*arguments.names, rounds=arguments.rounds)


if __name__ == "__main__":
    sys.exit(main())
