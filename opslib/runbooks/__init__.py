"""One module (or package) per runbook: the flow its notebook steps through.

Each runbook module offers ``inputs(...)`` (validation; a :class:`~opslib.core.errors.BadInputError`
before anything changes), ``connect(inputs)`` (a frozen holder of the clients, built through
:mod:`opslib.clients`), the read-only steps, the ``plan_*`` functions, and ``executor(...)``
(the bound :mod:`opslib.core.executors` dispatcher that :func:`opslib.safety.gate` applies a
plan with). A notebook imports its flow from here and nothing else of the domain.
Runbooks never import each other (an import-linter contract).
"""
