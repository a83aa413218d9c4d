"""Frame sources of tools/publish_images.py: files (looped, unreadable ones skipped) and generated frames."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from yolo_compress.runtime.frame_stream import file_frames, synthetic_frames


def test_synthetic_frames_have_the_size_move_and_repeat_per_seed():
    first = list(itertools.islice(synthetic_frames(64, 48), 3))
    again = list(itertools.islice(synthetic_frames(64, 48), 3))
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in first)
    assert not np.array_equal(first[0], first[2])
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    with pytest.raises(ValueError, match="at least 16x16"):
        next(synthetic_frames(8, 8))


def test_file_frames_loop_and_skip_unreadable_files(tmp_path, capsys):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i * 100, np.uint8))
    (tmp_path / "2.png").write_bytes(b"not a png")
    once = list(file_frames([tmp_path]))
    assert [int(f[0, 0, 0]) for f in once] == [0, 100]
    assert "2.png: not a readable image, skipped" in capsys.readouterr().err
    looped = list(itertools.islice(file_frames([tmp_path], loop=True), 5))
    assert [int(f[0, 0, 0]) for f in looped] == [0, 100, 0, 100, 0]


def test_file_frames_without_anything_readable_raise(tmp_path):
    with pytest.raises(ValueError, match="no images or videos"):
        next(file_frames([tmp_path]))
    (tmp_path / "x.jpg").write_bytes(b"junk")
    with pytest.raises(ValueError, match="could be read"):
        next(file_frames([tmp_path], loop=True))
