"""Open a camera bag for evaluation: find its image and ground-truth topics and read their messages.

Every failure of the storage underneath (a truncated mcap, a corrupt sqlite3 file, a message that does not
deserialize) becomes a BagError naming the bag, the topic and the message, because a recording from a robot is
exactly the kind of file that arrives damaged. Reading streams message by message: a long camera bag never has
to fit in memory.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apsw
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.serde import SerdeError

from yolo_compress.bag.errors import BagError
from yolo_compress.bag.messages import LabeledBoxes, boxes_of, class_names_of, stamp_ns
from yolo_compress.bag.typestore import DETECTION_ARRAY, IMAGE_TYPES, typestore
from yolo_compress.bag.writer import CameraTopics

# What rosbags and its storage plugins raise on damaged files: mcap record parsing fails with struct or value
# errors, or a MemoryError where a corrupt length field asks for gigabytes; sqlite3 files are read through apsw.
_STORAGE_ERRORS = (
    ReaderError, SerdeError, apsw.Error, sqlite3.Error, struct.error, ValueError, KeyError, OSError, EOFError,
    MemoryError,
)


@dataclass(frozen=True)
class RawImage:
    """One image message as stored: position in the topic, bag (receive) time, CDR bytes."""

    index: int
    bag_ns: int
    data: bytes


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth boxes by image stamp, and the class names they are about (from the class map if present).

    `repeated` counts messages dropped because an earlier one had their stamp (the first is kept).
    """

    by_stamp: dict[int, LabeledBoxes]
    class_names: list[str]
    from_label_info: bool
    repeated: int = 0


class CameraBag:
    """A rosbag2 folder (or a single .mcap / .db3 file) with one image topic and optionally ground truth.

    `image_topic` None picks the only image topic; `gt_topic` None means the default `/ground_truth`, which may
    be absent (the bag then has no ground truth), while a topic named explicitly must exist.
    """

    def __init__(self, path: str | os.PathLike, image_topic: str | None = None, gt_topic: str | None = None) -> None:
        self.path = Path(path)
        self.topics = _read_topics(self.path)
        self.image_topic = self._pick_image_topic(image_topic)
        self.image_type = self.topics[self.image_topic][0]
        self.gt_topic = self._pick_gt_topic(gt_topic)
        self.label_topic = f"{self.gt_topic}/label_info" if self.gt_topic else None

    @property
    def num_images(self) -> int:
        return self.topics[self.image_topic][1]

    def describe_topics(self) -> str:
        """'name (type, N messages)' of every topic, for error messages."""
        return ", ".join(f"{name} ({msgtype}, {count} messages)" for name, (msgtype, count) in self.topics.items())

    def images(self) -> Iterator[RawImage]:
        """The image messages in bag order."""
        for index, (_, bag_ns, data) in enumerate(self._messages([self.image_topic])):
            yield RawImage(index, bag_ns, data)

    def decode(self, raw: RawImage) -> object:
        """The image message object of `raw` (header, and data or format)."""
        return self._deserialize(raw.data, self.image_type, self.image_topic, raw.index)

    def ground_truth(self) -> GroundTruth | None:
        """All ground truth (a few hundred bytes per frame), or None when the bag has none.

        Two ground-truth messages with one stamp are ambiguous: the first is kept and the rest counted.
        """
        if self.gt_topic is None:
            return None
        topics = [self.gt_topic] + ([self.label_topic] if self.label_topic in self.topics else [])
        by_stamp: dict[int, LabeledBoxes] = {}
        class_names: list[str] | None = None
        repeated = 0
        for index, (topic, _, data) in enumerate(self._messages(topics)):
            msg = self._deserialize(data, self.topics[topic][0], topic, index)
            if topic == self.label_topic:
                class_names = class_names or class_names_of(msg)
            elif (stamp := stamp_ns(msg.header)) in by_stamp:
                repeated += 1
            else:
                by_stamp[stamp] = boxes_of(msg)
        from_label_info = class_names is not None
        if class_names is None:
            class_names = sorted({label for boxes in by_stamp.values() for label in boxes.labels})
        return GroundTruth(by_stamp, class_names, from_label_info, repeated)

    def _pick_image_topic(self, requested: str | None) -> str:
        if requested is not None:
            self._require(requested, IMAGE_TYPES, "image topic")
            return requested
        found = [name for name, (msgtype, _) in self.topics.items() if msgtype in IMAGE_TYPES]
        if len(found) != 1:
            problem = "no image topic" if not found else f"{len(found)} image topics ({', '.join(found)}): pick one"
            raise BagError(f"{self.path}: {problem} (--image-topic); topics: {self.describe_topics() or 'none'}")
        return found[0]

    def _pick_gt_topic(self, requested: str | None) -> str | None:
        if requested is not None:
            self._require(requested, (DETECTION_ARRAY,), "ground-truth topic")
            return requested
        default = CameraTopics().ground_truth
        if default not in self.topics:
            return None
        self._require(default, (DETECTION_ARRAY,), "ground-truth topic")
        return default

    def _require(self, topic: str, msgtypes: tuple[str, ...], what: str) -> None:
        if topic not in self.topics:
            raise BagError(f"{self.path}: no {what} {topic}; topics: {self.describe_topics() or 'none'}")
        if self.topics[topic][0] not in msgtypes:
            raise BagError(
                f"{self.path}: {what} {topic} holds {self.topics[topic][0]}, expected {' or '.join(msgtypes)}"
            )

    def _messages(self, topics: list[str]) -> Iterator[tuple[str, int, bytes]]:
        """(topic, bag time, CDR bytes) of `topics` in bag order; storage failures become BagError."""
        try:
            with Reader(self.path) as reader:
                connections = [c for c in reader.connections if c.topic in topics]
                for connection, bag_ns, data in reader.messages(connections=connections):
                    yield connection.topic, bag_ns, bytes(data)
        except _STORAGE_ERRORS as exc:
            raise BagError(
                f"{self.path}: cannot read {', '.join(topics)} (corrupt or truncated bag?): {_reason(exc)}"
            ) from exc

    def _deserialize(self, data: bytes, msgtype: str, topic: str, index: int) -> object:
        try:
            return typestore().deserialize_cdr(data, msgtype)
        except (SerdeError, KeyError, ValueError, struct.error) as exc:
            raise BagError(f"{self.path}: {topic} message {index} is not a valid {msgtype}: {exc}") from exc


class ImageCursor:
    """Image messages by index, read forward through the bag; going back (stamps out of order) rereads it."""

    def __init__(self, bag: CameraBag) -> None:
        self._bag = bag
        self._images = bag.images()
        self._current: RawImage | None = None

    def get(self, index: int) -> RawImage:
        if self._current is not None and index < self._current.index:
            self._images, self._current = self._bag.images(), None
        while self._current is None or self._current.index < index:
            self._current = next(self._images)
        return self._current


def _read_topics(path: Path) -> dict[str, tuple[str, int]]:
    """{topic: (message type, message count)} from the bag's metadata."""
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(f"{path}: not a rosbag2 folder (no metadata.yaml); give a lone .mcap or .db3 file itself")
    try:
        with Reader(path) as reader:
            return {name: (info.msgtype or "", info.msgcount) for name, info in sorted(reader.topics.items())}
    except _STORAGE_ERRORS as exc:
        raise BagError(f"{path}: not a readable rosbag2 (corrupt or truncated?): {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The exception's message, or its type where it has none (a MemoryError from a corrupt length field)."""
    return str(exc) or f"{type(exc).__name__} (a corrupt length field?)"
