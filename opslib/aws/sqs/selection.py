"""What to redrive, chosen from the sample: message groups (FIFO) or error kinds (standard).

The move selects messages by body only (:class:`~opslib.aws.sqs.messages.MessageFilter`), so a
choice narrower than "everything" becomes a JMESPath filter ANDed with the operator's
``filter_expression``: it can narrow the filter, never widen it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from opslib.aws.sqs.messages import Sample, SampledMessage, jp_field, jp_literal, parse_filter
from opslib.aws.sqs.target import RedriveTarget
from opslib.core.errors import BadInputError

__all__ = ["Narrowed", "Selection", "SelectionOption", "narrow", "redrive_selection"]


@dataclass(frozen=True)
class SelectionOption:
    """One choice offered: a message group (FIFO) or an error kind (standard)."""

    key: str  # the value the widget returns: a group id (FIFO) or an error selector/shape
    label: str
    count: int
    predicate: str  # the JMESPath selecting it ("" when none can: non-JSON bodies)


@dataclass(frozen=True)
class Selection:
    """The "what to redrive" widget's options ``(label, key)``, preselection and title."""

    options: tuple[tuple[str, str], ...]
    preselection: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Narrowed:
    """A choice applied: the target with the narrowed filter, the sample re-marked, and the
    chosen options (None: everything offered was chosen; empty: nothing was)."""

    target: RedriveTarget
    sample: Sample | None
    chosen: tuple[SelectionOption, ...] | None


def _key(m: SampledMessage, fifo: bool) -> str:
    return m.group_id if fifo else (m.selector or m.shape)


def options(target: RedriveTarget, sample: Sample | None) -> list[SelectionOption]:
    """The sample's message groups (FIFO) or error kinds (standard) among the filter's matches."""
    fifo = target.dlq.fifo
    found: dict[str, list[SampledMessage]] = {}
    for m in sample.messages if sample is not None else ():
        if m.matches_filter:
            found.setdefault(_key(m, fifo), []).append(m)
    total = len(sample.messages) if sample is not None else 0
    names = {k: (k if fifo else (ms[0].error or ms[0].shape)) for k, ms in found.items()}
    clash = {n for n in names.values() if list(names.values()).count(n) > 1}
    out = []
    for key, ms in found.items():
        name = names[key] + (f" [{key}]" if names[key] in clash else "")
        out.append(
            SelectionOption(
                key,
                f"{name} ({len(ms)} of {total} sampled)",
                len(ms),
                "" if fifo else ms[0].selector,
            )
        )
    if fifo:
        return sorted(out, key=lambda o: o.key)
    return sorted(out, key=lambda o: (-o.count, o.label))


def redrive_selection(target: RedriveTarget, sample: Sample | None) -> Selection:
    """Options, preselection and description for the "what to redrive" widget.

    FIFO DLQs: the sampled message groups; standard: the sampled error kinds (as
    :meth:`Sample.shapes_frame` groups them). Only messages the ``filter_expression`` already
    selects are offered, and all of them are preselected, so the parameters' choice (and a
    headless run) is "everything the filter selects" and the plan is exactly the one of the
    parameters alone. Pass the choice to ``plan_redrive`` as ``only``.
    """
    opts = options(target, sample)
    what = "Message groups" if target.dlq.fifo else "Error kinds"
    return Selection(
        options=tuple((o.label, o.key) for o in opts),
        preselection=tuple(o.key for o in opts),
        description=f"{what} to redrive",
    )


def _predicate(target: RedriveTarget, sample: Sample, chosen: list[SelectionOption]) -> str:
    if target.dlq.fifo:
        common = set.intersection(*(set(m.group_keys) for m in sample.messages))
        if not common:
            raise BadInputError(
                f"{target.dlq.name}: the message bodies do not carry their MessageGroupId in a "
                "field, and the move selects messages by body, so it cannot redrive only some "
                "groups. Select all groups, or set filter_expression (JMESPath) to select them."
            )
        field_ = jp_field(sorted(common)[0])
        return f"contains({jp_literal([o.key for o in chosen])}, {field_})"
    blind = [o.label for o in chosen if not o.predicate]
    if blind:
        raise BadInputError(
            f"{', '.join(blind)}: non-JSON messages can be redriven only with every kind "
            "selected, or with filter_expression='re:<regex>'."
        )
    if len(chosen) == 1:
        return chosen[0].predicate
    return " || ".join(f"({o.predicate})" for o in chosen)


def narrow(target: RedriveTarget, sample: Sample | None, only: Sequence[str]) -> Narrowed:
    """Apply a widget choice to the target's filter and the sample's marks.

    For FIFO, ``contains([...groups], <key>)`` over the body field that carries the
    MessageGroupId (found in every sampled body); for standard queues, the OR of the chosen
    error kinds' :func:`~opslib.aws.sqs.messages.error_selector` predicates; ANDed with the
    operator's filter. Everything offered chosen: the inputs unchanged.
    """
    opts = options(target, sample)
    by_key = {o.key: o for o in opts}
    wanted = set(only)
    unknown = sorted(wanted - set(by_key))
    if unknown:
        raise BadInputError(
            f"only: {', '.join(unknown)} not among the sampled choices "
            f"({', '.join(by_key) or 'none'}); re-run the inspect and choice cells, then the plan."
        )
    if wanted == set(by_key):
        return Narrowed(target, sample, None)
    chosen = [o for o in opts if o.key in wanted]
    if not chosen:
        return Narrowed(target, sample, ())
    user = target.message_filter
    if user.kind == "regex":
        raise BadInputError(
            f"filter_expression {user.expression!r} is a re: filter, which the choice cannot "
            "narrow: select everything in the widget, or write the whole filter in JMESPath."
        )
    assert sample is not None  # chosen is not empty, so the sample had messages
    predicate = _predicate(target, sample, chosen)
    combined = f"({user.expression}) && ({predicate})" if user.expression else predicate
    narrowed = replace(target, message_filter=parse_filter(combined))
    keys = {o.key for o in chosen}
    fifo = target.dlq.fifo
    messages = tuple(
        replace(m, matches_filter=m.matches_filter and _key(m, fifo) in keys)
        for m in sample.messages
    )
    return Narrowed(
        narrowed, replace(sample, messages=messages, filter_expression=combined), tuple(chosen)
    )
