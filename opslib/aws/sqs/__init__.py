"""SQS for the DLQ redrive: resolve, inspect, filter, plan, move, verify.

The hand-run redrive loop this replaces sent and deleted one message at a time, dropped
message attributes, never checked partial failures and could not say afterwards what it
moved. The package, by concern:

- :mod:`.queues`: resolve queues (name, URL or ARN), their dead-letter sources, their counts;
- :mod:`.messages`: the operator's filter, error shapes and selectors, redaction, sampling
  without consuming;
- :mod:`.target`: :func:`preflight`, every parameter validated before anything is read or moved;
- :mod:`.health`: queue health against the backlog thresholds;
- :mod:`.selection`: what to redrive, chosen from the sample (groups or error kinds);
- :mod:`.strategy`: copy or native (StartMessageMoveTask);
- :mod:`.plan`: the :class:`~opslib.core.plans.Plan`, whose change carries the typed
  :class:`~opslib.aws.sqs.move.model.MoveSettings`;
- :mod:`.move`: the move itself, its journal, its worker processes, and the executors
  registered for the plan's actions;
- :mod:`.verify`: counts before and after, moved, failed, skipped, possible duplicates.

Every function takes the SQS client as a keyword-only ``sqs`` (see :mod:`opslib.clients`).
"""

from __future__ import annotations

from opslib.aws.sqs.health import (
    BACKLOG_CRITICAL,
    BACKLOG_WARN,
    HealthReport,
    QueueHealth,
    backlog_finding,
    queue_health,
    redrive_health,
)
from opslib.aws.sqs.messages import (
    MessageFilter,
    Sample,
    SampledMessage,
    error_selector,
    error_shape,
    parse_filter,
    redact_body,
    sample_messages,
)
from opslib.aws.sqs.move import (
    COPY_ACTION,
    MOVER_CLIENT_CONFIG,
    NATIVE_ACTION,
    MoveResult,
    MoveSettings,
    Strategy,
)
from opslib.aws.sqs.plan import plan_redrive, plan_settings, plan_strategy
from opslib.aws.sqs.queues import (
    QueueCounts,
    QueueRef,
    dead_letter_sources,
    queue_counts,
    queue_name_from,
    resolve_queue,
)
from opslib.aws.sqs.selection import Selection, redrive_selection
from opslib.aws.sqs.strategy import NativeSupport, StrategyChoice, choose_strategy, native_supported
from opslib.aws.sqs.target import RedriveTarget, preflight
from opslib.aws.sqs.verify import RedriveVerification, before_counts, verify_redrive

__all__ = [
    "BACKLOG_CRITICAL",
    "BACKLOG_WARN",
    "COPY_ACTION",
    "MOVER_CLIENT_CONFIG",
    "NATIVE_ACTION",
    "HealthReport",
    "MessageFilter",
    "MoveResult",
    "MoveSettings",
    "NativeSupport",
    "QueueCounts",
    "QueueHealth",
    "QueueRef",
    "RedriveTarget",
    "RedriveVerification",
    "Sample",
    "SampledMessage",
    "Selection",
    "Strategy",
    "StrategyChoice",
    "backlog_finding",
    "before_counts",
    "choose_strategy",
    "dead_letter_sources",
    "error_selector",
    "error_shape",
    "native_supported",
    "parse_filter",
    "plan_redrive",
    "plan_settings",
    "plan_strategy",
    "preflight",
    "queue_counts",
    "queue_health",
    "queue_name_from",
    "redact_body",
    "redrive_health",
    "redrive_selection",
    "resolve_queue",
    "sample_messages",
    "verify_redrive",
]
