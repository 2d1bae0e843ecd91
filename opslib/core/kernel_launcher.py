"""The kernel of headless runs: ipykernel's own launcher, ending with :func:`exit_now`.

``python -m opslib.core.kernel_launcher -f CONNECTION_FILE`` is ``python -m ipykernel_launcher``
(the same kernel, the same arguments) except at exit: once the kernel has answered its
shutdown request and its loop has stopped, the process runs its exit hooks and ends without
the interpreter's teardown, which with a runbook's libraries loaded takes 0.6-0.9 s of every
run (:mod:`opslib.core.fast_exit`). JupyterLab's kernels are untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path

from opslib.core.fast_exit import exit_now

__all__ = ["main"]


def main() -> None:
    """Start the kernel; exit without teardown when it stops."""
    # As ipykernel_launcher does: the working directory leaves sys.path before ipykernel is
    # imported (a file there must not shadow it), so the import waits until then.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
    exit_now(0)


if __name__ == "__main__":
    main()
