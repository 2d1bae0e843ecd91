"""opslib.aws.cloudwatch against the sandbox's AWS API server (moto on loopback).

Each test writes its own series under a unique namespace, then reads them back through
get_metrics; API calls are counted with botocore's own event hooks on the real client.
"""

from __future__ import annotations

import datetime as dt
import uuid

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from opslib.aws import cloudwatch as cwm
from opslib.aws.cloudwatch import MetricQuery, get_metrics
from opslib.clients import aws_client
from opslib.core.errors import BadInputError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def cw(sandbox):
    client = aws_client("cloudwatch")
    calls: list[int] = []
    client.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData",
        lambda params, **kw: calls.append(len(params["MetricDataQueries"])),
    )
    client.calls = calls  # the sizes of each GetMetricData call, in order
    return client


@pytest.fixture
def ns():
    return f"Test/Cw{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tag(ns):
    """A unique dimension value: the local server ignores the namespace when dimensions are given."""
    return ns.split("/")[1]


def minutes_ago(n: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=n)


def test_frame_has_utc_index_and_one_column_per_query(cw, ns, tag):
    dims = [{"Name": "Svc", "Value": tag}]
    cw.put_metric_data(
        Namespace=ns,
        MetricData=[
            {
                "MetricName": "Lat",
                "Dimensions": dims,
                "Timestamp": minutes_ago(m),
                "Value": float(m),
            }
            for m in (1, 2, 3)
        ],
    )
    q = [
        MetricQuery("lat", ns, "Lat", {"Svc": tag}),
        MetricQuery("none", ns, "Missing", {"Svc": tag}, "Sum"),
    ]
    s = get_metrics(q, cloudwatch=cw, start=minutes_ago(10), end=dt.datetime.now(dt.UTC))
    f = s.to_frame()
    assert list(f.columns) == ["lat", "none"]
    assert str(f.index.tz) == "UTC" and f.index.is_monotonic_increasing
    assert sorted(f["lat"].dropna().tolist()) == [1.0, 2.0, 3.0]
    assert f["lat"].dropna().index[-1] == minutes_ago(1)
    assert not s.has_data("none") and "no datapoints in the window" in s.note("none")
    assert s.status == {"lat": "Complete", "none": "Complete"}
    assert cw.calls == [2]  # both queries in one call
    assert list(s.status_frame()["points"]) == [3, 0]


def test_batches_of_500_in_as_few_calls_as_possible(cw, ns, tag):
    cw.put_metric_data(
        Namespace=ns,
        MetricData=[
            {
                "MetricName": "M",
                "Dimensions": [{"Name": tag, "Value": n}],
                "Timestamp": minutes_ago(1),
                "Value": 7.0,
            }
            for n in ("0", "500")
        ],
    )
    qs = [MetricQuery(f"q{i}", ns, "M", {tag: str(i)}, "Sum") for i in range(501)]
    s = get_metrics(qs, cloudwatch=cw, start=minutes_ago(3), end=dt.datetime.now(dt.UTC))
    assert cw.calls == [500, 1]
    assert s.calls == 2 and s.frame.shape[1] == 501
    assert s.frame["q0"].dropna().tolist() == [7.0] and s.frame["q500"].dropna().tolist() == [7.0]
    assert s.frame["q1"].dropna().tolist() == []


def test_identical_series_are_asked_for_once(cw, ns):
    cw.put_metric_data(
        Namespace=ns, MetricData=[{"MetricName": "M", "Timestamp": minutes_ago(1), "Value": 3.0}]
    )
    qs = [MetricQuery("a", ns, "M", {}, "Maximum"), MetricQuery("b", ns, "M", {}, "Maximum")]
    s = get_metrics(qs, cloudwatch=cw, start=minutes_ago(3), end=dt.datetime.now(dt.UTC))
    assert cw.calls == [1]
    assert s.frame["a"].dropna().tolist() == s.frame["b"].dropna().tolist() == [3.0]


def test_percentile_falls_back_to_maximum_and_says_so(cw, ns, tag):
    dims = [{"Name": "LoadBalancer", "Value": f"app/{tag}/1"}]
    cw.put_metric_data(
        Namespace=ns,
        MetricData=[
            {
                "MetricName": "TargetResponseTime",
                "Dimensions": dims,
                "Timestamp": minutes_ago(2),
                "Values": [0.05, 0.9],
                "Counts": [9.0, 1.0],
            }
        ],
    )
    q = [
        MetricQuery("p99", ns, "TargetResponseTime", {"LoadBalancer": f"app/{tag}/1"}, "p99"),
        MetricQuery("avg", ns, "TargetResponseTime", {"LoadBalancer": f"app/{tag}/1"}),
    ]
    sends: list[int] = []
    cw.meta.events.register("before-send.cloudwatch.GetMetricData", lambda **kw: sends.append(1))
    cwm._PERCENTILE_REJECTED.clear()  # forget what earlier tests learnt about this endpoint
    cwm._PERCENTILE_OK.clear()
    s = get_metrics(q, cloudwatch=cw, start=minutes_ago(10), end=dt.datetime.now(dt.UTC))
    # one probe, answered with an error and not retried, then the real call: two HTTP requests
    assert len(sends) == 2 and s.calls == 2
    # the local server rejects percentile statistics: Maximum (an upper bound) instead, said plainly
    assert s.fallbacks == ("p99",)
    assert s.stats == {"p99": "Maximum", "avg": "Average"}
    assert any("used Maximum instead" in m for m in s.messages["p99"])
    assert s.frame["p99"].dropna().tolist() == [0.9]
    assert s.frame["avg"].dropna().round(3).tolist() == [0.135]


def test_bad_queries_are_refused_before_any_call(cw, ns):
    with pytest.raises(BadInputError):
        MetricQuery("Bad-Id", ns, "M")
    with pytest.raises(BadInputError):
        MetricQuery("ok", ns, "M", period=45)
    q = MetricQuery("a", ns, "M")
    with pytest.raises(BadInputError, match="Duplicate"):
        get_metrics([q, q], cloudwatch=cw, start=minutes_ago(5), end=dt.datetime.now(dt.UTC))
    with pytest.raises(BadInputError, match="must be after"):
        get_metrics([q], cloudwatch=cw, start=minutes_ago(1), end=minutes_ago(5))
    assert cw.calls == []


def test_unreachable_endpoint_raises_for_the_caller_to_report(sandbox):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    dead = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}),
    )
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        get_metrics(
            [MetricQuery("a", "X", "M")],
            cloudwatch=dead,
            start=minutes_ago(5),
            end=dt.datetime.now(dt.UTC),
        )


def test_is_percentile():
    assert all(cwm.is_percentile(s) for s in ("p99", "p50", "p99.9", "tm90", "TM(10%:90%)"))
    assert not any(cwm.is_percentile(s) for s in ("Average", "Maximum", "Sum", "SampleCount"))
