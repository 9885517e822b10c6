from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from hypercare.config import ProbeSettings
from hypercare.serving import BackgroundServer, free_port
from monitor.probes import run_probe


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
