"""Interactive runbooks in a real browser: JupyterLab + Chromium, driven like an on-call engineer.

Each scenario edits only the parameters cell (dry_run=False, approved_by=""), opens the notebook,
clicks Run All, checks that nothing changed before the click, clicks "Approve and apply", checks
the world changed, clicks "Write evidence bundle", verifies the bundle and its approver, and
opens the bundle's HTML in Chromium to check the charts are embedded images.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from tests.browser.conftest import HERE, HUB_USER, copy_runbook, write_demo_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

REPO = HERE.parent.parent
#: Bound for "Run All" of a whole runbook (kernel start included).
RUN_ALL_TIMEOUT = 180_000
#: The notebook in the current (visible) tab.
NB = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
#: Bound for one click's effect (apply, capture).
CLICK_TIMEOUT = 120_000

ALL_DONE_JS = """() => {
  const nb = '.jp-NotebookPanel:not(.lm-mod-hidden)';
  const prompts = [...document.querySelectorAll(nb + ' .jp-CodeCell .jp-InputArea-prompt')];
  if (!prompts.length || prompts.some(p => p.textContent.includes('*'))) return false;
  const failed = [...document.querySelectorAll(
      nb + " .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")]
    .some(e => /Traceback|Error/.test(e.textContent));
  return failed || prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def open_notebook(page, lab, name: str) -> None:
    # "reset": a fresh workspace, so only this notebook is open (not the previous test's)
    page.goto(lab.url(f"lab/tree/{name}") + "&reset", timeout=60_000)
    page.wait_for_selector(f"{NB} .jp-CodeCell", timeout=90_000)
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
        text = page.locator(NB).inner_text(timeout=10_000)
        pytest.fail(
            f"Run All did not finish in {RUN_ALL_TIMEOUT / 1000:g} s; notebook:\n{text[-4000:]}"
        )
    errors = page.locator(
        f"{NB} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
    )
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
    done = page.locator(NB, has_text=re.compile(r"Evidence (NOT )?written"))
    done.wait_for(timeout=CLICK_TIMEOUT)
    text = page.locator(NB).inner_text()
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
    page.locator(NB, has_text="Waiting for approval").wait_for(timeout=10_000)
    assert "Chosen Buckets: alpha (1 of 2)" in page.locator(NB).inner_text()

    # a double click: the second click reaches the kernel before the disabled state reaches the
    # browser, and must not apply the plan again (check_bundle asserts exactly one approval)
    page.get_by_role("button", name="Approve and apply").dblclick()
    page.locator(NB, has_text="Applied 1 change(s), 0 failed.").first.wait_for(
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


def test_cancel_applies_and_records_nothing(lab, page):
    from opslib.clients import aws_client

    s3 = aws_client("s3")
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    write_demo_notebook(
        lab.root, {"prefix": prefix, "dry_run": False, "approved_by": ""}, name="demo_cancel.ipynb"
    )
    open_notebook(page, lab, "demo_cancel.ipynb")
    run_all(page)
    click_button(page, "Cancel")
    page.locator(NB, has_text="nothing applied, no approval recorded").first.wait_for(
        timeout=CLICK_TIMEOUT
    )
    page.shots("cancelled")
    assert page.get_by_role("button", name="Approve and apply").is_disabled()
    assert f"{prefix}-alpha" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    bundle = capture(page, lab)
    record = json.loads((bundle / "record.json").read_text())
    assert record["approvals"] == [] and record["changes"] == [], record
    assert record["status"] == "succeeded"
    from opslib.evidence import verify

    assert verify(str(bundle)).ok


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


def last_execution_count(page) -> int:
    counts = page.eval_on_selector_all(
        f"{NB} .jp-CodeCell .jp-InputArea-prompt",
        "els => els.map(e => (e.textContent.match(/\\[(\\d+)\\]/) || [0, 0])[1])",
    )
    return max(int(c) for c in counts) if counts else 0


def run_from(page, cell_index: int) -> None:
    """Select a cell and "Run Selected Cell and All Below", waiting (bounded) until done."""
    before = last_execution_count(page)
    cell = page.locator(f"{NB} .jp-Cell").nth(cell_index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(
        ".lm-Menu-itemLabel", has_text=re.compile(r"^Run Selected Cell and All Below$")
    ).click()
    page.wait_for_function(
        f"() => ({ALL_DONE_JS})() && "
        "[...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')]"
        f".some(p => Number((p.textContent.match(/\\[(\\d+)\\]/) || [0, 0])[1]) > {before})",
        timeout=RUN_ALL_TIMEOUT,
    )


def test_dlq_redrive_approve_in_jupyterlab(lab, page):
    """The DLQ redrive runbook, interactively: nothing moves before the click, all of it after.

    The redrive choice (error kinds, all preselected) is shown and printed before the plan.
    After the click the engineer re-runs the verification and record cells (the gate cell
    returned at once; verify reads the click's result through ``interactive.applied(plan)``),
    and clicks "Write evidence bundle" in the runbook's own last cell.
    """
    import nbformat

    import opslib.sandbox as sb
    from opslib.clients import aws_client

    src = REPO / "notebooks" / "dlq_redrive.ipynb"
    assert src.is_file(), f"{src} is missing: the DLQ redrive runbook has not landed"
    assert sb.seed(["dlq"]) == {"dlq": ""}
    presets = sb.presets("dlq-redrive")
    assert presets.get("dlq") == "orders-dlq", presets
    copy_runbook(src, lab.root, {**presets, "dry_run": False, "approved_by": ""})
    cells = nbformat.read(src, as_version=4).cells
    verify_index = next(i for i, c in enumerate(cells) if "dlq_redrive.verify(" in c.source)
    assert cells[-1].source.strip() == "opslib.capture_evidence()", "not the last cell"
    sqs = aws_client("sqs")
    dlq, dest = "orders-dlq", "orders"
    before = _sqs_counts(sqs, dlq, dest)
    assert before[dlq] == 500, before

    open_notebook(page, lab, "dlq_redrive.ipynb")
    run_all(page)
    page.shots("ran-all")
    assert _sqs_counts(sqs, dlq, dest) == before, "messages moved before the click"
    page.locator(NB, has_text="Waiting for approval").wait_for(timeout=10_000)
    text = page.locator(NB).inner_text()
    assert re.search(r"Chosen Error kinds to redrive: .*PaymentGatewayTimeout.*\(2 of 2\)", text)
    assert "Write evidence bundle" in text  # the capture cell ran: a button, nothing written yet

    click_button(page, "Approve and apply")
    page.locator(NB, has_text=re.compile(r"Applied \d+ change\(s\)")).first.wait_for(
        timeout=CLICK_TIMEOUT
    )
    page.shots("approved")
    after = _sqs_counts(sqs, dlq, dest)
    assert after[dlq] == 0 and after[dest] == before[dest] + before[dlq], after

    run_from(page, verify_index)  # verify, record and the capture cell, after the click
    page.shots("verified")
    page.locator(
        NB, has_text=re.compile(r"moved 500, failed 0, skipped 0, remaining 0")
    ).first.wait_for(timeout=10_000)
    bundle = capture(page, lab)
    page.shots("captured")
    record = check_bundle(bundle, "dlq-redrive")
    (change,) = record["changes"]  # recorded once, from the click
    assert change["data"]["move"]["moved"] == 500, change
    results = record["results"]  # recorded by the re-run record cell from the click's result
    assert (results["applied"], results["moved"], results["failed"], results["remaining"]) == (
        True,
        500,
        0,
        0,
    ), results
    assert results["plan_hash"] == record["approvals"][0]["plan_hash"]
    assert "redrive-journal.jsonl" in record["attachments"]
    check_html_charts(page, bundle, "dlq-redrive", minimum=1)


RUNBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", RUNBOOKS)
def test_every_runbook_runs_all_in_jupyterlab(lab, page, notebook):
    """Issue item 1: each runbook runs top to bottom in JupyterLab after editing only the
    parameters cell (here: the sandbox presets, dry run), with no error output."""
    import opslib.sandbox as sb
    from opslib.catalog import runbook_name

    presets = sb.presets(runbook_name(notebook)) or {}
    copy_runbook(REPO / "notebooks" / notebook, lab.root, presets)
    open_notebook(page, lab, notebook)
    run_all(page)
    page.shots("ran-all")
    text = page.locator(NB).inner_text()
    assert "Approve and apply" not in text  # dry run: no approval panel
