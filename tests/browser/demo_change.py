"""A harmless change for the browser harness: create S3 buckets on the sandbox.

Copied next to ``demo_approval.ipynb`` in the test's temporary Jupyter root, so the notebook
stays thin (plan, gate, record) while the tests prove approval, capture and verification end
to end without depending on any production runbook.
"""

from __future__ import annotations

from opslib.core.plans import Change, ChangeOutcome, ChangeStatus, Plan


def s3_client():
    from opslib.clients import aws_client

    return aws_client("s3")


def plan_buckets(prefix: str, names, *, s3) -> Plan:
    """One CreateBucket per chosen name that does not exist yet (reads only)."""
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    changes = tuple(
        Change("s3:CreateBucket", f"{prefix}-{n}", "new empty bucket", {"Bucket": f"{prefix}-{n}"})
        for n in names
        if f"{prefix}-{n}" not in existing
    )
    return Plan(title=f"create buckets {prefix}-*", changes=changes, limits={"max_buckets": 5})


def executor(*, s3):
    def execute(change: Change) -> ChangeOutcome:
        s3.create_bucket(Bucket=change.params["Bucket"])
        return ChangeOutcome(change.action, change.target, ChangeStatus.APPLIED, "created")

    return execute


def on_applied(result) -> None:
    """Shown inside the approval panel: a recorded result and a chart, like a real runbook."""
    import opslib

    opslib.record("buckets_created", result.applied)
    chart(result.applied, "created")


def chart(value: int, label: str):
    import matplotlib.pyplot as plt
    from IPython.display import display

    fig, ax = plt.subplots(figsize=(4, 2))
    ax.bar([label], [value])
    ax.set_title(f"buckets {label}")
    display(fig)
    plt.close(fig)
