"""Keep camera-frame-sized buffers inside the malloc heap: it halves what receiving a frame costs.

glibc serves every allocation above its mmap threshold (128 KiB, raised only after such a block is freed)
with a fresh mmap and gives it back with munmap on free. A VGA bgr8 frame (900 KB) passes through several
buffers on its way through Fast DDS, rmw and rclpy, so every frame paid for page faults on freshly zeroed
pages. Measured on the 2-core dev machine (bench/frame_receive_cost.py): a subscriber that does nothing with
60 Hz VGA frames spent 3.8 ms of CPU per frame, more than half in the kernel; with the thresholds raised,
1.8 ms (1.4 with the node's raw subscription), and the bare rclpy echo of a frame fell from 5.7 to 3.7 ms.
The price is memory held: freed frame buffers stay in the process (up to TRIM_THRESHOLD_BYTES) for the next
frame instead of going back to the system.

Same effect without code: MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728 in the
environment of any process (a camera driver, too) before it starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# From glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest on 64-bit; holds a 4K bgr8 frame (25 MB)
TRIM_THRESHOLD_BYTES = 128 << 20  # free memory above this at the heap's top does go back to the system


def keep_frame_buffers_in_heap() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where the C library has no mallopt
    (musl, macOS), which changes nothing else. Call it first thing in a process that moves frames."""
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                 TRIM_THRESHOLD_BYTES))
