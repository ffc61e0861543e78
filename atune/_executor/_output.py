"""``RunConfig(log_to_file=...)``: a trial's stdout and stderr go to files in its directory.

The redirection is process-wide (file descriptors 1 and 2, and ``sys.stdout`` /
``sys.stderr``): it is right for a worker process that runs one trial at a time (a Ray
actor), and wrong in a process shared by several trials (the local executor never
uses it).
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["redirect_output"]


def _file_names(option: bool | str | tuple[str, str] | list[str]) -> tuple[str, str]:
    if option is True:
        return "stdout", "stderr"
    if isinstance(option, str):
        return option, option
    assert isinstance(option, (tuple, list)), option
    return option[0], option[1]


def redirect_output(
    option: bool | str | tuple[str, str], trial_dir: str
) -> contextlib.ExitStack | None:
    """Send this process's stdout/stderr to files in ``trial_dir``; None if ``option`` is off.

    Closing the returned stack restores the previous streams and descriptors.
    """
    if not option:
        return None
    names = _file_names(option)
    stack = contextlib.ExitStack()
    paths = [n if os.path.isabs(n) else os.path.join(trial_dir, n) for n in names]
    # The ExitStack owns (and closes) both files.
    out = stack.enter_context(open(paths[0], "a", buffering=1))  # noqa: SIM115
    err = (
        out if paths[1] == paths[0] else stack.enter_context(open(paths[1], "a", buffering=1))  # noqa: SIM115
    )
    stack.enter_context(contextlib.redirect_stdout(out))
    stack.enter_context(contextlib.redirect_stderr(err))
    saved = (os.dup(1), os.dup(2))
    sys.stdout.flush()
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)

    def _restore() -> None:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])

    stack.callback(_restore)
    return stack
