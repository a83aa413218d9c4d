"""Newest-frame hand-off: the consumer always gets the latest item, replaced items are counted, close wakes it."""

from __future__ import annotations

import threading
import time

from yolo_compress.runtime.latest_frame import LatestSlot


def test_take_returns_the_newest_and_counts_the_replaced():
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.take(timeout=0) == 4
    assert (slot.received, slot.dropped) == (5, 4)
    assert slot.take(timeout=0.01) is None  # empty again: nothing is replayed


def test_a_taken_item_is_not_dropped():
    slot: LatestSlot[str] = LatestSlot()
    slot.put("a")
    assert slot.take() == "a"
    slot.put("b")
    assert slot.take() == "b" and slot.dropped == 0


def test_close_wakes_a_waiting_consumer():
    slot: LatestSlot[int] = LatestSlot()
    got = []
    consumer = threading.Thread(target=lambda: got.append(slot.take()))
    consumer.start()
    time.sleep(0.05)  # let it block (the assertion does not depend on this being long enough)
    slot.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive() and got == [None] and slot.closed
    slot.put(1)
    assert slot.take() is None


def test_fast_producer_slow_consumer_every_item_is_taken_or_dropped():
    slot: LatestSlot[int] = LatestSlot()
    taken = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or slot.received - slot.dropped > len(taken):
            item = slot.take(timeout=0.01)
            if item is not None:
                taken.append(item)
                time.sleep(0.001)  # a slow model

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(3000):
        slot.put(i)
    done.set()
    consumer.join(timeout=10)
    assert slot.received == 3000 and len(taken) + slot.dropped == 3000
    assert taken == sorted(taken) and taken[-1] == 2999  # in order, and the last frame is never lost
