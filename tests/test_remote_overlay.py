"""The overlay's engine line with a remote engine: the server's engine time (RemoteLoop's timings["engine"]), not
the whole round trip, which the latency line already shows; a local engine's line is its total as before."""

from __future__ import annotations

from app.ui.outputs.views import overlay_lines


def test_a_remote_engine_shows_the_servers_engine_time_and_a_local_one_its_total():
    remote = overlay_lines({"total": 413.0, "engine": 180.0, "server": 190.0}, 3.8, 413.0, False, None, 0, False, False)
    assert remote[0].endswith("latency  413 ms") and remote[1] == "engine 180 ms"
    local = overlay_lines({"total": 95.0, "unet": 60.0}, 10.0, 100.0, True, None, 0, False, False)
    assert local[1] == "engine 95 ms  (unet 60)"
