"""Alert intake: ``opslib serve`` runs a runbook, dry, when an alert fires.

When the on-call engineer opens the page, the triage notebook has already run and its
evidence is waiting. Alertmanager, SNS (CloudWatch alarms) and PagerDuty post here; routes map
an alert to a runbook and its parameters; every accepted alert is persisted before the 202 and
run in the background, never more than ``--max-concurrent`` at once, and ALWAYS as a dry run
with no approval: a person approves the plan the run produced. Imports the runner and below,
never the sandbox (the command line composes it in).

Modules: ``alerts`` (the alert model and the source registry), ``alertmanager``, ``sns``,
``pagerduty`` (one source each), ``routes``, ``check`` (``--check-routes``), ``store``
(SQLite), ``executors`` (local, kubernetes), ``dispatch`` (the bounded pool), ``notify``,
``app`` and ``server`` (HTTP; need the ``[serve]`` extra: starlette, uvicorn).
"""
