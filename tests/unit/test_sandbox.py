"""The sandbox on real servers: moto, PostgreSQL and the Kubernetes API emulator on loopback.

Most checks use the session sandbox (one start per pytest session); the lifecycle tests
(failing scenario, restart, down) use a private one so they can break and stop it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import types
import urllib.parse
from pathlib import Path

import pytest

import opslib.sandbox as sb
from opslib.sandbox import procs

pytestmark = pytest.mark.timeout(300)


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def _state(info) -> dict:
    return json.loads((Path(info.state_dir) / "state.json").read_text())


# --- the session sandbox -------------------------------------------------------------------


def test_every_part_listens_on_loopback(sandbox):
    for url in (sandbox.aws_endpoint, sandbox.kube_url):
        parsed = urllib.parse.urlparse(url)
        assert parsed.hostname == "127.0.0.1"
        assert procs.port_open(parsed.port)
    assert sandbox.pg_host == "127.0.0.1" and procs.port_open(sandbox.pg_port)
    assert sandbox.stopped == ()
    assert Path(sandbox.state_dir).is_dir()


def test_s3_on_the_moto_server(sandbox):
    from opslib.clients import aws_client

    s3 = aws_client("s3")  # reaches moto through AWS_ENDPOINT_URL from os.environ
    assert s3.meta.endpoint_url == sandbox.aws_endpoint
    s3.create_bucket(Bucket="sandbox-test-bucket")
    s3.put_object(Bucket="sandbox-test-bucket", Key="k", Body=b"v")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "sandbox-test-bucket" in names
    assert s3.get_object(Bucket="sandbox-test-bucket", Key="k")["Body"].read() == b"v"


def test_postgres_settings_and_os_user(sandbox):
    from opslib.clients import pg_connect

    with pg_connect() as conn:  # PG* from os.environ
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("show archive_mode").fetchone() == ("on",)
        assert conn.execute("show wal_level").fetchone() == ("replica",)
        assert conn.execute("show listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("select current_user, current_database()").fetchone() == (
            "opslib",
            "opslib",
        )
        if (Path(sandbox.pg_bin_dir).parent / "lib" / "pg_stat_statements.so").exists():
            assert (
                "pg_stat_statements" in conn.execute("show shared_preload_libraries").fetchone()[0]
            )
            conn.execute("select count(*) from pg_stat_statements").fetchone()
    pid = int((Path(sandbox.pg_data_dir) / "postmaster.pid").read_text().splitlines()[0])
    import pwd

    assert pwd.getpwuid(_uid_of(pid)).pw_name == sandbox.pg_os_user
    if os.geteuid() == 0:
        assert sandbox.pg_os_user != "root"


def test_wal_is_archived(sandbox):
    from opslib.clients import pg_connect

    archive = Path(sandbox.pg_wal_archive)
    with pg_connect() as conn:
        conn.execute("create table if not exists sandbox_wal_probe (x int)")
        conn.execute("insert into sandbox_wal_probe values (1)")
        segment = conn.execute("select pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        conn.execute("select pg_switch_wal()")
    assert procs.wait_until(lambda: (archive / segment).exists(), timeout=20), (
        f"{segment} not archived into {archive}: {sorted(p.name for p in archive.iterdir())}"
    )


def test_kubernetes_client_pods_with_selectors(sandbox):
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from opslib.clients import k8s_api

    core = client.CoreV1Api(k8s_api())  # KUBECONFIG from os.environ
    assert {"default", "kube-system"} <= {n.metadata.name for n in core.list_namespace().items}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="sbx-pods")))
    for i, app in enumerate(["auth-service", "auth-service", "ledger"]):
        core.create_namespaced_pod(
            "sbx-pods",
            client.V1Pod(
                metadata=client.V1ObjectMeta(name=f"{app}-{i}", labels={"app": app, "tier": "api"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="img:1")]),
            ),
        )
    picked = core.list_namespaced_pod("sbx-pods", label_selector="app=auth-service").items
    assert sorted(p.metadata.name for p in picked) == ["auth-service-0", "auth-service-1"]
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod(
            "sbx-pods", label_selector="app notin (auth-service),tier"
        ).items
    ] == ["ledger-2"]
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod("sbx-pods", field_selector="metadata.name=ledger-2").items
    ] == ["ledger-2"]
    assert all(p.status.phase == "Running" for p in picked)
    assert all(p.metadata.uid and p.metadata.creation_timestamp for p in picked)

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(
            "sbx-pods",
            client.V1Pod(
                metadata=client.V1ObjectMeta(name="ledger-2"),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app")]),
            ),
        )
    assert exc.value.status == 409
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("nope", "sbx-pods")
    assert exc.value.status == 404
    with pytest.raises(ApiException) as exc:  # like a real cluster: no implicit namespaces
        core.create_namespaced_pod(
            "no-such-ns",
            client.V1Pod(
                metadata=client.V1ObjectMeta(name="x"),
                spec=client.V1PodSpec(containers=[client.V1Container(name="a")]),
            ),
        )
    assert exc.value.status == 404

    core.patch_namespaced_pod(
        "ledger-2",
        "sbx-pods",
        {"metadata": {"annotations": {"sandbox.opslib.dev/log": "one\ntwo\nthree\n"}}},
    )
    assert core.read_namespaced_pod_log("ledger-2", "sbx-pods") == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("ledger-2", "sbx-pods", tail_lines=2) == "two\nthree\n"
    core.delete_namespaced_pod("ledger-2", "sbx-pods")
    assert len(core.list_namespaced_pod("sbx-pods").items) == 2
    core.delete_namespace("sbx-pods")
    assert core.list_namespaced_pod("sbx-pods").items == []


def test_kubernetes_deployment_replicas_scale_and_events(sandbox):
    from kubernetes import client

    from opslib.clients import k8s_api

    api = k8s_api()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="sbx-apps")))
    labels = {"app": "auth-service"}
    apps.create_namespaced_deployment(
        "sbx-apps",
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="auth-service", labels=labels),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="app", image="auth:1.4")]
                    ),
                ),
            ),
        ),
    )

    dep = apps.patch_namespaced_deployment("auth-service", "sbx-apps", {"spec": {"replicas": 5}})
    assert (dep.spec.replicas, dep.status.replicas, dep.metadata.generation) == (5, 5, 2)
    scale = apps.patch_namespaced_deployment_scale(
        "auth-service", "sbx-apps", {"spec": {"replicas": 3}}
    )
    assert scale.spec.replicas == 3 and scale.status.selector == "app=auth-service"
    assert apps.read_namespaced_deployment("auth-service", "sbx-apps").spec.replicas == 3
    dep = apps.patch_namespaced_deployment(  # JSON patch (a list body)
        "auth-service", "sbx-apps", [{"op": "replace", "path": "/spec/replicas", "value": 4}]
    )
    assert dep.spec.replicas == 4
    dep = apps.patch_namespaced_deployment(  # strategic merge of containers by name
        "auth-service",
        "sbx-apps",
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "auth:1.3"}]}}}},
    )
    assert [c.image for c in dep.spec.template.spec.containers] == ["auth:1.3"]
    assert [
        d.metadata.name
        for d in apps.list_namespaced_deployment(
            "sbx-apps", label_selector="app=auth-service"
        ).items
    ] == ["auth-service"]

    core.create_namespaced_event(
        "sbx-apps",
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="auth-service.1"),
            reason="ScalingReplicaSet",
            message="Scaled up",
            type="Normal",
            involved_object=client.V1ObjectReference(
                kind="Deployment", name="auth-service", namespace="sbx-apps"
            ),
        ),
    )
    events = core.list_namespaced_event(
        "sbx-apps", field_selector="involvedObject.name=auth-service"
    ).items
    assert [e.reason for e in events] == ["ScalingReplicaSet"]
    core.delete_namespace("sbx-apps")


def test_kubernetes_watch_streams_changes(sandbox):
    import threading

    from kubernetes import client, watch

    from opslib.clients import k8s_api

    core = client.CoreV1Api(k8s_api())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="sbx-watch")))
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="w-1", labels={"app": "w"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="a", image="i")]),
    )
    seen: list[tuple[str, str]] = []

    def consume():
        for ev in watch.Watch().stream(
            core.list_namespaced_pod, "sbx-watch", label_selector="app=w", timeout_seconds=3
        ):
            seen.append((ev["type"], ev["object"].metadata.name))

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.5)
    core.create_namespaced_pod("sbx-watch", pod)
    core.patch_namespaced_pod("w-1", "sbx-watch", {"metadata": {"annotations": {"x": "1"}}})
    core.delete_namespaced_pod("w-1", "sbx-watch")
    t.join(timeout=10)
    core.delete_namespace("sbx-watch")
    assert seen == [("ADDED", "w-1"), ("MODIFIED", "w-1"), ("DELETED", "w-1")]


def test_env_vars_and_shell_exports(sandbox):
    env = sb.env_vars(sandbox)
    assert env == {
        "AWS_ENDPOINT_URL": sandbox.aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(sandbox.pg_port),
        "PGUSER": "opslib",
        "PGDATABASE": "opslib",
        "KUBECONFIG": sandbox.kubeconfig,
        "OPSLIB_SANDBOX_DIR": sandbox.state_dir,
    }
    for key, value in env.items():  # the fixture exported them for subprocesses and kernels
        assert os.environ[key] == value
    text = sb.format_env(sandbox)
    assert all(line.startswith("export ") for line in text.splitlines())
    out = subprocess.run(
        ["bash", "-c", text + '\nprintf "%s|%s|%s" "$PGPORT" "$KUBECONFIG" "$AWS_ENDPOINT_URL"'],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        timeout=10,
    )
    assert out.stdout == f"{sandbox.pg_port}|{sandbox.kubeconfig}|{sandbox.aws_endpoint}"


def test_up_is_idempotent(sandbox):
    before = _state(sandbox)["processes"]
    t0 = time.monotonic()
    again = sb.up(sandbox.state_dir)
    assert time.monotonic() - t0 < 5
    assert again == sandbox
    assert {k: v["pid"] for k, v in _state(sandbox)["processes"].items()} == {
        k: v["pid"] for k, v in before.items()
    }
    assert sb.status(sandbox.state_dir) == sandbox


def test_status_and_down_when_nothing_runs():
    empty = tempfile.mkdtemp(prefix="opslib-test-empty-")
    try:
        assert sb.status(empty) is None
        assert sb.down(empty) == []
        assert sb.down(empty + "-never-created") == []
    finally:
        os.rmdir(empty) if os.path.isdir(empty) else None


# --- a private sandbox: lifecycle ----------------------------------------------------------


@pytest.fixture
def scenarios(monkeypatch):
    """Two throwaway scenario modules instead of the real four: one broken, one good that
    registers presets and spawns a background process."""
    import opslib.sandbox.scenarios as registry

    def boom(ctx):
        raise RuntimeError("seed exploded on purpose")

    def good(ctx):
        ctx.aws("sqs").create_queue(QueueName="test-good-dlq")
        with ctx.pg_connect() as conn:
            conn.execute("create table if not exists good_seeded (x int)")
        ctx.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(300)"])
        (ctx.scenario_dir("good") / "note.txt").write_text("hi")
        return {"good-runbook": {"queue_name": "test-good-dlq", "max_messages": 10}}

    for name, fn, runbooks in (("zz_boom", boom, ()), ("zz_good", good, ("good-runbook",))):
        mod = types.ModuleType(f"opslib.sandbox.scenarios.{name}")
        mod.RUNBOOKS, mod.seed = runbooks, fn
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(registry, "SCENARIOS", ("zz_boom", "zz_good"))


@pytest.fixture
def private_dir():
    path = tempfile.mkdtemp(prefix="opslib-test-private-sandbox-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    sb.down(path)  # whatever the test left running


def _pids(info) -> dict[str, dict]:
    state = _state(info)
    recs = {k: v for k, v in state["processes"].items()}
    recs.update({f"spawn:{k}": v for k, v in state.get("spawned", {}).items()})
    return recs


def test_failing_scenario_does_not_break_up(scenarios, private_dir):
    info = sb.up(private_dir)
    assert info.scenario_errors == {"zz_boom": "RuntimeError: seed exploded on purpose"}
    assert "zz_boom FAILED" in sb.describe(info)
    assert sb.presets("good-runbook", private_dir) == {
        "queue_name": "test-good-dlq",
        "max_messages": 10,
    }
    assert sb.presets("unknown-runbook", private_dir) == {}
    assert "RuntimeError" in _state(info)["scenarios"]["zz_boom"]["traceback"]
    assert sb.status(private_dir).scenario_errors == info.scenario_errors
    # the good scenario's resources exist on the real servers
    ctx = sb.ScenarioContext(info)
    assert ctx.aws("sqs").get_queue_url(QueueName="test-good-dlq")["QueueUrl"]
    with ctx.pg_connect() as conn:
        assert conn.execute("select to_regclass('good_seeded')").fetchone()[0] == "good_seeded"
    # re-seeding one scenario replaces its spawned process
    first = _state(info)["spawned"]["sleeper"]
    assert sb.seed(["zz_good"], private_dir) == {"zz_good": ""}
    second = _state(info)["spawned"]["sleeper"]
    assert second["pid"] != first["pid"] and not procs.alive(first) and procs.alive(second)


def test_down_stops_every_pid_and_removes_state(scenarios, private_dir):
    info = sb.up(private_dir)
    recs = _pids(info)
    assert set(recs) == {"aws", "postgres", "kube", "spawn:sleeper"}
    assert all(procs.alive(r) for r in recs.values())
    data_root = Path(_state(info)["data_root"])
    # a second cluster under the sandbox, as a PITR restore leaves one: down stops it too
    ctx = sb.ScenarioContext(info)
    target = ctx.scenario_dir("good") / "restore"
    ctx.chown_to_pg(target.parent)
    init = ctx.run_as_pg(
        [ctx.pg_bin("initdb"), "-D", target, "-U", "opslib", "--auth=trust", "--no-sync"],
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, init.stderr
    port = procs.free_port()
    started = ctx.run_as_pg(
        [
            ctx.pg_bin("pg_ctl"),
            "-D",
            target,
            "-l",
            target.parent / "restore.log",
            "-w",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {target.parent}",
            "start",
        ],
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stderr
    restored_pid = int((target / "postmaster.pid").read_text().splitlines()[0])
    restored = {"pid": restored_pid, "start": procs.start_time(restored_pid)}
    assert procs.alive(restored)

    stopped = sb.down(private_dir)
    assert sorted(stopped) == ["aws", "kube", "postgres", f"postgres:{target}", "spawn:sleeper"]
    assert not procs.alive(restored) and not procs.port_open(port)
    assert not any(procs.alive(r) for r in recs.values())
    assert not procs.port_open(info.pg_port) and not procs.port_open(
        int(info.aws_endpoint.rsplit(":", 1)[1])
    )
    assert not Path(private_dir).exists() and not data_root.exists()
    assert sb.status(private_dir) is None
    assert sb.down(private_dir) == []


def test_up_restarts_stopped_parts_and_kube_keeps_its_objects(scenarios, private_dir):
    from kubernetes import client

    info = sb.up(private_dir, seed=False)
    assert _state(info).get("scenarios") is None
    core = client.CoreV1Api(sb.ScenarioContext(info).k8s())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="survivor")))
    for part in ("aws", "kube"):
        procs.stop(_state(info)["processes"][part])
    assert sb.status(private_dir).stopped == ("aws", "kube")
    again = sb.up(private_dir, seed=False)
    assert again.stopped == () and again.pg_port == info.pg_port
    assert sb.ScenarioContext(again).aws("s3").list_buckets()["Buckets"] == []
    core = client.CoreV1Api(
        sb.ScenarioContext(again).k8s()
    )  # kubeconfig rewritten for the new port
    assert "survivor" in {n.metadata.name for n in core.list_namespace().items}

    # PostgreSQL restarted behind the sandbox's back is adopted, not restarted again
    ctx = sb.ScenarioContext(again)
    old_pid = _state(again)["processes"]["postgres"]["pid"]
    res = ctx.run_as_pg(
        [
            ctx.pg_bin("pg_ctl"),
            "-D",
            again.pg_data_dir,
            "-l",
            Path(again.pg_data_dir).parent / "postgres.log",
            "-m",
            "fast",
            "-w",
            "restart",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert sb.status(private_dir).stopped == ()
    third = sb.up(private_dir, seed=False)
    assert third.pg_port == info.pg_port
    assert _state(third)["processes"]["postgres"]["pid"] != old_pid
    with ctx.pg_connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_kubernetes_replace_conflict_generate_name_and_deletecollection(sandbox):
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from opslib.clients import k8s_api

    core = client.CoreV1Api(k8s_api())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="sbx-misc")))
    cm = core.create_namespaced_config_map(
        "sbx-misc",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="cfg-"), data={"a": "1"}),
    )
    assert cm.metadata.name.startswith("cfg-") and len(cm.metadata.name) > 4
    stale = core.read_namespaced_config_map(cm.metadata.name, "sbx-misc")
    stale.data = {"a": "2"}
    assert core.replace_namespaced_config_map(cm.metadata.name, "sbx-misc", stale).data == {
        "a": "2"
    }
    stale.data = {"a": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map(cm.metadata.name, "sbx-misc", stale)
    assert exc.value.status == 409
    for i in range(3):
        core.create_namespaced_config_map(
            "sbx-misc",
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"x-{i}", labels={"grp": str(i % 2)})
            ),
        )
    core.delete_collection_namespaced_config_map("sbx-misc", label_selector="grp=0")
    left = sorted(c.metadata.name for c in core.list_namespaced_config_map("sbx-misc").items)
    assert left == sorted([cm.metadata.name, "x-1"])
    core.delete_namespace("sbx-misc")


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=a", {"app": "a"}, True),
        ("app==a,tier=web", {"app": "a", "tier": "db"}, False),
        ("app!=a", {}, True),
        ("app in (a, b),!canary", {"app": "b"}, True),
        ("app notin (a,b)", {"app": "b"}, False),
        ("canary", {"canary": ""}, True),
        ("", {"x": "y"}, True),
    ],
)
def test_label_selector_semantics(selector, labels, expected):
    from opslib.sandbox.kube import match_labels

    assert match_labels(selector, labels) is expected


def test_bad_selector_is_a_400(sandbox):
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from opslib.clients import k8s_api

    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(k8s_api()).list_namespaced_pod("default", label_selector="a in b")
    assert exc.value.status == 400


def test_nbval_notebooks_get_the_sandbox_env_and_presets(sandbox, tmp_path):
    """`pytest --nbval-lax` through the root conftest: kernels inherit the sandbox variables
    and the parameters cell gets the runbook's presets (the notebook file is not changed)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('queue: str = ""  # the queue\nlimit: int = 1  # a limit')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import os\n"
            "from opslib.clients import pg_connect\n"
            'assert queue == "from-preset" and limit == 1, (queue, limit)\n'
            f'assert os.environ["PGPORT"] == "{sandbox.pg_port}"\n'
            'assert os.environ["OPSLIB_HEADLESS"] == "1"\n'
            'assert pg_connect().execute("select 1").fetchone() == (1,)'
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "probe_book.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    presets_file = Path(sandbox.state_dir) / "presets.json"
    saved = presets_file.read_text()
    presets_file.write_text(
        json.dumps({**json.loads(saved), "probe-book": {"queue": "from-preset"}})
    )
    try:
        env = {
            **os.environ,
            "OPSLIB_TEST_SANDBOX": sandbox.state_dir,
            "PYTHONPATH": str(Path.cwd()),
        }
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "conftest",
                "--nbval-lax",
                str(path),
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).parents[2],
            timeout=150,
        )
    finally:
        presets_file.write_text(saved)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout
    assert path.read_bytes() == before
    assert sb.status(sandbox.state_dir).stopped == ()  # the reused sandbox was left running


