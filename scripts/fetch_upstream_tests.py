"""Download an upstream sdist from PyPI into a folder and print the folder holding its tests/.

Usage: fetch_upstream_tests.py PACKAGE VERSION DESTINATION [TESTS]
(TESTS: the tests' folder inside the sdist when it is not tests/.)

The upstream code is only fetched at test time, never committed.
"""

import subprocess
import sys
import tarfile
from pathlib import Path


def fetch(package: str, version: str, destination: Path, tests: str = "tests") -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"{package}=={version}",
            "-d",
            str(destination),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    archives = sorted(destination.glob(f"{package.replace('_', '?')}-{version}.tar.gz"))
    if not archives:
        raise SystemExit(f"no sdist for {package} {version} in {destination}")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(destination)
    folder = destination / f"{package}-{version}"
    if not (folder / tests).is_dir():
        raise SystemExit(f"{folder} has no {tests}/ folder")
    return folder


def main() -> None:
    package, version, destination = sys.argv[1:4]
    print(fetch(package, version, Path(destination), *sys.argv[4:5]))


if __name__ == "__main__":
    main()
