"""A program that depends on posix_ipc and sysv_ipc: it checks its requirements on import."""

import importlib.metadata
import re

import posix_ipc
import sysv_ipc

DISTRIBUTION = "ipcxx-packaging-dependent"


def _release(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version ("1.3.2+ipcxx.0.1.0" -> (1, 3, 2))."""
    found = re.match(r"\d+(\.\d+)*", version)
    if not found:
        raise ValueError(f"cannot read version {version!r}")
    return tuple(int(part) for part in found.group(0).split("."))


def _meets_simply(requirement: str) -> bool:
    """Whether a requirement of the form `name>=X` (the only kind this program declares) is
    met, without the packaging library."""
    found = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*>=\s*([0-9.]+)\s*", requirement)
    if not found:
        raise ValueError(f"cannot check requirement {requirement!r} without packaging")
    name, minimum = found.groups()
    return _release(importlib.metadata.version(name)) >= _release(minimum)


def check_requirements() -> str:
    """Checks this distribution's declared requirements against the installed distributions'
    metadata; raises ImportError naming an unmet one. Returns which checker was used:
    "packaging" when the packaging library is importable, else "simple"."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        Requirement = None
    for line in importlib.metadata.requires(DISTRIBUTION) or []:
        if Requirement is None:
            met = _meets_simply(line)
        else:
            requirement = Requirement(line)
            installed = importlib.metadata.version(requirement.name)
            met = requirement.specifier.contains(installed, prereleases=True)
        if not met:
            raise ImportError(f"{DISTRIBUTION} needs {line}")
    return "simple" if Requirement is None else "packaging"


CHECKED_WITH = check_requirements()
MODULES = (posix_ipc, sysv_ipc)
