"""Motion-JPEG files of grey frames, some broken as a failing camera or disk breaks them."""

from pathlib import Path
from typing import Collection, Sequence

import cv2
import numpy as np


def write_grey_motion_jpeg(path: Path, levels: Sequence[int], size: tuple[int, int],
                           not_jpeg: Collection[int] = (),
                           undecodable: Collection[int] = ()) -> None:
    """Write one grey frame per level (width, height in size) as an MJPG AVI at 20 fps.

    The frames in not_jpeg lose their start-of-image marker; those in undecodable keep their
    size header but lose every byte after it (tables and image data).
    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 20.0, size)
    for level in levels:
        writer.write(np.full((size[1], size[0], 3), level, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b'\xff\xd8\xff']
    assert len(starts) == len(levels), 'one JPEG a frame'
    starts.append(len(data))
    for index in not_jpeg:
        data[starts[index]:starts[index] + 2] = b'\0\0'
    for index in undecodable:
        sof = data.index(b'\xff\xc0', starts[index])
        tables = sof + 2 + int.from_bytes(data[sof + 2:sof + 4], 'big')
        end = starts[index + 1] - 16   # short of the next frame's AVI chunk header
        data[tables:end] = bytes(end - tables)
    path.write_bytes(data)
