"""The demo's notification receiver: a local HTTP endpoint that apprise's ``json://`` posts to, appending
each notification to a JSON-lines file. It stands in for the on-call channel (chat, pager, mail)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


class NotificationSink:
    def __init__(self, path: Path, host: str = "127.0.0.1") -> None:
        self.path = path
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body or b"{}")
                except json.JSONDecodeError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with sink._lock, sink.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(payload, ensure_ascii=False) + "\n")
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # quiet: the demo prints its own
                return

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="notify-sink")

    @property
    def apprise_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"json://{host!s}:{port}/notify"

    def received(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]

    def __enter__(self) -> NotificationSink:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
