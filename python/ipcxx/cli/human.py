"""Human forms of sizes and ages, and parsing of ages like 30s, 10m, 2h, 7d, 1h30m."""

from __future__ import annotations

import re

_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_AGE_PART = re.compile(r"(\d+)([dhms])")


def format_size(size: int) -> str:
    """512 -> '512B', 4096 -> '4.0KiB', 1572864 -> '1.5MiB'."""
    if size < 1024:
        return f"{size}B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f}{unit}"


def format_age(seconds: int) -> str:
    """The two largest non-zero units: 45s, 3m12s, 2h, 2h5m, 4d, 4d3h."""
    parts = []
    remaining = max(0, seconds)
    for unit, length in _SECONDS.items():
        count, remaining = divmod(remaining, length)
        if count or (parts and len(parts) < 2):
            parts.append((count, unit))
        if len(parts) == 2:
            break
    shown = [f"{count}{unit}" for count, unit in parts if count]
    return "".join(shown) or "0s"


def parse_age(text: str) -> int:
    """Seconds in an age such as '30s', '10m', '2h', '7d', '1h30m' or a bare '90' (seconds).
    Raises ValueError for anything else."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    if not text or _AGE_PART.sub("", text):
        raise ValueError(f"not an age: {text!r} (examples: 30s, 10m, 2h, 7d, 1h30m)")
    return sum(int(count) * _SECONDS[unit] for count, unit in _AGE_PART.findall(text))
