"""The idle scan: every registered check in every region; a failing check is a finding, not the end."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from opslib.aws.idle.checks import CheckContext, get_check
from opslib.aws.idle.model import (
    KINDS,
    IdleKind,
    IdleReport,
    IdleResource,
    IdleThresholds,
    NatTraffic,
)
from opslib.aws.pricing import PriceTable, price_table
from opslib.clients import AwsErrorKind, aws_client, aws_error_kind
from opslib.core.errors import BadInputError
from opslib.core.findings import Finding, Severity, error_finding
from opslib.core.plans import parse_csv, unique

if TYPE_CHECKING:  # types only: boto3-stubs are a dev extra, never needed at run time
    from boto3 import Session


def _is_denied(exc: BaseException) -> bool:
    return aws_error_kind(exc) is AwsErrorKind.DENIED


def _reachable_error(exc: BaseException) -> bool:
    """True when the region answered with an API error (other checks there may still work)."""
    return (
        isinstance(exc, ClientError)
        and int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)) < 500
    )


def parse_regions(regions: str, *, default: str) -> list[str]:
    """The ``regions`` parameter: comma-separated, empty = the session's region."""
    return unique(parse_csv(regions)) or [default]


def scan_idle(
    regions: Sequence[str],
    *,
    session: Session,
    prices: PriceTable | None = None,
    thresholds: IdleThresholds | None = None,
    min_monthly_savings: float = 0.0,
    kinds: Sequence[IdleKind | str] = KINDS,
    now: _dt.datetime | None = None,
) -> IdleReport:
    """Run every check in every region; errors become findings and the scan goes on.

    ``session`` is a boto3 session (from :func:`opslib.clients.aws_session`); clients per
    region are built from it through :mod:`opslib.clients`. A region that does not answer at
    all (unreachable, not a region) is reported once and its remaining checks are skipped.
    """
    if min_monthly_savings < 0:
        raise BadInputError("min_monthly_savings must be >= 0.")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise BadInputError(f"Unknown idle kind(s) {unknown}; known: {', '.join(KINDS)}.")
    wanted = tuple(IdleKind(k) for k in kinds)
    prices = prices or price_table()
    th = thresholds or IdleThresholds()
    now = now or _dt.datetime.now(_dt.UTC)
    found: list[IdleResource] = []
    errors: list[Finding] = []
    traffic: list[NatTraffic] = []
    for region in regions:
        cache: dict[str, Any] = {}

        def client(service: str, region: str = region, cache: dict[str, Any] = cache) -> Any:
            if service not in cache:
                cache[service] = aws_client(service, region=region, session=session)
            return cache[service]

        ctx = CheckContext(region, client, prices, th, now)
        for i, kind in enumerate(wanted):
            check = get_check(kind)
            try:
                result = check(ctx)
            except Exception as exc:  # noqa: BLE001 - one region/check failing is a finding; the scan goes on
                source = f"idle:{region}:{kind}"
                if _is_denied(exc):
                    errors.append(
                        error_finding(
                            source,
                            exc,
                            next_action=f"Grant the read-only permission for {kind} in {region} "
                            "(e.g. the AWS managed ReadOnlyAccess policy), or leave the region out of regions.",
                        )
                    )
                    continue
                errors.append(error_finding(source, exc))
                if not _reachable_error(exc):
                    rest = wanted[i + 1 :]
                    if rest:
                        errors.append(
                            Finding(
                                Severity.ERROR,
                                f"{region}: not reachable, {len(rest)} check(s) skipped",
                                source=f"idle:{region}",
                                evidence=", ".join(rest),
                                next_action="Check the region name and that it is enabled for the account.",
                            )
                        )
                    break
                continue
            found += result.resources
            traffic += result.nat_traffic
    found.sort(key=lambda r: r.monthly_cost, reverse=True)
    keep = tuple(r for r in found if r.monthly_cost >= min_monthly_savings)
    below = tuple(r for r in found if r.monthly_cost < min_monthly_savings)
    return IdleReport(
        keep,
        below,
        tuple(errors),
        tuple(regions),
        prices,
        tuple(traffic),
        float(min_monthly_savings),
    )
