"""Local stand-ins for the Chinese team channels' webhook endpoints (DingTalk custom robot, WeCom group bot,
Feishu / Lark custom bot) and an SMTP server for e-mail, on loopback ports.

The apprise plugins of these channels have their vendor's host built in (no custom host or port), so the
tests point each plugin's endpoint constant at the stand-in; the plugin itself (payload, signing, answer
handling) runs unchanged. Each stand-in answers like its vendor: DingTalk and WeCom
``{"errcode": 0, "errmsg": "ok"}``, Feishu and Lark ``{"code": 0, "msg": "success"}``; DingTalk's stand-in
checks the robot's signature (``timestamp`` + ``sign``) as DingTalk does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from hypercare.serving import free_port

DINGTALK_SECRET = "SECdingtalkrobotsecret0123456789"


class ChannelStandIn:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                split = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(split.query).items()}
                sink.received.append({"path": split.path, "query": query, "json": json.loads(raw)})
                code, answer = sink.answer(split.path, query)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == "/robot/send":  # DingTalk
            if "sign" in query and not dingtalk_sign_ok(query):
                return 200, {"errcode": 310000, "errmsg": "sign not match"}
            return 200, {"errcode": 0, "errmsg": "ok"}
        if path == "/cgi-bin/webhook/send":  # WeCom
            return 200, {"errcode": 0, "errmsg": "ok"}
        if path.startswith("/open-apis/bot/v2/hook/"):  # Feishu, Lark
            return 200, {"code": 0, "msg": "success", "data": {}}
        return 404, {"error": "no such endpoint"}


def dingtalk_sign_ok(query: dict[str, str]) -> bool:
    """DingTalk's check: sign = base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))."""
    expected = base64.b64encode(
        hmac.new(
            DINGTALK_SECRET.encode(), f"{query['timestamp']}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    return hmac.compare_digest(expected, unquote(query["sign"]))  # the robot url-encodes its sign


class SmtpStandIn:
    """An SMTP server on a loopback port (aiosmtpd) keeping every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
                content = (
                    envelope.content
                    if isinstance(envelope.content, bytes)
                    else str(envelope.content).encode()
                )
                sink.messages.append((envelope, message_from_bytes(content)))
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> int:
        self.controller.start()
        return self.port

    def stop(self) -> None:
        self.controller.stop()
