"""Interactive runbooks in a real browser: JupyterLab + Chromium, driven like an on-call engineer.

Each scenario edits only the parameters cell (dry_run=False, approved_by=""), opens the notebook,
clicks Run All, checks that nothing changed before the click, clicks "Approve and apply", checks
the world changed, clicks "Write evidence bundle", verifies the bundle and its approver, and
opens the bundle's HTML in Chromium to check the charts are embedded images.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from tests.browser.conftest import HERE, HUB_USER, copy_runbook, write_demo_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

REPO = HERE.parent.parent
#: Bound for "Run All" of a whole runbook (kernel start included).
RUN_ALL_TIMEOUT = 180_000
#: Bound for one click's effect (apply, capture).
CLICK_TIMEOUT = 120_000

ALL_DONE_JS = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def open_notebook(page, lab, name: str) -> None:
    page.goto(lab.url(f"lab/tree/{name}"), timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-CodeCell", timeout=90_000)
    # Run All before the kernel session exists would ask "Select Kernel": wait for it to be idle
    page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"Python 3.*Idle")).first.wait_for(
        timeout=90_000
    )


def run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    select = page.get_by_role("button", name="Select", exact=True)
    if select.count():  # a kernel dialog despite the wait: take the notebook's own kernel
        select.click()
    try:
        page.wait_for_function(ALL_DONE_JS, timeout=RUN_ALL_TIMEOUT)
    except Exception:
        text = page.locator(".jp-Notebook").inner_text(timeout=10_000)
        pytest.fail(
            f"Run All did not finish in {RUN_ALL_TIMEOUT / 1000:g} s; notebook:\n{text[-4000:]}"
        )
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
    assert not tracebacks, "a cell failed:\n" + "\n".join(tracebacks)


def click_button(page, label: str) -> None:
    button = page.get_by_role("button", name=label)
    assert button.count() == 1, f"expected one {label!r} button, found {button.count()}"
    button.scroll_into_view_if_needed()
    button.click()


def capture(page, lab) -> Path:
    """Click "Write evidence bundle" and return the bundle folder the panel names."""
    click_button(page, "Write evidence bundle")
    done = page.locator(".jp-Notebook", has_text=re.compile(r"Evidence (NOT )?written"))
    done.wait_for(timeout=CLICK_TIMEOUT)
    text = page.locator(".jp-Notebook").inner_text()
    assert "Evidence NOT written" not in text, text[-3000:]
    m = re.search(r"Evidence written: (\S+)", text)
    assert m, text[-3000:]
    bundle = Path(m.group(1))
    assert bundle.is_dir() and str(bundle).startswith(str(lab.evidence)), bundle
    return bundle


def check_bundle(bundle: Path, runbook: str) -> dict:
    """The bundle verifies, records the approver from the click, and its notebook is static."""
    from opslib.evidence import verify

    result = verify(str(bundle))
    assert result.ok, result
    record = json.loads((bundle / "record.json").read_text())
    assert record["runbook"] == runbook and record["mode"] == "interactive"
    assert record["status"] == "succeeded", record.get("error")
    assert record["parameters"]["dry_run"] is False and record["parameters"]["approved_by"] == ""
    (approval,) = record["approvals"]
    assert approval["approver"] == HUB_USER and approval["via"] == "button"
    assert re.fullmatch(r"[0-9a-f]{64}", approval["plan_hash"])
    assert record["changes"] and all(c["status"] == "applied" for c in record["changes"])
    nb_text = (bundle / f"{runbook}.ipynb").read_text()
    assert "application/vnd.jupyter.widget-view+json" not in nb_text  # snapshots, not model ids
    assert "Approve and apply" in nb_text and HUB_USER in nb_text
    return record


def check_html_charts(page, bundle: Path, runbook: str, minimum: int) -> None:
    html_path = bundle / f"{runbook}.html"
    page.goto(html_path.as_uri(), timeout=60_000)
    page.wait_for_load_state("load", timeout=60_000)
    images = page.locator("img[src^='data:image/png']")
    assert images.count() >= minimum, f"{images.count()} embedded PNG charts in {html_path}"
    first = images.first
    first.scroll_into_view_if_needed()
    size = first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size[0] > 50 and size[1] > 50, size  # decoded, not a broken image
    page.shots("evidence-html")


def test_demo_approval_capture_and_verify(lab, page):
    """Harness check on a harmless change (S3 buckets on the sandbox): no production runbook."""
    from opslib.clients import aws_client

    s3 = aws_client("s3")
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    write_demo_notebook(lab.root, {"prefix": prefix, "dry_run": False, "approved_by": ""})
    open_notebook(page, lab, "demo_approval.ipynb")
    run_all(page)
    page.shots("ran-all")

    buckets = lambda: {b["Name"] for b in s3.list_buckets()["Buckets"]}  # noqa: E731
    assert f"{prefix}-alpha" not in buckets(), "changed before the click"
    page.locator(".jp-Notebook", has_text="Waiting for approval").wait_for(timeout=10_000)
    assert "Chosen Buckets: alpha (1 of 2)" in page.locator(".jp-Notebook").inner_text()

    click_button(page, "Approve and apply")
    page.locator(".jp-Notebook", has_text="Applied 1 change(s), 0 failed.").first.wait_for(
        timeout=CLICK_TIMEOUT
    )
    page.shots("approved")
    assert f"{prefix}-alpha" in buckets() and f"{prefix}-beta" not in buckets()
    assert page.get_by_role("button", name="Approve and apply").is_disabled()

    bundle = capture(page, lab)
    page.shots("captured")
    record = check_bundle(bundle, "demo-approval")
    assert record["results"]["buckets_created"] == 1  # recorded inside the click's callback
    assert record["results"]["buckets_planned"] == 1
    check_html_charts(page, bundle, "demo-approval", minimum=2)  # planned chart + applied chart


def _sqs_counts(sqs, *names: str) -> dict[str, int]:
    out = {}
    for name in names:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        out[name] = int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )
    return out


def test_dlq_redrive_approve_in_jupyterlab(lab, page):
    """The DLQ redrive runbook, interactively: nothing moves before the click, all of it after."""
    import opslib.sandbox as sb
    from opslib.clients import aws_client

    src = REPO / "notebooks" / "dlq_redrive.ipynb"
    assert src.is_file(), f"{src} is missing: the DLQ redrive runbook has not landed"
    presets = sb.seed(["dlq"]).get("dlq-redrive") or sb.presets("dlq-redrive")
    assert presets, "the dlq scenario gave no presets for dlq-redrive"
    copy_runbook(src, lab.root, {**presets, "dry_run": False, "approved_by": ""})
    sqs = aws_client("sqs")
    dlq, dest = "orders-dlq", "orders"
    before = _sqs_counts(sqs, dlq, dest)
    assert before[dlq] == 500, before

    open_notebook(page, lab, "dlq_redrive.ipynb")
    run_all(page)
    page.shots("ran-all")
    time.sleep(1)
    assert _sqs_counts(sqs, dlq, dest) == before, "messages moved before the click"

    click_button(page, "Approve and apply")
    page.locator(".jp-Notebook", has_text=re.compile(r"Applied \d+ change\(s\)")).first.wait_for(
        timeout=CLICK_TIMEOUT
    )
    page.shots("approved")
    after = _sqs_counts(sqs, dlq, dest)
    assert after[dlq] == 0 and after[dest] == before[dest] + before[dlq], after

    bundle = capture(page, lab)
    page.shots("captured")
    check_bundle(bundle, "dlq-redrive")
    check_html_charts(page, bundle, "dlq-redrive", minimum=1)
