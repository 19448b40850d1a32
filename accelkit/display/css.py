"""The stylesheet every HTML repr carries (``static/accelkit.css``, minified once per process)."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def css() -> str:
    """The stylesheet, comments and indentation stripped."""
    text = resources.files(__package__).joinpath("static", "accelkit.css").read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return re.sub(r"\s*([{};])\s*", r"\1", text)


__all__ = ["css"]
