"""bench remote's browser row (app/cli/bench/browser.py) against a real server on loopback with the stand-in engine,
in a real headless Chromium: the page's counters add up (a picture per drawing sent, bytes each way, stroke to
picture no shorter than capture to picture), and the same page works through the user-space impaired link
(app/cli/bench/impaired.py), its pictures then at least a round trip late. Skipped, with the reason, without
Chromium (tests/system_deps.sh installs it)."""

from __future__ import annotations

import pytest

from app.cli.bench import browser
from app.cli.bench.impaired import ImpairedLink, Impairment
from app.live.loop import LiveLoop
from app.live.settings import LiveSettings
from app.live.testing import stand_in
from app.remote.server import EngineServer

TOKEN = "bench-browser-token-0123456789abcdef"
pytestmark = pytest.mark.skipif(browser.chromium() is None, reason="Chromium is not installed (Debian: apt-get install "
                                "chromium; tests/system_deps.sh does it)")


@pytest.fixture()
def server():
    srv = EngineServer(LiveLoop(stand_in(size=128), LiveSettings(size=128)), "127.0.0.1:0", token=TOKEN)
    srv.start()
    yield srv
    srv.stop()


def test_the_browser_row_counts_what_the_page_sent_and_got(server):
    row = browser.measure(f"{server.url}/#token={TOKEN}", 12, timeout=120)
    assert "skipped" not in row, row
    assert row["frames"] >= 12 and row["fps"] > 0
    assert row["bytes_up_per_frame"] > 1000  # the page's 512 px PNG, lossless
    assert row["bytes_down_per_frame"] > 1000  # the JPEG back
    assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"] <= row["latency_max_ms"]
    assert row["stroke_latency_p50_ms"] >= row["latency_p50_ms"]  # a stroke is drawn before its drawing is grabbed
    assert row["engine_p50_ms"] > 0 and row["overhead_p50_ms"] < row["latency_p50_ms"]


def test_the_page_works_through_the_impaired_link(server):
    link = ImpairedLink(server.url, Impairment(delay_ms=100, loss=0.02, seed=2))
    url = link.start()
    try:
        row = browser.measure(f"{url}/#token={TOKEN}", 8, timeout=120)
    finally:
        link.stop()
    assert "skipped" not in row, row
    assert row["frames"] >= 8
    assert row["latency_p50_ms"] >= 195, row  # every datagram crossed the relay: at least one 200 ms round trip
    assert link.counts.sessions == 1 and link.counts.forwarded > 100
