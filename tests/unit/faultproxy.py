"""A loopback HTTP proxy that injects SQS faults on the wire, in front of a real SQS server.

Tests point a boto3 client (or a whole ``opslib run``) at the proxy instead of the server; the
code under test is not patched. Faults, per operation (the JSON protocol's X-Amz-Target):

- ``fail_every``: every k-th batch entry (SendMessageBatch / DeleteMessageBatch) is removed from
  the forwarded request and reported back in ``Failed`` (SenderFault false, InternalError), as
  SQS does for a partial batch failure;
- ``throttle_every``: every k-th call is answered 400 ThrottlingException without forwarding;
- ``record``: operations whose JSON requests are kept in ``requests`` (to check what was sent);
- ``delay``: seconds to wait before forwarding an operation (a slow endpoint);
- ``ambiguous_every``: every k-th SendMessageBatch is forwarded (so it IS applied) and then
  answered 500, the case where the caller cannot know whether the send happened.

- ``errors``: operations answered with an error code instead of being forwarded (``{"ListDead
  LetterSourceQueues": "AccessDenied"}``; ``InvalidAction``, ``UnknownOperationException``,
  ``ThrottlingException`` ...), as a least-privilege role or an endpoint without the API
  answers. Works for the JSON protocol (SQS: X-Amz-Target) and the query protocol (RDS,
  CloudWatch: ``Action=`` in the form body, answered with the XML error document).

- ``dlq_source``: ``{queue name: source queue ARN}``: messages received from that queue carry
  ``Attributes.DeadLetterQueueSourceArn`` as SQS stamps it on every message its redrive
  policy moves (moto does not; messages seeded straight into a DLQ have none).

``move_tasks=True`` also answers StartMessageMoveTask / ListMessageMoveTasks /
CancelMessageMoveTask (which moto lacks) by moving messages on the upstream server in a
background thread, at ``MaxNumberOfMessagesPerSecond``, so the native strategy's client side
(start, poll, cancel on interrupt) runs against the wire.

With ``serialize`` (the default) upstream calls go one at a time: moto's SQS is not
thread-safe (see ``__init__``), and tests of concurrent movers must see SQS's semantics.

``counts`` records what was injected, so tests can assert the faults really happened.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        fail_every: dict[str, int] | None = None,
        throttle_every: dict[str, int] | None = None,
        ambiguous_every: dict[str, int] | None = None,
        move_tasks: bool = False,
        serialize: bool = True,
        delay: dict[str, float] | None = None,
        record: tuple[str, ...] = (),
        errors: dict[str, str] | None = None,
        dlq_source: dict[str, str] | None = None,
    ) -> None:
        u = urlparse(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.fail_every = dict(fail_every or {})
        self.throttle_every = dict(throttle_every or {})
        self.ambiguous_every = dict(ambiguous_every or {})
        self.counts: Counter[str] = Counter()
        self.move_tasks = move_tasks
        self.delay = dict(delay or {})
        self.record = set(record)
        self.errors = dict(errors or {})
        self.dlq_source = dict(dlq_source or {})
        self.requests: list[tuple[str, dict]] = []  # (operation, JSON request) for ops in record
        # moto 5.2.5's SQS backend has no lock around receive/delete (read-modify-write of the
        # queue's message list), so concurrent calls can deliver one message twice or resurrect
        # a deleted one; real SQS does not. Serializing upstream calls gives SQS's semantics.
        self._serial = threading.Lock() if serialize else None
        self.tasks: dict[str, dict] = {}
        self._upstream_url = upstream
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._entries: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                proxy._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                proxy._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _tick(self, kind: str, op: str, every: int) -> bool:
        with self._lock:
            key = f"{kind}:{op}"
            self._calls[key] += 1
            return every > 0 and self._calls[key] % every == 0

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        if self._serial is not None:
            with self._serial:
                return self._forward_now(method, path, headers, body)
        return self._forward_now(method, path, headers, body)

    def _forward_now(self, method: str, path: str, headers: dict[str, str], body: bytes):
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("x-amzn-RequestId", "faultproxy")
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        headers = {
            k: v for k, v in h.headers.items() if k.lower() not in ("connection", "keep-alive")
        }
        op = (h.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
        ctype = h.headers.get("Content-Type", "application/x-amz-json-1.0")
        query_op = ""
        if not op and "x-www-form-urlencoded" in ctype:
            from urllib.parse import parse_qs

            query_op = (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]
        if (op or query_op) in self.errors:
            return self._error(
                h, op or query_op, self.errors[op or query_op], json_protocol=bool(op)
            )
        if self.move_tasks and op in (
            "StartMessageMoveTask",
            "ListMessageMoveTasks",
            "CancelMessageMoveTask",
        ):
            with self._lock:
                self.counts[f"call:{op}"] += 1
            doc = getattr(self, "_" + op)(json.loads(body or b"{}"))
            return self._reply(h, 200, json.dumps(doc).encode(), ctype)
        if op and self._tick("throttle", op, self.throttle_every.get(op, 0)):
            with self._lock:
                self.counts[f"throttled:{op}"] += 1
            err = {
                "__type": "com.amazon.coral.availability#ThrottlingException",
                "message": "Rate exceeded (injected)",
            }
            return self._reply(h, 400, json.dumps(err).encode(), ctype)
        failed: list[dict] = []
        every = self.fail_every.get(op, 0)
        if every and op in ("SendMessageBatch", "DeleteMessageBatch"):
            req = json.loads(body or b"{}")
            keep = []
            for e in req.get("Entries", []):
                with self._lock:
                    self._entries[op] += 1
                    hit = self._entries[op] % every == 0
                if hit:
                    failed.append(
                        {
                            "Id": e["Id"],
                            "SenderFault": False,
                            "Code": "InternalError",
                            "Message": "injected partial failure",
                        }
                    )
                else:
                    keep.append(e)
            with self._lock:
                self.counts[f"failed_entries:{op}"] += len(failed)
            if not keep:
                return self._reply(
                    h, 200, json.dumps({"Successful": [], "Failed": failed}).encode(), ctype
                )
            req["Entries"] = keep
            body = json.dumps(req).encode()
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            headers["Content-Length"] = str(len(body))
        if op in self.record:
            with self._lock:
                self.requests.append((op, json.loads(body or b"{}")))
        if self.delay.get(op):
            time.sleep(self.delay[op])
        status, rheaders, rbody = self._forward(h.command, h.path, headers, body)
        if (
            op == "SendMessageBatch"
            and status == 200
            and self._tick("ambiguous", op, self.ambiguous_every.get(op, 0))
        ):
            with self._lock:
                self.counts[f"ambiguous:{op}"] += 1
            err = {
                "__type": "com.amazon.coral.service#InternalFailure",
                "message": "injected after apply",
            }
            return self._reply(h, 500, json.dumps(err).encode(), ctype)
        if op == "ReceiveMessage" and status == 200 and self.dlq_source:
            queue = str(json.loads(body or b"{}").get("QueueUrl", "")).rsplit("/", 1)[-1]
            if queue in self.dlq_source:
                doc = json.loads(rbody or b"{}")
                for m in doc.get("Messages", []):
                    m.setdefault("Attributes", {})["DeadLetterQueueSourceArn"] = self.dlq_source[
                        queue
                    ]
                rbody = json.dumps(doc).encode()
                with self._lock:
                    self.counts["stamped:ReceiveMessage"] += 1
        if failed and status == 200:
            doc = json.loads(rbody or b"{}")
            doc.setdefault("Failed", [])
            doc["Failed"] = list(doc["Failed"]) + failed
            rbody = json.dumps(doc).encode()
        self._reply(
            h, status, rbody, rheaders.get("Content-Type", rheaders.get("content-type", ctype))
        )

    def _error(self, h: BaseHTTPRequestHandler, op: str, code: str, *, json_protocol: bool) -> None:
        """Answer ``op`` with ``code`` as the service's protocol does (400, or 403 for a denial)."""
        with self._lock:
            self.counts[f"error:{op}"] += 1
        status = 403 if code.startswith("AccessDenied") else 400
        message = f"{code} for {op} (injected)"
        if json_protocol:
            body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
            h.send_response(status)
            h.send_header("Content-Type", "application/x-amz-json-1.0")
            h.send_header("x-amzn-query-error", f"{code};Sender")
        else:
            body = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{code}</Code><Message>{message}</Message></Error>"
                "<RequestId>faultproxy</RequestId></ErrorResponse>"
            ).encode()
            h.send_response(status)
            h.send_header("Content-Type", "text/xml")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("x-amzn-RequestId", "faultproxy")
        h.end_headers()
        h.wfile.write(body)

    # -- message move tasks (emulated on top of the upstream server)

    def _sqs(self):
        import boto3

        return boto3.client(
            "sqs",
            endpoint_url=self._upstream_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def _StartMessageMoveTask(self, req: dict) -> dict:  # noqa: N802 - the API's name
        import uuid

        sqs = self._sqs()
        src = sqs.get_queue_url(QueueName=req["SourceArn"].rsplit(":", 1)[-1])["QueueUrl"]
        if req.get("DestinationArn"):
            dest = sqs.get_queue_url(QueueName=req["DestinationArn"].rsplit(":", 1)[-1])["QueueUrl"]
        else:
            dest = sqs.list_dead_letter_source_queues(QueueUrl=src)["queueUrls"][0]
        a = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["ApproximateNumberOfMessages"])
        handle = uuid.uuid4().hex
        task = {
            "TaskHandle": handle,
            "Status": "RUNNING",
            "SourceArn": req["SourceArn"],
            "ApproximateNumberOfMessagesMoved": 0,
            "ApproximateNumberOfMessagesToMove": int(
                a["Attributes"]["ApproximateNumberOfMessages"]
            ),
            "StartedTimestamp": int(time.time() * 1000),
            "_cancel": threading.Event(),
        }
        if req.get("DestinationArn"):
            task["DestinationArn"] = req["DestinationArn"]
        with self._lock:
            self.tasks[handle] = task
        rate = float(req.get("MaxNumberOfMessagesPerSecond") or 0)
        threading.Thread(
            target=self._run_task, args=(task, sqs, src, dest, rate), daemon=True
        ).start()
        return {"TaskHandle": handle}

    def _run_task(self, task: dict, sqs, src: str, dest: str, rate: float) -> None:
        while not task["_cancel"].is_set():
            msgs = sqs.receive_message(
                QueueUrl=src,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not msgs:
                task["Status"] = "COMPLETED"
                return
            sqs.send_message_batch(
                QueueUrl=dest,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": m["Body"],
                        **(
                            {"MessageAttributes": m["MessageAttributes"]}
                            if m.get("MessageAttributes")
                            else {}
                        ),
                    }
                    for i, m in enumerate(msgs)
                ],
            )
            sqs.delete_message_batch(
                QueueUrl=src,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)
                ],
            )
            task["ApproximateNumberOfMessagesMoved"] += len(msgs)
            if rate:
                task["_cancel"].wait(len(msgs) / rate)

    def _ListMessageMoveTasks(self, req: dict) -> dict:  # noqa: N802
        with self._lock:
            tasks = [t for t in self.tasks.values() if t["SourceArn"] == req.get("SourceArn")]
        tasks.sort(key=lambda t: -t["StartedTimestamp"])
        return {"Results": [{k: v for k, v in t.items() if not k.startswith("_")} for t in tasks]}

    def _CancelMessageMoveTask(self, req: dict) -> dict:  # noqa: N802
        task = self.tasks[req["TaskHandle"]]
        task["_cancel"].set()
        task["Status"] = "CANCELLED"
        return {"ApproximateNumberOfMessagesMoved": task["ApproximateNumberOfMessagesMoved"]}
