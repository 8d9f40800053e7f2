"""Video tracks each way (app/remote/video.py) over real WebRTC on loopback: a client's camera, video or screen frames
go on its video track and their pictures come back on the server's, matched to their frames; drawings still go
lossless over the data channel and come back sharp there; `stream --engine` with a video file sends it on the
track. The engine is app.live.testing.stand_in (the real Engine and LiveLoop on tiny parts), whose picture is a
tinted copy of its condition, so "follows the input" is a pixel check."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.live.loop import Frame, LiveLoop
from app.live.settings import LiveSettings
from app.live.testing import stand_in
from app.remote.client import RemoteEngine
from app.remote.messages import Message
from app.remote.server import EngineServer
from app.remote.video import HALF, NewestTrack, PtsMatcher, is_repeat

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "video-token-0123456789abcdef"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def server():
    srv = EngineServer(LiveLoop(stand_in(size=64), LiveSettings(size=64)), "127.0.0.1:0", token=TOKEN, idle=3.0)
    srv.start()
    yield srv
    srv.stop()


def camera(n: int, left: bool, shape: tuple[int, int] = (48, 64)) -> Frame:
    """A camera frame: white with a black band on the left or the right third."""
    img = np.full((*shape, 3), 255, np.uint8)
    img[:, : shape[1] // 3] = 0 if left else 255
    img[:, -shape[1] // 3:] = 255 if left else 0
    return Frame(img, time.perf_counter(), False, n)


def test_camera_frames_go_on_a_video_track_and_their_pictures_come_back_on_one(server):
    with RemoteEngine(server.url, TOKEN) as remote:
        assert remote.video_link, "the server did not answer the client's video track with its own"
        pics = [remote.step(camera(i, left=i % 2 == 0)) for i in range(8)]
        assert all(p.track for p in pics) and [p.seq for p in pics] == list(range(1, 9))
        for i, p in enumerate(pics):
            left, right = p.image[:, :16].mean(), p.image[:, -16:].mean()
            assert (left < right - 100) if i % 2 == 0 else (right < left - 100), (i, left, right)  # follows the input
        session = server.session
        assert session.out_track.sent >= 8 and session.frames_in >= 8
        assert session.bytes_in == 0, "camera frames went over the data channel"
        assert remote.video_unmatched == 0 and all(p.latency_ms < 5000 for p in pics)


def test_drawings_still_go_lossless_over_the_data_channel_and_come_back_sharp(server):
    with RemoteEngine(server.url, TOKEN) as remote:
        remote.step(camera(0, left=True))
        img = np.full((64, 64, 3), 255, np.uint8)
        img[32, 4:60] = 0  # a line one pixel thin
        pic = remote.step(Frame(img, time.perf_counter(), True, 1))
        assert not pic.track and pic.bytes_out > 0 and pic.bytes_in > 0
        col = pic.image[:, 30].astype(float).mean(axis=1)
        assert col[32] < 60 and col[30] > 150 and col[34] > 150, col[28:37]  # dark on the line, light beside it
        assert server.session.bytes_in >= pic.bytes_out  # the drawing came over the data channel


def test_settings_and_pause_reach_the_pictures_of_the_video_track(server):
    with RemoteEngine(server.url, TOKEN) as remote:
        first = remote.step(camera(0, left=True), LiveSettings(size=64, prompt="a dog", seed=5))
        assert server.loop.settings.prompt == "a dog"
        remote.send(Message(type="pause", fields={"on": True}))
        assert _until(lambda: server.session.paused)
        held = remote.step(camera(1, left=False))  # paused: the held picture comes back on the track
        assert held.track and held.reused and held.image[:, :16].mean() < held.image[:, -16:].mean() - 100
        assert np.abs(held.image.astype(int) - first.image.astype(int)).mean() < 8


def test_a_dropped_link_comes_back_with_its_video_tracks(server):
    import asyncio

    said = []
    with RemoteEngine(server.url, TOKEN, say=said.append, give_up=20) as remote:
        remote.step(camera(0, left=True))
        session = server.session
        asyncio.run_coroutine_threadsafe(server._close(session, "test drops it"), server._aio).result(5)  # noqa: SLF001
        assert _until(lambda: remote.state == "reconnecting" or server.session not in (None, session), 5)
        pic = remote.step(camera(1, left=False))  # a new link, new tracks: the frame goes again and comes back
        assert pic.track and remote.state == "live" and pic.image[:, -16:].mean() < pic.image[:, :16].mean() - 100
        assert server.session is not session and server.session.out_track.sent >= 1
    assert len([s for s in said if "link lost" in s]) == 1 and len([s for s in said if "back after" in s]) == 1, said


def test_stream_with_a_video_file_sends_it_on_the_track_and_writes_the_pictures(server, tmp_path):
    from app.live.testing import count_frames, write_test_video

    clip = write_test_video(tmp_path / "clip.mp4", frames=12, size=64)
    r = subprocess.run([sys.executable, "main.py", "stream", "--engine", server.url, "--input", str(clip), "--out",
                        str(tmp_path / "o.mp4"), "--max-frames", "6"], cwd=ROOT, capture_output=True, text=True,
                       timeout=180, env={**os.environ, "SDXS_ENGINE_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    assert count_frames(tmp_path / "o.mp4") == 6
    assert server.track_frames >= 6 and server.worker.rendered >= 6


def test_newest_track_keeps_only_the_newest_picture_and_repeats_each_once():
    import asyncio

    async def run() -> None:
        track = NewestTrack()
        a, b = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
        track.put(a)
        pts_b = track.put(b)  # before the encoder took a: b replaces it
        got = await track.recv()
        assert got.pts == pts_b and got.to_ndarray(format="rgb24").mean() > 150 and track.replaced == 1
        again = await track.recv()  # nothing newer: the repeat that pushes b out of the far end's jitter buffer
        assert is_repeat(again.pts, got.pts)
        waiting = asyncio.ensure_future(track.recv())  # then it waits for a new picture, repeating nothing more
        await asyncio.sleep(0.05)
        assert not waiting.done()
        pts_c = track.put(a)
        assert (await waiting).pts == pts_c and pts_c % (2 * HALF) == 0 and pts_c > pts_b
        track.stop()

    asyncio.run(run())


def test_pts_matcher_learns_the_shift_of_a_lost_first_frame_and_takes_repeats():
    m = PtsMatcher()
    for k, pts in enumerate((0, 900, 2700, 3690, 5400)):
        m.announce(pts, k)
    assert m.lookup(0) == 0  # one frame seen: taken to be the first sent (nothing lost before it)
    # but frame 0 was lost: the receiver counts from frame 1 (900), seeing every pts 900 lower, one tick off at times
    assert m.lookup(1800) is None and m.lookup(2791) is None  # those map to nothing: the guess was wrong
    assert m.lookup(4500 + HALF) == 4  # the third miss learns the shift anew; a repeat is its frame's picture
    assert [m.lookup(0), m.lookup(1800), m.lookup(2789)] == [1, 2, 3]
    assert m.lookup(77_777) is None  # never announced
    fresh = PtsMatcher()
    fresh.announce(0, "a")
    assert fresh.lookup(1) == "a" and fresh.lookup(HALF) == "a"  # a tick off; its repeat


def _until(check, wait: float = 10.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False
