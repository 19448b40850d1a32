"""Where accelkit keeps files between processes: ``$ACCELKIT_CACHE``, else the platform's user cache directory.

One function for every layer that writes there (the weight store in ``io``, the matmul autotune table
in ``backends``), so it sits at the bottom beside ``errors`` and imports only the standard library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_ROOT = "ACCELKIT_CACHE"


def cache_root() -> Path:
    """$ACCELKIT_CACHE, else the platform's user cache directory + accelkit."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "accelkit" / "cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "accelkit"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache") / "accelkit"
