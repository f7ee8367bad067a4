"""Threads that start and end all the time, for the programs that report
while threads churn."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def short_lived() -> None:
    time.sleep(0.001)


def churn_threads(stop: threading.Event, batch: int,
                  on_batch: Callable[[int], None] | None = None,
                  target: Callable[[], None] = short_lived) -> None:
    """Start `batch` threads running target and join them, again and again,
    until stop is set; on_batch(batch) after each round."""
    while not stop.is_set():
        threads = [threading.Thread(target=target) for _ in range(batch)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if on_batch is not None:
            on_batch(batch)
