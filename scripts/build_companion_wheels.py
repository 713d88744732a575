"""Writes the posix_ipc and sysv_ipc companion wheels: metadata only, requiring ipcxx."""

# ipcxx installs the import packages posix_ipc and sysv_ipc, but a wheel has one .dist-info,
# so pip knows them only as the distribution "ipcxx": a program whose requirements name
# posix_ipc or sysv_ipc would pull upstream in beside it, and importlib.metadata would not
# know the names. Each companion wheel holds no code, only a .dist-info that says
# "posix_ipc 1.3.2+ipcxx.<v>, Requires-Dist: ipcxx==<v>". The local version label keeps them
# off PyPI (which refuses local versions) and sorts them above upstream's release of the
# same number, so `posix_ipc>=1.0` and `posix_ipc==1.3.2` are both met by the companion.
#
# Usage: python scripts/build_companion_wheels.py OUTDIR [--ipcxx-version V]
# Stdlib only; the wheels are reproducible (fixed timestamps, SOURCE_DATE_EPOCH if set).

import argparse
import base64
import hashlib
import os
import re
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (distribution name, the upstream release whose API ipcxx provides, what it is)
COMPANIONS = (
    ("posix_ipc", "1.3.2", "POSIX IPC primitives (semaphores, shared memory, message queues)"),
    ("sysv_ipc", "1.2.0", "System V IPC primitives (semaphores, shared memory, message queues)"),
)

# PEP 440 public versions as ipcxx writes them (release, optional pre/post/dev), normalised.
_PUBLIC_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?")


def ipcxx_version(pyproject: Path) -> str:
    """The [project] version of pyproject.toml (tomllib where present, Python 3.11+)."""
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python 3.10: the one line `version = "..."` of [project]
        section = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        found = section and re.search(r'^version\s*=\s*"([^"]+)"\s*$', section.group(1), re.M)
        if not found:
            raise SystemExit(f"error: no [project] version in {pyproject}") from None
        return found.group(1)
    return tomllib.loads(text)["project"]["version"]


def wheel_name_part(name: str) -> str:
    """A distribution name as the wheel file name and .dist-info folder spell it (PEP 503
    normalisation, then '-' as '_': the binary distribution format's escaping)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def metadata(name: str, version: str, upstream: str, what: str, ipcxx: str) -> str:
    """Core metadata 2.1 of one companion."""
    fields = [
        ("Metadata-Version", "2.1"),
        ("Name", name),
        ("Version", version),
        ("Summary", f"{name} {upstream} API, provided by ipcxx {ipcxx} (this package has no code)"),
        ("License", "BSD-3-Clause"),
        ("Classifier", "Operating System :: POSIX :: Linux"),
        ("Classifier", "Programming Language :: Python :: 3 :: Only"),
        ("Requires-Python", ">=3.10"),
        ("Requires-Dist", f"ipcxx=={ipcxx}"),
        ("Description-Content-Type", "text/markdown"),
    ]
    body = f"""\
# {name} {version}

{what}, as the `{name}` module of
ipcxx {ipcxx}: a drop-in replacement for the PyPI
distribution `{name}` {upstream}.

This wheel contains no code. It only tells pip and `importlib.metadata` that the distribution
`{name}` is installed, so that packages whose requirements name `{name}` (for example
`{name}>=1.0`) are satisfied by ipcxx instead of pulling in upstream's `{name}` beside it.
It requires `ipcxx=={ipcxx}`, which installs the `{name}` import package itself.

If something later installs upstream's `{name}` (a requirement that this version does not
meet, such as `{name}<{upstream}`, or `pip install --force-reinstall {name}` from PyPI), pip
replaces this companion with upstream's distribution: ipcxx stays installed, and Python still
imports ipcxx's `{name}` package folder ahead of upstream's single-file module in the same
site-packages, but the metadata then describes upstream. Reinstall this wheel to undo it.
"""
    return "".join(f"{key}: {value}\n" for key, value in fields) + "\n" + body


def record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def write_wheel(outdir: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A py3-none-any wheel with files (path in the wheel -> text) and their RECORD."""
    dist_info = f"{wheel_name_part(name)}-{version}.dist-info"
    contents = {f"{dist_info}/{path}": text.encode("utf-8") for path, text in files.items()}
    record = "".join(
        f"{path},{record_hash(data)},{len(data)}\n" for path, data in sorted(contents.items())
    )
    contents[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode("utf-8")

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01, zip's first
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    target = outdir / f"{wheel_name_part(name)}-{version}-py3-none-any.whl"
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        # RECORD last, as the wheel spec recommends; the other entries in sorted order.
        for path in sorted(contents, key=lambda p: (p.endswith("/RECORD"), p)):
            entry = zipfile.ZipInfo(path, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o100644 << 16
            wheel.writestr(entry, contents[path])
    partial.replace(target)
    return target


def build(outdir: Path, ipcxx: str) -> list[Path]:
    """Writes both companions into outdir and returns their paths."""
    if not _PUBLIC_VERSION.fullmatch(ipcxx):
        raise SystemExit(f"error: ipcxx version {ipcxx!r} is not a normalised public version")
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, upstream, what in COMPANIONS:
        # A local version label may hold only letters, digits and '.'; ipcxx's version is
        # public and normalised (checked above), so the result is normalised too.
        version = f"{upstream}+ipcxx.{ipcxx}"
        wheel_file = (
            "Wheel-Version: 1.0\n"
            "Generator: ipcxx scripts/build_companion_wheels.py\n"
            "Root-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        )
        files = {
            "METADATA": metadata(name, version, upstream, what, ipcxx),
            "WHEEL": wheel_file,
        }
        written.append(write_wheel(outdir, name, version, files))
    return written


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", type=Path, help="folder to write the wheels into")
    parser.add_argument(
        "--ipcxx-version",
        help="the ipcxx version to require (default: the version in pyproject.toml)",
    )
    arguments = parser.parse_args(argv)
    version = arguments.ipcxx_version or ipcxx_version(ROOT / "pyproject.toml")
    for path in build(arguments.outdir, version):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
