from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from core.errors import ConfigError
from hypercare.config import load_settings
from hypercare.serving import BackgroundServer, free_port
from monitor.probes import run_probe
from monitor.settings import ProbeSettings


async def ok(_: Request) -> PlainTextResponse:
    return PlainTextResponse("trial balance OK")


def slow(_: Request) -> JSONResponse:
    time.sleep(0.6)
    return JSONResponse({"ok": True})


async def broken(_: Request) -> PlainTextResponse:
    return PlainTextResponse("boom", status_code=500)


@pytest.fixture(scope="module")
def erp_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/ok", ok), Route("/slow", slow), Route("/broken", broken)])
    with BackgroundServer(app) as url:
        yield url


def probe(url: str, **kw: object) -> ProbeSettings:
    return ProbeSettings(name="p", url=url, **kw)  # type: ignore[arg-type]


def test_fast_answer_passes_and_reports_latency(erp_url: str) -> None:
    with httpx.Client() as client:
        result, samples = run_probe(probe(f"{erp_url}/ok", expect_body_contains="OK"), client)
    assert result.status == "pass"
    assert result.check_id == "probe.p" and result.category == "technical"
    assert 0 < (result.measured_value or 0) < 1
    assert {s.name for s in samples} == {"hypercare_probe_duration_seconds", "hypercare_probe_success"}


def test_slow_answer_warns_then_fails_by_thresholds(erp_url: str) -> None:
    with httpx.Client() as client:
        warn, _ = run_probe(probe(f"{erp_url}/slow", latency_warn_s=0.3, latency_fail_s=5), client)
        fail, _ = run_probe(probe(f"{erp_url}/slow", latency_warn_s=0.1, latency_fail_s=0.3), client)
    assert warn.status == "warn"
    assert fail.status == "fail"
    assert "limit 0.30s" in str(fail.sample[0]["problem"])
    assert fail.entities == [{}]


def test_wrong_status_body_and_unreachable_fail_with_the_reason(erp_url: str) -> None:
    with httpx.Client() as client:
        status, _ = run_probe(probe(f"{erp_url}/broken"), client)
        body, _ = run_probe(probe(f"{erp_url}/ok", expect_body_contains="posted"), client)
        down, _ = run_probe(probe(f"http://127.0.0.1:{free_port()}/x", timeout_s=1), client)
    assert status.status == "fail" and "HTTP 500, expected 200" in str(status.sample[0]["problem"])
    assert body.status == "fail" and "lacks 'posted'" in str(body.sample[0]["problem"])
    assert down.status == "fail" and "ConnectError" in str(down.sample[0]["problem"])


@pytest.fixture(scope="module")
def tls_erp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An https ERP endpoint with a self-signed certificate (made by the openssl CLI) valid for 5 days."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "5", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    app = Starlette(routes=[Route("/ok", ok), Route("/whoami", whoami)])
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ssl_keyfile=str(key),
        ssl_certfile=str(cert),
        log_config=None,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"https://127.0.0.1:{port}", cert
    server.should_exit = True
    thread.join(10)


async def whoami(request: Request) -> PlainTextResponse:
    granted = request.headers.get("authorization") == "Bearer tok-123-secret"
    return PlainTextResponse("auth=granted" if granted else "auth=refused")


def test_https_probe_reports_certificate_days_left_and_fails_when_close(tls_erp: tuple[str, Path]) -> None:
    url, cert = tls_erp
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as client:
        warn, samples = run_probe(probe(f"{url}/ok", tls_warn_days=30, tls_fail_days=2), client)
        fail, _ = run_probe(probe(f"{url}/ok", tls_warn_days=30, tls_fail_days=6), client)
        fine, _ = run_probe(probe(f"{url}/ok", tls_warn_days=4, tls_fail_days=2), client)
    (expiry,) = [s for s in samples if s.name == "hypercare_probe_tls_certificate_expiry_timestamp_seconds"]
    days_left = (expiry.value - time.time()) / 86400
    assert 4.9 < days_left <= 5.0
    assert warn.status == "warn" and "TLS certificate expires in 5.0 days" in str(warn.sample[0]["problem"])
    assert fail.status == "fail" and "TLS certificate expires" in str(fail.sample[0]["problem"])
    assert fine.status == "pass"


def test_untrusted_certificate_fails_the_probe(tls_erp: tuple[str, Path]) -> None:
    url, _ = tls_erp
    with httpx.Client() as client:
        result, samples = run_probe(probe(f"{url}/ok"), client)
    assert result.status == "fail" and "CERTIFICATE_VERIFY_FAILED" in str(result.sample[0]["problem"])
    assert not [s for s in samples if "tls" in s.name]


def test_headers_come_from_secrets_and_never_reach_results_or_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = Starlette(routes=[Route("/whoami", whoami)])
    monkeypatch.setenv("ERP_API_TOKEN", "Bearer tok-123-secret")
    settings = load_settings(
        None,
        probes=[
            {
                "name": "api",
                "url": "http://placeholder/whoami",
                "expect_body_contains": "auth=granted",
                "headers": {"Authorization": {"secret_env": "ERP_API_TOKEN"}},
            }
        ],
    )
    with BackgroundServer(app) as url, httpx.Client() as client, caplog.at_level("DEBUG"):
        configured = settings.probes[0].model_copy(update={"url": f"{url}/whoami"})
        result, _ = run_probe(configured, client)
    assert result.status == "pass"  # the server saw the token from the environment
    assert "tok-123-secret" not in repr(settings) + repr(result) + caplog.text
    with pytest.raises(ConfigError, match="environment variable NOT_SET_TOKEN is not set"):
        load_settings(
            None,
            probes=[{"name": "api", "url": "http://x/", "headers": {"A": {"secret_env": "NOT_SET_TOKEN"}}}],
        )
