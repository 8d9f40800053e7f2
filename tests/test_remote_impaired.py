"""The engine server across a bad link made in user space (app/cli/bench/impaired.py), for machines whose kernel
has no netem (tests/test_remote_netem.py skips there): every datagram between a real aiortc client and the real
server waits 100 ms each way and 2 % are dropped, the WebRTC media going through a relay because the signalling
proxy strips the offer's candidates and points the answer's at the relay. Pictures keep coming, each within a bound,
the latency does not grow (newest frame wins: nothing queues), and the link really was slow and lossy."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from app.cli.bench.impaired import ImpairedLink, Impairment, strip_candidates
from app.live.loop import LiveLoop
from app.live.settings import LiveSettings
from app.live.testing import stand_in
from app.remote.client import RemoteEngine
from app.remote.server import EngineServer
from tests.test_remote import TOKEN, drawing

log = logging.getLogger(__name__)


@pytest.fixture()
def link():
    server = EngineServer(LiveLoop(stand_in(size=64), LiveSettings(size=64)), "127.0.0.1:0", token=TOKEN)
    server.start()
    impaired = ImpairedLink(server.url, Impairment(delay_ms=100, loss=0.02, seed=1))
    impaired.start()
    yield server, impaired
    impaired.stop()
    server.stop()


def test_the_offer_reaches_the_server_without_candidates():
    offer = "v=0\r\na=candidate:1 1 udp 2130706431 192.0.2.2 5000 typ host\r\na=end-of-candidates\r\na=mid:0\r\n"
    assert strip_candidates(offer) == "v=0\r\na=mid:0\r\n"


def test_pictures_keep_coming_over_100_ms_and_2_percent_loss_each_way(link):
    server, impaired = link
    latencies = []
    with RemoteEngine(impaired.url, TOKEN, timeout=10, give_up=30) as remote:
        for i in range(60):
            picture = remote.step(drawing(i))
            assert picture.image.shape == (64, 64, 3)
            latencies.append(picture.latency_ms)
    c = impaired.counts
    first, last = np.median(latencies[:20]), np.median(latencies[-20:])
    log.info("impaired 100 ms / 2 %% each way: latency p50 %.0f p95 %.0f max %.0f ms; first 20 median %.0f, last 20 %.0f; "
             "%d datagrams relayed, %d dropped", np.percentile(latencies, 50), np.percentile(latencies, 95), max(latencies),
             first, last, c.forwarded, c.dropped)
    assert c.sessions == 1 and server.sessions == 1  # one session, never reconnected
    assert min(latencies) >= 195, f"a picture came back in {min(latencies):.0f} ms: not through the 2 x 100 ms relay"
    assert c.dropped >= 1 and c.forwarded > 100, c  # the link really lost packets, and carried the session
    assert max(latencies) < 5000, latencies  # a lost packet is sent again: late, never lost for good
    assert last < 2 * first + 300, f"latency grows: {first:.0f} -> {last:.0f} ms (a queue)"
