"""The engine server across a bad link: `serve-engine` in its own network namespace, joined to this one by a veth
pair whose two ends each delay packets by 100 ms and lose 2 % (tc netem), and a real aiortc client here. The
pictures keep coming, each within a bound, and the latency does not grow (newest frame wins: nothing queues).
Skipped, with the reason, where network namespaces or netem are not available (they need root and the
sch_netem module)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from app.remote.client import RemoteEngine
from tests.test_remote import ROOT, TOKEN, drawing

NS, HOST_IF, NS_IF = "sdxs_netem", "sdxs_v0", "sdxs_v1"
HOST_IP, NS_IP = "10.77.0.1", "10.77.0.2"
log = logging.getLogger(__name__)


def _sh(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def _teardown() -> None:
    _sh("ip", "link", "del", HOST_IF)
    _sh("ip", "netns", "del", NS)


@pytest.fixture()
def netem_namespace():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        pytest.skip("needs root, ip and tc (network namespaces and tc netem)")
    _teardown()
    steps = [("ip", "netns", "add", NS),
             ("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF),
             ("ip", "link", "set", NS_IF, "netns", NS),
             ("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_IF), ("ip", "link", "set", HOST_IF, "up"),
             ("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/24", "dev", NS_IF),
             ("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up"),
             ("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"),
             ("ip", "netns", "exec", NS, "ip", "route", "add", "default", "via", HOST_IP),
             ("tc", "qdisc", "add", "dev", HOST_IF, "root", "netem", "delay", "100ms", "loss", "2%"),
             ("ip", "netns", "exec", NS, "tc", "qdisc", "add", "dev", NS_IF, "root", "netem", "delay", "100ms", "loss", "2%")]
    for cmd in steps:
        r = _sh(*cmd)
        if r.returncode != 0:
            _teardown()
            pytest.skip(f"{' '.join(cmd)} failed here: {r.stderr.strip()} (tests/test_remote_impaired.py makes the "
                        "same link in user space)")
    yield
    _teardown()


def test_pictures_keep_coming_over_100_ms_and_2_percent_loss_each_way(netem_namespace, tiny_base, tiny_controlnet):
    cmd = ["ip", "netns", "exec", NS, sys.executable, "main.py", "serve-engine", "--model", tiny_base, "--controlnet",
           tiny_controlnet, "--size", "64", "--device", "cpu", "--dtype", "float32", "--listen", f"{NS_IP}:8770",
           "--token", TOKEN]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        line = proc.stdout.readline()
        assert "serving the engine" in line, line + proc.stderr.read()
        ping = _sh("ping", "-c", "3", "-i", "0.3", NS_IP) if shutil.which("ping") else None
        log.info("ping across the veth: %s", ping.stdout.strip().splitlines()[-1] if ping and ping.stdout else "no ping")
        latencies, t0 = [], time.monotonic()
        with RemoteEngine(f"http://{NS_IP}:8770", TOKEN, timeout=10, give_up=30) as remote:
            for i in range(40):
                latencies.append(remote.step(drawing(i)).latency_ms)
            rtt = remote.rtt_ms
        seconds = time.monotonic() - t0
        first, last = np.median(latencies[:15]), np.median(latencies[-15:])
        log.info("netem 100 ms / 2 %% each way: %d pictures in %.1f s, latency p50 %.0f ms p95 %.0f ms max %.0f ms, "
                 "first 15 median %.0f, last 15 median %.0f, ping rtt %.0f ms", len(latencies), seconds,
                 np.percentile(latencies, 50), np.percentile(latencies, 95), max(latencies), first, last, rtt)
        assert rtt >= 190, f"the link's round trip is {rtt:.0f} ms: netem is not delaying it"
        assert max(latencies) < 5000, latencies  # a lost packet is sent again: late, never lost for good
        assert last < 2 * first + 300, f"latency grows: {first:.0f} -> {last:.0f} ms (a queue)"
    finally:
        proc.kill()
        proc.wait()
