"""Interactive (JupyterLab) pieces: approval buttons, choice widgets, progress.

Under papermill/nbval (headless) nothing here ever waits on a widget: progress renders as plain
text lines and approvals come from the ``approved_by`` parameter.
"""

from __future__ import annotations

import sys
from typing import Any


def progress(iterable: Any = None, *, total: int | None = None, desc: str = "", unit: str = "it"):
    """A progress bar: a notebook widget when interactive, plain text lines when headless.

    Returns a tqdm object (use ``.update(n)``, ``.set_postfix(...)``, ``.close()`` or iterate).
    Headless output is throttled (``mininterval``) so evidence stays readable.
    """
    from opslib.safety import is_headless

    if not is_headless():
        try:
            from tqdm.notebook import tqdm as tqdm_nb

            return tqdm_nb(iterable, total=total, desc=desc, unit=unit)
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stdout,
        mininterval=2.0,
        ascii=True,
        dynamic_ncols=False,
        ncols=80,
    )


def approval_buttons(plan: Any, **_: Any) -> None:
    """Show the plan with "Approve and apply" / "Cancel"; applies only on a click.

    Placeholder until the JupyterLab issue lands: never applies anything.
    """
    print(
        "NOT APPLIED: interactive approval is not available yet; "
        "set approved_by=<your name> in the parameters cell and run again."
    )
