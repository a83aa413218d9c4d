"""A camera recording as a new rosbag2 (mcap or sqlite3): images, their ground truth and its class map.

Written through rosbags, so no ROS install is needed, with what `ros2 bag play` needs to replay it on a robot:
standard message types with their real type hashes, recorded QoS profiles, and the rosbag2 metadata version 8.
Version 9 only changes how QoS enums are spelled (names instead of numbers), which older rosbag2 readers cannot
parse; version 8 is what Jazzy records. The bag is built in a hidden folder beside the target and renamed into
place when complete, so an interrupted run never leaves a bag that looks whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from yolo_compress.bag import qos
from yolo_compress.bag.errors import BagError
from yolo_compress.bag.messages import LabeledBoxes, detection_array, label_info
from yolo_compress.bag.typestore import DETECTION_ARRAY, IMAGE_TYPES, LABEL_INFO, typestore

BAG_VERSION = 8
STORAGE_FORMATS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


@dataclass(frozen=True)
class CameraTopics:
    """Topic names of a camera bag; ground truth is stamped like its image (DESIGN.md)."""

    image: str = "/camera/image_raw"
    ground_truth: str = "/ground_truth"
    label_info: str = "/ground_truth/label_info"


class CameraBagWriter:
    """Context manager writing frames in stamp order; `class_names` None writes no ground truth at all.

    The class map goes out once, before the first frame, stamped like it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        image_type: str,
        class_names: Sequence[str] | None,
        topics: CameraTopics = CameraTopics(),
        storage: str = "mcap",
        overwrite: bool = False,
    ) -> None:
        if image_type not in IMAGE_TYPES:
            raise ValueError(f"image_type must be one of {IMAGE_TYPES}, got {image_type!r}")
        if storage not in STORAGE_FORMATS:
            raise ValueError(f"storage format must be one of {sorted(STORAGE_FORMATS)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise BagError(f"{self.path} exists: choose another output or remove it")
        if self.path.exists() and not (self.path / "metadata.yaml").is_file():
            raise BagError(f"{self.path} exists and is not a rosbag2 folder (no metadata.yaml): not replacing it")
        self.image_type = image_type
        self.class_names = None if class_names is None else list(class_names)
        self.topics = topics
        self.storage = storage
        self.frames = 0
        self._build_root: Path | None = None
        self._writer: Writer | None = None
        self._connections: dict[str, object] = {}

    def __enter__(self) -> CameraBagWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._build_root = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self._writer = Writer(self._build_root / self.path.name, version=BAG_VERSION,
                              storage_plugin=STORAGE_FORMATS[self.storage])
        try:
            self._writer.open()
            self._add(self.topics.image, self.image_type, qos.STREAM)
            if self.class_names is not None:
                self._add(self.topics.ground_truth, DETECTION_ARRAY, qos.STREAM)
                self._add(self.topics.label_info, LABEL_INFO, qos.LATCHED)
        except (WriterError, OSError) as exc:
            self._discard()
            raise BagError(f"{self.path}: cannot create the bag: {exc}") from exc
        return self

    def write_frame(self, stamp_ns: int, image_msg: object, truth: LabeledBoxes | None) -> None:
        """One image message (its header carries `stamp_ns`) and, when the bag has ground truth, its boxes.

        A bag with ground truth needs `truth` for every frame (empty boxes: nothing to find); a frame without
        one would read as "not labeled", which is a different thing.
        """
        if (truth is None) != (self.class_names is None):
            raise ValueError("truth must be given for every frame exactly when the bag has class_names")
        if self.frames == 0 and self.class_names is not None:
            self._write(self.topics.label_info, LABEL_INFO, stamp_ns, label_info(self.class_names, image_msg.header))
        self._write(self.topics.image, self.image_type, stamp_ns, image_msg)
        if truth is not None:
            self._write(self.topics.ground_truth, DETECTION_ARRAY, stamp_ns, detection_array(truth, image_msg.header))
        self.frames += 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            self._writer.close()
            if self.path.exists():
                shutil.rmtree(self.path)
            os.replace(self._build_root / self.path.name, self.path)
        except (WriterError, OSError) as exc:
            raise BagError(f"{self.path}: cannot finish the bag: {exc}") from exc
        finally:
            self._discard()

    def _add(self, topic: str, msgtype: str, profile: object) -> None:
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=typestore(), offered_qos_profiles=[profile]
        )

    def _write(self, topic: str, msgtype: str, stamp_ns: int, msg: object) -> None:
        self._writer.write(self._connections[topic], int(stamp_ns), typestore().serialize_cdr(msg, msgtype))

    def _discard(self) -> None:
        """Remove the build folder (after a failure, or what is left of it after the rename)."""
        if self._writer is not None and self._writer.storage is not None:
            self._writer.abort()
        self._writer = None
        if self._build_root is not None:
            shutil.rmtree(self._build_root, ignore_errors=True)
            self._build_root = None
