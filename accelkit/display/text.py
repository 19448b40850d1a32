"""Text formatters every repr shares: bytes (``1.5 KiB``) and counts (``1.23M``)."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """Bytes as people read them: 512 -> '512 B', 1536 -> '1.5 KiB' (exact bytes below 1 KiB)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def format_count(n: int) -> str:
    """A count in short form: 1234567 -> '1.23M', 999 -> '999'."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def format_ms(ms: float | None) -> str:
    """Milliseconds with two decimals, '-' for None (a latency not measured yet)."""
    return "-" if ms is None else f"{ms:.2f} ms"


__all__ = ["format_bytes", "format_count", "format_ms"]
