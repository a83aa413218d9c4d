"""keep_frame_buffers_in_heap really stops the page-fault churn of frame-sized buffers (the cost it removes
from every received frame): minor page faults of a process that, like a message passing through DDS, rmw
and rclpy, holds a few VGA-sized copies at once and frees them, with and without it. (One buffer at a time
glibc's own threshold adjustment already handles; several at once leave more free memory at the heap's
top than its trim threshold, so it goes back to the system after every frame and faults in again.)"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

CHURN = """
import json, resource, sys
import numpy as np
from yolo_compress.ros.frame_memory import keep_frame_buffers_in_heap
applied = keep_frame_buffers_in_heap() if sys.argv[1] == "tuned" else None
def frame():
    copies = [np.empty(640 * 480 * 3, np.uint8) for _ in range(4)]
    for copy in copies:
        copy.fill(1)
frame()  # warm-up: the heap grows once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    frame()
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _faults(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")
def test_frame_sized_buffers_are_reused_instead_of_mapped_afresh():
    plain, tuned = _faults("plain"), _faults("tuned")
    assert tuned["applied"] is True
    pages_per_frame = 640 * 480 * 3 // 4096
    assert plain["faults"] > 25 * pages_per_frame  # each fresh mmap faults its pages in again
    assert tuned["faults"] < 2 * pages_per_frame  # the same heap block every time
