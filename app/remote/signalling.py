"""The client's side of signalling: the offer goes to `serve-engine`'s POST /offer (the token in X-SDXS-Token),
the answer comes back; what goes wrong is one UserError line naming the engine's address."""

from __future__ import annotations

import asyncio
from typing import Any

from models.errors import UserError


async def offer_answer(pc: Any, url: str, token: str | None, timeout: float) -> None:
    """Make pc's offer, post it to the engine at url and set its answer (an aiortc RTCPeerConnection)."""
    import aiohttp
    from aiortc import RTCSessionDescription

    try:
        await pc.setLocalDescription(await pc.createOffer())
        headers = {"X-SDXS-Token": token} if token else {}
        offer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http, \
                http.post(f"{url}/offer", json=offer, headers=headers) as r:
            text = await r.text()
            if r.status == 401:
                raise UserError(f"engine at {url} refused the token: give serve-engine's --token as "
                                "--engine-token or SDXS_ENGINE_TOKEN")
            if r.status != 200:
                raise UserError(f"engine at {url} answered {r.status}: {text.strip().splitlines()[0] if text.strip() else ''}")
            answer = await r.json(content_type=None)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
        if isinstance(e, aiohttp.ClientConnectorError) and isinstance(e.os_error, ConnectionRefusedError):
            raise UserError(f"cannot reach the engine at {url}: nothing listens there (connection refused)") from None
        raise UserError(f"cannot reach the engine at {url}: {type(e).__name__} {e}".strip()) from None