def test_startup_failures_say_what_and_where_the_log_is(monkeypatch, private_dir):
    import socket

    from opslib.core.errors import SandboxError
    from opslib.sandbox import aws_server, postgres

    # a "moto" that never answers: bounded wait, then an error naming the log; process stopped
    log = Path(private_dir) / "logs" / "moto.log"
    port = procs.free_port()
    rec = {**procs.spawn(["sleep", "60"], log=log), "port": port, "url": f"http://127.0.0.1:{port}"}
    monkeypatch.setattr(aws_server, "START_TIMEOUT", 1)
    t0 = time.monotonic()
    with pytest.raises(SandboxError, match=r"moto server .* did not answer") as exc:
        aws_server.ready(rec, log=log, env=dict(os.environ))
    assert time.monotonic() - t0 < 10
    assert str(log) in str(exc.value) and not procs.alive(rec)

    # PostgreSQL on a port someone else holds: pg_ctl fails, the error names the log
    cluster = postgres.Cluster(Path(private_dir) / "pg")
    cluster.init()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(SandboxError, match="PostgreSQL did not start") as exc:
            cluster.start(busy.getsockname()[1])
    assert str(cluster.log) in str(exc.value)
    assert not cluster.running()


def test_a_given_alternative_drops_the_presets_of_the_others(tmp_path):
    """db-failover's presets name an instance; a caller who gives the cluster must not be
    refused as "both given" because the preset filled the instance."""
    import json

    from opslib.sandbox.stack import ONE_OF, presets

    (tmp_path / "presets.json").write_text(
        json.dumps(
            {
                "db-failover": {
                    "db_instance": "i",
                    "region": "r",
                    ONE_OF: [["db_instance", "db_cluster"]],
                }
            }
        )
    )
    assert presets("db-failover", tmp_path) == {"db_instance": "i", "region": "r"}
    assert presets("db-failover", tmp_path, given=["db_cluster"]) == {"region": "r"}
    assert presets("db-failover", tmp_path, given=["db_instance"]) == {
        "db_instance": "i",
        "region": "r",
    }
    assert presets("other", tmp_path) == {}
