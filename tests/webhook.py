"""A local webhook receiver (an HTTP server on 127.0.0.1) and a Prefect notification block pointed at it:
how tests see the pages and notices kafka-medic sends, exactly as an on-call's endpoint would."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.variables import Variable

from tasks.state import cluster_state


class Hook:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""

    def bodies(self) -> list[str]:
        with self.lock:
            return [r["body"] for r in self.requests]


@contextmanager
def webhook_receiver() -> Iterator[Hook]:
    received = Hook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode(errors="replace")
            with received.lock:
                received.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    received.url = f"http://127.0.0.1:{srv.server_address[1]}/page"
    try:
        yield received
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


WEBHOOK_TOKEN = "tok-5ecret-value-1234"


async def save_webhook(hook: Hook, cluster: str) -> str:
    """A CustomWebhookNotificationBlock whose token is a block secret; configured for ``cluster``."""
    name = f"hook-{uuid.uuid4().hex[:8]}"
    await CustomWebhookNotificationBlock(
        name="oncall",
        url=hook.url,
        json_data={"text": "{{subject}}\n{{body}}"},
        headers={"Authorization": "Bearer {{token}}"},
        secrets={"token": WEBHOOK_TOKEN},
        timeout=10,
    ).save(name, overwrite=True)
    ref = f"custom-webhook/{name}"
    await Variable.aset(cluster_state(cluster).notify_variable(), [ref], overwrite=True)
    return ref
