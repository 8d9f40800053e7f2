"""A bad network between a client and `serve-engine` on one machine, without tc netem: a UDP relay that delays
every datagram and drops some, and a signalling proxy that makes the WebRTC media go through it.

Where the kernel has netem (tests/test_remote_netem.py) that is the better tool. Where it has not (this project's
build machine: CONFIG_NET_SCH_NETEM is off; of the qdiscs only htb and tbf are built in, which shape a rate
but cannot delay a packet by a fixed time or drop one at random), this does the same job in user space:

    client --HTTP--> ImpairedLink (127.0.0.1:P) --HTTP--> serve-engine      signalling, each request delayed one round trip
    client --UDP---> relay front --(delay, loss)--> relay back --UDP--> serve-engine's ICE port      media and data channel

The proxy takes the client's SDP offer and strips its ICE candidates (so the server cannot reach the client
directly, only learn the relay's address from the checks it receives: peer-reflexive candidates, RFC 8445 7.3.1.3),
and rewrites the answer's candidates to one: the relay's front socket, which forwards to the server's own host
candidate. Every datagram each way (ICE checks, DTLS, SCTP with the data channel, RTP) waits `delay_ms` and is
dropped with probability `loss`; a datagram is never reordered (constant delay), as netem does by default. The
client and server run unchanged: the same RemoteEngine and the same page as on a real link.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
CANDIDATE = re.compile(r"^a=candidate:(\S+) (\d) (udp|UDP) (\d+) (\S+) (\d+) typ host(.*)$")


@dataclass(kw_only=True)
class Impairment:
    delay_ms: float = 100.0  # added to every datagram, each way
    loss: float = 0.02  # probability that a datagram is dropped, each way
    seed: int = 0  # the drops' random sequence, so runs are comparable


@dataclass(kw_only=True)
class Counts:
    forwarded: int = 0  # datagrams delivered (both ways)
    dropped: int = 0  # datagrams dropped (both ways)
    bytes: int = 0  # bytes delivered (both ways)
    sessions: int = 0  # offers relayed


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any):
        self.on_datagram = on_datagram
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.on_datagram(data, addr)


class Relay:
    """One front socket for clients; per client address a back socket to the server's candidate (its own source
    port, as a NAT would), so the server learns one peer-reflexive candidate per client candidate."""

    def __init__(self, link: ImpairedLink, host: str, upstream: tuple[str, int]):
        self.link, self.host, self.upstream = link, host, upstream
        self.backs: dict[tuple, _Side] = {}

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        _, self.front = await loop.create_datagram_endpoint(lambda: _Side(self._from_client), local_addr=(self.host, 0))
        return self.front.transport.get_extra_info("sockname")[:2]

    def _from_client(self, data: bytes, addr: tuple) -> None:
        back = self.backs.get(addr)
        if back is None:
            back = self.backs[addr] = _Side(lambda d, _a, client=addr: self.link.later(self.front, d, client))
            asyncio.ensure_future(asyncio.get_running_loop().create_datagram_endpoint(lambda: back, local_addr=(self.host, 0)))
        self.link.later(back, data, self.upstream)

    def close(self) -> None:
        for side in [self.front, *self.backs.values()]:
            if side.transport is not None:
                side.transport.close()


class ImpairedLink:
    """An HTTP proxy at 127.0.0.1 in front of `upstream` (a serve-engine URL) whose WebRTC sessions go through a
    Relay with `impairment`; runs its own event loop in a thread. `url` is what clients connect to."""

    def __init__(self, upstream: str, impairment: Impairment):
        self.upstream, self.impairment = upstream.rstrip("/"), impairment
        self.counts = Counts()
        self.random = random.Random(impairment.seed)
        self.relays: list[Relay] = []
        self.url = ""

    def later(self, side: _Side, data: bytes, addr: tuple) -> None:
        """The datagram to addr through side's socket, after the delay, unless it is lost."""
        if self.random.random() < self.impairment.loss:
            self.counts.dropped += 1
            return

        def send() -> None:
            transport = side.transport  # a new back socket is open by now (it opens in well under the delay)
            if transport is not None and not transport.is_closing():
                transport.sendto(data, addr)
                self.counts.forwarded += 1
                self.counts.bytes += len(data)

        asyncio.get_running_loop().call_later(self.impairment.delay_ms / 1000, send)

    def start(self) -> str:
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(self._start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="impaired-link", daemon=True)
        self.thread.start()
        if not ready.wait(30):
            raise RuntimeError("the impaired link did not start")
        return self.url

    async def _start(self) -> None:
        from aiohttp import ClientSession, web

        self.http = ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        async def stop() -> None:
            for relay in self.relays:
                relay.close()
            await self.http.close()
            await self.runner.cleanup()

        if getattr(self, "loop", None) is not None:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    async def _forward(self, request: Any) -> Any:
        from aiohttp import web

        await asyncio.sleep(2 * self.impairment.delay_ms / 1000)  # the request's and the answer's trip
        headers = {k: v for k, v in request.headers.items() if k in ("X-SDXS-Token", "Authorization", "Content-Type")}
        body = await request.read()
        if request.method == "POST" and request.path == "/offer":
            offer = await request.json()
            body = _json({**offer, "sdp": strip_candidates(offer["sdp"])})
        async with self.http.request(request.method, self.upstream + request.path_qs, data=body, headers=headers) as r:
            data, kind = await r.read(), r.headers.get("Content-Type", "text/plain").split(";")[0]
        if request.method == "POST" and request.path == "/offer" and r.status == 200:
            answer = json.loads(data)
            answer["sdp"] = await self._through_relay(answer["sdp"])
            data = _json(answer)
            self.counts.sessions += 1
        return web.Response(status=r.status, body=data, content_type=kind, headers={"Cache-Control": "no-store"})

    async def _through_relay(self, sdp: str) -> str:
        """The answer with its host candidates replaced by one: a new relay's front, forwarding to the first IPv4 one."""
        lines = sdp.splitlines()
        found = [m for m in map(CANDIDATE.match, lines) if m and ":" not in m.group(5)]
        if not found:
            raise RuntimeError("the answer has no IPv4 host candidate to relay to")
        target = (found[0].group(5), int(found[0].group(6)))
        relay = Relay(self, target[0], target)
        host, port = await relay.start()
        self.relays.append(relay)
        log.info("impaired link: media %s:%d -> %s:%d, %g ms and %g %% loss each way", host, port, *target,
                 self.impairment.delay_ms, 100 * self.impairment.loss)
        out = []
        for line in lines:
            m = CANDIDATE.match(line)
            if m:
                if (m.group(5), int(m.group(6))) == target:
                    out.append(f"a=candidate:{m.group(1)} {m.group(2)} udp {m.group(4)} {host} {port} typ host{m.group(7)}")
            elif not line.startswith("a=candidate:"):
                out.append(line)
        return "\r\n".join(out) + "\r\n"


def strip_candidates(sdp: str) -> str:
    """The offer without candidates and without end-of-candidates: the server waits for the client's checks."""
    keep = [line for line in sdp.splitlines() if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
    return "\r\n".join(keep) + "\r\n"


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def parse(text: str) -> Impairment:
    """'100,2' -> 100 ms delay and 2 % loss each way."""
    from models.errors import UserError

    try:
        delay, _, loss = text.partition(",")
        out = Impairment(delay_ms=float(delay), loss=float(loss or 0) / 100)
    except ValueError:
        out = None
    if out is None or out.delay_ms < 0 or not 0 <= out.loss < 1:
        raise UserError(f"--remote-impair {text!r}: give DELAY_MS,LOSS_PCT such as 100,2")
    return out
