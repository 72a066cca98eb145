"""Finding the whystuck binary that was installed with this package."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

from ._errors import WhystuckError

#: An explicit binary to run instead, e.g. a copy given capabilities with
#: ``setcap cap_sys_ptrace,cap_dac_read_search+ep`` (see the README).
ENV_BINARY = "WHYSTUCK_BIN"


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _user_scheme() -> str:
    if sys.version_info >= (3, 10):
        return sysconfig.get_preferred_scheme("user")
    if sys.platform == "darwin" and getattr(sys, "_framework", None):
        return "osx_framework_user"
    return "posix_user"


def find_whystuck_bin() -> str:
    """The path of the ``whystuck`` binary this package runs.

    In order: ``$WHYSTUCK_BIN`` if set; the scripts directory of this
    interpreter's environment (where ``pip install`` put the binary beside
    this package); the user scheme's scripts directory (``pip install
    --user``); a ``bin`` directory beside the package (``pip install
    --target``); then ``PATH``. Raises :class:`WhystuckError` when there is
    none.
    """
    exe = "whystuck" + (sysconfig.get_config_var("EXE") or "")

    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        if _is_executable(explicit):
            return explicit
        raise WhystuckError(f"${ENV_BINARY} is {explicit!r}, which is not an executable file")

    candidates = [os.path.join(sysconfig.get_path("scripts"), exe)]
    try:
        candidates.append(os.path.join(sysconfig.get_path("scripts", scheme=_user_scheme()), exe))
    except KeyError:  # no user scheme on this interpreter
        pass
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates.append(os.path.join(package_root, "bin", exe))
    for path in candidates:
        if _is_executable(path):
            return path

    on_path = shutil.which(exe)
    if on_path:
        return on_path
    raise WhystuckError(
        "the whystuck binary was not found (looked in "
        + ", ".join(candidates)
        + f" and PATH); reinstall the whystuck package or set ${ENV_BINARY}"
    )
