"""Latest frame wins, by ping-pong: at most one frame in flight, only the newest kept pending."""

from __future__ import annotations

import threading
from typing import Any


class Relay:
    """offer() returns the item to send now (the worker is idle) or None (it was kept as the pending one,
    replacing any older pending item). done() is called when the worker finishes; it returns the pending
    item to send next, or None. Thread-safe, so the GUI and a test can drive it from anywhere."""

    def __init__(self):
        self._lock = threading.Lock()
        self._busy = False
        self._pending: Any = None
        self.dropped = 0  # pending items replaced by newer ones before they were sent

    @property
    def busy(self) -> bool:
        return self._busy

    def offer(self, item: Any) -> Any:
        with self._lock:
            if not self._busy:
                self._busy = True
                return item
            if self._pending is not None:
                self.dropped += 1
            self._pending = item
            return None

    def done(self) -> Any:
        with self._lock:
            item, self._pending = self._pending, None
            self._busy = item is not None
            return item

    def clear(self) -> None:
        with self._lock:
            self._pending = None
            self._busy = False
