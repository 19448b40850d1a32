"""A private ``XDG_RUNTIME_DIR`` for the Vulkan loader, set before wgpu starts it.

Mesa's Vulkan drivers (through libwayland) print ``error: XDG_RUNTIME_DIR is invalid or not set``
on every adapter enumeration when the variable is missing or not an absolute path to a directory;
headless machines, containers and Binder usually lack it. Before the first ``import wgpu`` this
module points it at a directory of our own: ``<tempdir>/accelkit-runtime-<uid>``, mode 0700, owned
by the current user (a fresh ``mkdtemp`` directory when that path is taken by someone else).
"""

from __future__ import annotations

import os
import stat
import tempfile

_ENV = "XDG_RUNTIME_DIR"


def _usable(path: str | None) -> bool:
    return bool(path) and os.path.isabs(path) and os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def _private(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    own = not hasattr(os, "getuid") or st.st_uid == os.getuid()
    return stat.S_ISDIR(st.st_mode) and own and stat.S_IMODE(st.st_mode) & 0o077 == 0


def ensure_runtime_dir() -> str | None:
    """Set ``XDG_RUNTIME_DIR`` to a private directory when it is unset or invalid; return what it is now.

    A valid value (an absolute path to a writable directory) is left alone. Windows and macOS
    do not use the variable, so nothing is set there.
    """
    current = os.environ.get(_ENV)
    if _usable(current) or os.name != "posix" or os.uname().sysname == "Darwin":
        return current
    uid = os.getuid()
    path = os.path.join(tempfile.gettempdir(), f"accelkit-runtime-{uid}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return current
    if not _private(path):  # a symlink or another user's directory: never use it
        try:
            path = tempfile.mkdtemp(prefix=f"accelkit-runtime-{uid}-")
        except OSError:
            return current
    os.environ[_ENV] = path
    return path
