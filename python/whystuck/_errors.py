from __future__ import annotations

from typing import Optional


class WhystuckError(Exception):
    """whystuck could not give a diagnosis: a bad argument, a failure to run,
    or output this package cannot read.

    ``message`` is the binary's one-line message when it printed one
    (``whystuck: invalid value '-1' for '[PID]...': ...``), ``exit_code``
    its exit status (2 for a usage error or a failure to run; negative when
    a signal ended it; ``None`` when it never ran or was killed for running
    past its timeout), ``stderr`` everything it wrote there.
    """

    def __init__(self, message: str, exit_code: Optional[int] = None, stderr: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.stderr = stderr

    def __str__(self) -> str:
        if self.exit_code is None:
            return self.message
        return f"{self.message} (exit code {self.exit_code})"
