"""Credential leak: who owns a leaked AWS key, what it did, and (gated) contain it.

The security-incident procedure: identify the affected IAM users and roles, review CloudTrail,
disable their credentials, revoke what was issued, contain, then rotate what they could reach.
This flow does it in that order:

1. **Investigate** (read only): the key's owner and last use (``GetAccessKeyLastUsed``), the
   owner's keys and their status, the CloudTrail event history of the key (or the user, or the
   ``AssumeRole`` calls that issued the role's sessions) in ``lookback_hours``, grouped by API
   with the unusual groups first (new regions, IAM/STS calls, data access, denied calls);
2. **Contain** (only with ``contain=True``, through the gate): deactivate the key (never delete
   it: it is evidence), or every active key of ``iam_user`` when no key is named, and revoke the
   active sessions of ``iam_role`` the way the IAM console does (an inline deny-all policy for
   tokens issued before the moment of apply);
3. **Rotate next**: the secrets the principal's policies let it read, and its other keys.

An access key id is an identifier, not a secret: it is the one secret-shaped value a parameter
may carry (``opslib.catalog.IDENTIFIER_PARAMETERS``), and it is only ever shown masked
(``AKIA...XYZW``); the redactor masks the full id in every artifact of the bundle.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from opslib import clients
from opslib.aws import cloudtrail as trail
from opslib.aws import iam as iam_mod
from opslib.core import executors
from opslib.core.errors import BadInputError, OpslibError, PreflightError
from opslib.core.findings import Finding, Severity, error_finding, rank
from opslib.core.findings import to_frame as findings_frame
from opslib.core.plans import ApplyResult, ChangeStatus, Plan
from opslib.core.redact import register_secret

RUNBOOK = "credential-leak"
ACTIONS = (iam_mod.DEACTIVATE_ACTION, iam_mod.REVOKE_SESSIONS_ACTION)
MAX_LOOKBACK_HOURS = 90 * 24  # CloudTrail event history keeps 90 days
MAX_REGIONS = 3  # CloudTrail regions read per run: home, the key's last-used region, us-east-1
GLOBAL_REGION = "us-east-1"  # where IAM and STS's global endpoint log their events
_SECRET_KEY_SHAPE = re.compile(r"^[A-Za-z0-9/+=]{40}$")


@dataclass(frozen=True)
class Inputs:
    """The validated parameters (the key id is kept for the API calls, never shown in full)."""

    access_key_id: str = field(default="", repr=False)
    iam_user: str = ""
    iam_role: str = ""
    lookback_hours: int = 24
    contain: bool = False
    region: str = ""
    now: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))

    @property
    def key_masked(self) -> str:
        return iam_mod.mask_key(self.access_key_id) if self.access_key_id else ""

    @property
    def temporary(self) -> bool:
        return iam_mod.is_temporary(self.access_key_id)

    @property
    def start(self) -> _dt.datetime:
        return self.now - _dt.timedelta(hours=self.lookback_hours)

    def describe(self) -> str:
        parts = [f"key {self.key_masked}" + (" (temporary, STS)" if self.temporary else "")]
        parts = parts if self.access_key_id else []
        parts += [f"user {self.iam_user}"] if self.iam_user else []
        parts += [f"role {self.iam_role}"] if self.iam_role else []
        mode = "investigate and plan containment" if self.contain else "investigate only"
        return f"{', '.join(parts)}; last {self.lookback_hours} h; {mode}"


def _name(value: str, kind: str) -> str:
    """An IAM name, or the name at the end of an ARN (``arn:aws:iam::1:role/path/name``)."""
    v = value.strip()
    if v.startswith("arn:") and f":{kind}/" in v:
        v = v.rsplit("/", 1)[-1]
    return v


def inputs(
    *,
    access_key_id: str = "",
    iam_user: str = "",
    iam_role: str = "",
    lookback_hours: int = 24,
    contain: bool = False,
    region: str = "",
) -> Inputs:
    """Validate every parameter before anything is read (one BadInputError naming each problem)."""
    key = access_key_id.strip()
    user, role = _name(iam_user, "user"), _name(iam_role, "role")
    problems = []
    if not (key or user or role):
        problems.append(
            "give access_key_id (AKIA.../ASIA...), iam_user or iam_role: the credential to investigate"
        )
    if key and _SECRET_KEY_SHAPE.match(key):
        register_secret(key)
        problems.append(
            "access_key_id looks like a secret access key (40 characters): give the access key id "
            "(AKIA/ASIA + 16), never the secret half of the pair"
        )
    elif key and not iam_mod.KEY_ID_RE.match(key):
        problems.append(
            f"access_key_id ({len(key)} characters, starting {key[:4]!r}) is not an access key id: "
            "expected AKIA or ASIA followed by 16 upper-case letters or digits"
        )
    for label, value in (("iam_user", user), ("iam_role", role)):
        if value and not iam_mod.NAME_RE.match(value):
            problems.append(
                f"{label}={value!r} is not an IAM name (letters, digits, +=,.@_-; 1-64)"
            )
    if not 1 <= int(lookback_hours) <= MAX_LOOKBACK_HOURS:
        problems.append(
            f"lookback_hours={lookback_hours}: use 1..{MAX_LOOKBACK_HOURS} "
            "(CloudTrail event history keeps 90 days)"
        )
    if contain and key and iam_mod.is_temporary(key) and not role:
        problems.append(
            "contain=True with a temporary (ASIA) key needs iam_role: session credentials cannot be "
            "deactivated, the role's sessions are revoked instead"
        )
    if problems:
        raise BadInputError(
            "Bad parameters, nothing was read or changed: " + "; ".join(problems) + "."
        )
    return Inputs(key, user, role, int(lookback_hours), bool(contain), region.strip())


@dataclass(frozen=True)
class Connections:
    """Clients for IAM (global) and Secrets Manager in the home region, and the session for
    CloudTrail, which is read per region."""

    iam: Any = None
    secretsmanager: Any = None
    session: Any = None
    region: str = ""
    findings: tuple[Finding, ...] = ()


def connect(inp: Inputs) -> Connections:
    """Clients through opslib.clients; a chain that cannot connect is None plus an error finding."""
    try:
        session = clients.aws_session(region=inp.region)
        region = inp.region or session.region_name
        return Connections(
            iam=clients.aws_client("iam", session=session, region=region),
            secretsmanager=clients.aws_client("secretsmanager", session=session, region=region),
            session=session,
            region=region,
        )
    except OpslibError as exc:
        return Connections(findings=(error_finding("aws", exc),))


# -- investigation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Investigation:
    """What is known about the credential: owner, keys, CloudTrail activity, what it can read."""

    principal: str
    user: str
    role: str
    role_arn: str
    keys: tuple[iam_mod.AccessKey, ...]
    events: tuple[trail.TrailEvent, ...]
    groups: tuple[trail.EventGroup, ...]
    rotate_next: tuple[dict[str, str], ...]
    findings: tuple[Finding, ...]
    regions_read: tuple[str, ...] = ()
    cloudtrail_available: bool = True

    def principal_frame(self):
        import pandas as pd

        cols = [
            "access key",
            "user",
            "status",
            "created",
            "last used",
            "last service",
            "last region",
        ]
        return pd.DataFrame([k.to_row() for k in self.keys], columns=cols)

    def groups_frame(self):
        import pandas as pd

        cols = ["unusual", "event", "count", "regions", "source IPs", "errors", "first", "last"]
        return pd.DataFrame([g.to_row() for g in self.groups], columns=cols)

    def events_frame(self):
        import pandas as pd

        cols = ["time", "event", "source", "region", "source IP", "error", "principal", "key"]
        return pd.DataFrame([e.to_row() for e in self.events], columns=cols)

    def rotate_frame(self):
        import pandas as pd

        return pd.DataFrame(list(self.rotate_next), columns=["kind", "name", "why"])

    def findings_frame(self):
        return findings_frame(self.findings)

    def key_records(self) -> list[dict[str, str]]:
        return [{"access_key": k.masked, "user": k.user, "status": k.status} for k in self.keys]

    def group_records(self, limit: int = 20) -> list[dict[str, Any]]:
        return [g.to_row() for g in self.groups[:limit]]

    def summary(self) -> str:
        unusual = sum(bool(g.unusual) for g in self.groups)
        ct = (
            f"{len(self.events)} CloudTrail event(s) in {len(self.groups)} API group(s), {unusual} unusual"
            if self.cloudtrail_available
            else "CloudTrail event history unavailable (see the findings)"
        )
        return f"principal {self.principal or '(unknown)'}; {len(self.keys)} key(s); {ct}"


def _owner(
    inp: Inputs, conns: Connections, found: list[Finding]
) -> tuple[str, iam_mod.LastUsed | None]:
    """The user owning the key (GetAccessKeyLastUsed), checked against iam_user when both given."""
    if not inp.access_key_id:
        return inp.iam_user, None
    if inp.temporary:
        found.append(
            Finding(
                Severity.INFO,
                f"{inp.key_masked} is a temporary (STS session) key",
                "iam",
                "GetAccessKeyLastUsed does not know session keys; CloudTrail names the role session "
                "that used it.",
                "Revoke the sessions of the role it belongs to (iam_role, contain=True); the key expires "
                "by itself at the end of its session.",
            )
        )
        return inp.iam_user, None
    used = iam_mod.key_last_used(inp.access_key_id, iam=conns.iam)
    if inp.iam_user and used.user and used.user != inp.iam_user:
        raise PreflightError(
            f"Access key {inp.key_masked} belongs to IAM user {used.user!r}, not iam_user="
            f"{inp.iam_user!r}: nothing was changed. Check which key leaked, or leave iam_user empty."
        )
    return used.user or inp.iam_user, used


def _key_findings(
    inp: Inputs, keys: list[iam_mod.AccessKey], used: iam_mod.LastUsed | None
) -> list[Finding]:
    out = []
    for k in keys:
        named = inp.access_key_id and k.key_id == inp.access_key_id
        if not named and inp.access_key_id:
            if k.status == "Active":
                out.append(
                    Finding(
                        Severity.INFO,
                        f"user {k.user} has another active key {k.masked}",
                        "iam",
                        f"last used {k.to_row()['last used']}",
                        "Rotate it too if the leak was the user's credentials file; it is not deactivated here.",
                    )
                )
            continue
        if k.status == "Active":
            out.append(
                Finding(
                    Severity.CRITICAL,
                    f"access key {k.masked} of user {k.user} is ACTIVE",
                    "iam",
                    f"created {k.to_row()['created']}; last used {k.to_row()['last used']}"
                    + (f" ({k.last_service} in {k.last_region})" if k.last_service else ""),
                    "A leaked key works until it is deactivated: run with contain=True, dry_run=False "
                    "and approved_by (it is deactivated, not deleted).",
                    {"access_key": k.masked},
                )
            )
        else:
            out.append(
                Finding(
                    Severity.OK,
                    f"access key {k.masked} of user {k.user} is {k.status}",
                    "iam",
                    f"last used {k.to_row()['last used']}",
                    "Keep it inactive (never delete it before the post-mortem).",
                )
            )
    if used is not None and used.date is not None:
        hours = (inp.now - used.date).total_seconds() / 3600
        if hours <= inp.lookback_hours:
            out.append(
                Finding(
                    Severity.WARNING,
                    f"{inp.key_masked} was used {hours:.1f} h ago ({used.service or '?'} in {used.region or '?'})",
                    "iam",
                    f"GetAccessKeyLastUsed: {used.date:%Y-%m-%d %H:%M:%S} UTC",
                    "Compare with the owner's expected use; the CloudTrail groups below show what it called.",
                )
            )
    return out


def _lookups(inp: Inputs, user: str, role_arn: str) -> list[tuple[str, str, str]]:
    """(attribute, value, label) of the CloudTrail lookups for this credential."""
    out = []
    if inp.access_key_id:
        out.append(("AccessKeyId", inp.access_key_id, inp.key_masked))
    elif user:
        out.append(("Username", user, user))
    if role_arn:
        out.append(("ResourceName", role_arn, role_arn))
    return out


def _trail(
    inp: Inputs, conns: Connections, lookups: list[tuple[str, str, str]], regions: list[str]
) -> tuple[list[trail.TrailEvent], list[Finding], bool]:
    events: dict[tuple, trail.TrailEvent] = {}
    found: list[Finding] = []
    available = True
    for region in regions:
        try:
            ct = clients.aws_client(
                "cloudtrail",
                session=conns.session,
                region=region,
                retries={"max_attempts": 3, "mode": "adaptive"},
            )
        except OpslibError as exc:
            found.append(error_finding(f"cloudtrail:{region}", exc))
            continue
        for attribute, value, label in lookups:
            res = trail.lookup_events(
                attribute, value, cloudtrail=ct, start=inp.start, end=inp.now, label=label
            )
            available = available and res.available
            found += [
                Finding(f.severity, f"{f.title} ({region})", f.source, f.evidence, f.next_action)
                for f in res.findings
            ]
            for e in res.events:
                events[(e.event_id or (e.time, e.name, e.source, e.region, e.source_ip))] = e
            if not res.available:
                break  # the other lookups in this region would fail the same way
    return sorted(events.values(), key=lambda e: e.time, reverse=True), found, available


def _rotate_next(
    inp: Inputs, conns: Connections, user: str, role: str, keys: list[iam_mod.AccessKey]
) -> tuple[list[dict[str, str]], list[Finding]]:
    items: list[dict[str, str]] = []
    found: list[Finding] = []
    for k in keys:
        if inp.access_key_id and k.key_id == inp.access_key_id:
            why = (
                "the leaked key: create a new key for the workload that used it, deploy it, and keep "
                "this one inactive"
            )
        elif k.status == "Active":
            why = "another active key of the same user: rotate it if the user's credentials file leaked"
        else:
            continue
        items.append({"kind": "access key", "name": f"{k.user} {k.masked}", "why": why})
    docs: list[tuple[str, dict[str, Any]]] = []
    for kind, name in (("user", user), ("role", role)):
        if not name:
            continue
        try:
            docs += iam_mod.policy_documents(kind, name, iam=conns.iam)
        except ClientError as exc:
            found.append(
                error_finding(
                    f"iam:{kind}/{name}",
                    clients.translate_aws_error(exc, f"iam policies of {kind} {name}"),
                )
            )
    if docs and conns.secretsmanager is not None:
        try:
            secrets = iam_mod.readable_secrets(docs, secretsmanager=conns.secretsmanager)
        except OpslibError as exc:
            secrets = []
            found.append(error_finding("secretsmanager", exc))
        for s in secrets:
            items.append(
                {
                    "kind": "secret",
                    "name": s.name,
                    "why": f"readable by the principal ({s.policy}): assume it was read, rotate it",
                }
            )
        if secrets:
            found.append(
                Finding(
                    Severity.WARNING,
                    f"{len(secrets)} secret(s) readable by the principal: rotate them next",
                    "secretsmanager",
                    ", ".join(s.name for s in secrets[:10]),
                    "Rotate each (the secrets-rotation runbook), starting with those the CloudTrail "
                    "groups show as read (GetSecretValue). Conditions and resource policies were not "
                    "evaluated: the list may include more than the key could really read.",
                )
            )
    return items, found


def investigate(inp: Inputs, conns: Connections) -> Investigation:
    """Read only: owner, keys, CloudTrail activity grouped unusual first, what to rotate next.

    Raises NotFoundError/PreflightError (exit 2) when the key, user or role is not in the
    account, or the key is not iam_user's: nothing can be contained on a wrong target.
    """
    found: list[Finding] = list(conns.findings)
    if conns.iam is None:
        return Investigation("", "", "", "", (), (), (), (), tuple(rank(found)), (), False)
    user, used = _owner(inp, conns, found)
    principal = iam_mod.principal_arn("user", user, iam=conns.iam) if user else ""
    keys = iam_mod.user_keys(user, iam=conns.iam) if user else []
    if inp.access_key_id and not inp.temporary:
        keys = sorted(keys, key=lambda k: k.key_id != inp.access_key_id)  # the named key first
    role_arn = iam_mod.principal_arn("role", inp.iam_role, iam=conns.iam) if inp.iam_role else ""
    found += _key_findings(inp, keys, used)
    regions = list(
        dict.fromkeys(r for r in (conns.region, used.region if used else "", GLOBAL_REGION) if r)
    )
    events, f_trail, available = _trail(
        inp, conns, _lookups(inp, user, role_arn), regions[:MAX_REGIONS]
    )
    found += f_trail
    if not principal:
        principal = next((e.principal for e in events if e.principal), "") or role_arn
    groups = trail.group_events(events, usual_regions={conns.region})
    who = inp.key_masked or user or inp.iam_role
    found += trail.unusual_findings(groups, who=who)
    if available and not events:
        found.append(
            Finding(
                Severity.INFO,
                f"no CloudTrail events for {who} in the last {inp.lookback_hours} h",
                "cloudtrail",
                f"regions read: {', '.join(regions[:MAX_REGIONS])}",
                "Widen lookback_hours, or check other regions' event history and data events in the trail.",
            )
        )
    rotate, f_rot = _rotate_next(inp, conns, user, inp.iam_role, keys)
    found += f_rot
    return Investigation(
        principal=principal,
        user=user,
        role=inp.iam_role,
        role_arn=role_arn,
        keys=tuple(keys),
        events=tuple(events),
        groups=tuple(groups),
        rotate_next=tuple(rotate),
        findings=tuple(rank(found)),
        regions_read=tuple(regions[:MAX_REGIONS]),
        cloudtrail_available=available,
    )


# -- containment -------------------------------------------------------------------------------


def plan_containment(inp: Inputs, inv: Investigation) -> Plan:
    """Read only: deactivate the key(s), revoke the role's sessions; nothing without contain=True."""
    title = (
        f"Contain leaked credential of {inv.principal or inv.user or inv.role or inp.key_masked}"
    )
    if not inp.contain:
        todo = sum(k.status == "Active" for k in inv.keys) + bool(inv.role)
        return Plan(
            title=title,
            warnings=(
                f"contain=False: investigation only, nothing planned ({todo} credential(s) could be "
                "contained: run again with contain=True)",
            ),
        )
    warnings = []
    if inp.access_key_id and not inp.temporary:
        targets = [k for k in inv.keys if k.key_id == inp.access_key_id]
    else:
        targets = [k for k in inv.keys if not inp.access_key_id]
    changes = []
    for k in targets:
        if k.status == "Active":
            changes.append(iam_mod.plan_deactivate(k))
        else:
            warnings.append(f"key {k.masked} of {k.user} is already {k.status}: nothing to do")
    if inv.role:
        changes.append(iam_mod.plan_revoke_sessions(inv.role))
    if inp.temporary:
        warnings.append(
            f"{inp.key_masked} is a session key: revoking the role's sessions is what stops it now"
        )
    warnings.append("then rotate what the principal could read (the 'rotate next' table)")
    return Plan(title=title, changes=tuple(changes), warnings=tuple(warnings))


def executor(conns: Connections):
    return executors.bind(iam=conns.iam, allowed=ACTIONS)


def actions(applied: ApplyResult | None) -> list[str]:
    """What the apply did, one line per applied change (empty on a dry run)."""
    if applied is None:
        return []
    return [
        f"{o.action} {o.target}: {o.detail}"
        for o in applied.outcomes
        if o.status is ChangeStatus.APPLIED
    ]


def contained(plan: Plan, applied: ApplyResult | None) -> bool:
    """True when a containment plan was applied and every change of it took."""
    if applied is None or plan.empty:
        return False
    return applied.applied == len(plan.changes) and applied.failed == 0
