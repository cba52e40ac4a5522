"""In-memory ring of the most recent JPEG frames, bounded by a byte budget."""

from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass, field

#: Bytes charged per frame on top of its JPEG for the bookkeeping around it (estimate).
FRAME_OVERHEAD_BYTES = 256


@dataclass(frozen=True)
class StoredFrame:
    """One stored compressed frame of one camera."""

    stamp_ns: int          # capture stamp (header stamp) [ns]
    camera_id: str         # camera (segment source) that took it
    data: bytes = field(repr=False)   # the compressed image, JPEG unless format says otherwise
    frame_id: str = ''     # header frame_id of the image
    format: str = 'jpeg'   # sensor_msgs/CompressedImage format


class FrameRing:
    """The newest frames of all cameras, oldest dropped first once max_bytes is exceeded.

    FrameStore answers frame lookups from it for the span covered_from() reports, by stamps()
    and get(); older frames come from the segments.
    """

    def __init__(self, max_bytes: int) -> None:
        """Create an empty ring that holds at most max_bytes of frames (JPEG + overhead)."""
        if max_bytes <= 0:
            raise ValueError('FrameRing max_bytes must be positive')
        self.max_bytes = max_bytes
        self._bytes = 0
        self._order: deque[tuple[str, int]] = deque()   # insertion order, for eviction
        self._frames: dict[str, dict[int, StoredFrame]] = {}
        self._stamps: dict[str, list[int]] = {}          # per camera, sorted
        # Per camera, the stamp from which the ring holds every frame it was given.
        self._covered_from: dict[str, int] = {}

    def __len__(self) -> int:
        """Return the number of frames held."""
        return len(self._order)

    @property
    def bytes_used(self) -> int:
        """Return the bytes charged against the budget."""
        return self._bytes

    @property
    def cameras(self) -> list[str]:
        """Return the cameras with frames in the ring."""
        return sorted(camera for camera, stamps in self._stamps.items() if stamps)

    def add(self, stamp_ns: int, camera_id: str, jpeg: bytes, frame_id: str = '') -> bool:
        """Keep a frame, evicting the oldest ones; False if it alone exceeds the budget."""
        cost = len(jpeg) + FRAME_OVERHEAD_BYTES
        if cost > self.max_bytes:
            return False
        frames = self._frames.setdefault(camera_id, {})
        stamps = self._stamps.setdefault(camera_id, [])
        self._covered_from.setdefault(camera_id, stamp_ns)
        old = frames.get(stamp_ns)
        if old is not None:   # same camera and stamp: the newer frame replaces it in place
            self._bytes -= len(old.data) + FRAME_OVERHEAD_BYTES
        else:
            insort(stamps, stamp_ns)
            self._order.append((camera_id, stamp_ns))
        frames[stamp_ns] = StoredFrame(stamp_ns, camera_id, bytes(jpeg), frame_id)
        self._bytes += cost
        while self._bytes > self.max_bytes:
            self._evict_oldest()
        return True

    def _evict_oldest(self) -> None:
        camera_id, stamp_ns = self._order.popleft()
        frame = self._frames[camera_id].pop(stamp_ns)
        stamps = self._stamps[camera_id]
        del stamps[bisect_left(stamps, stamp_ns)]
        self._bytes -= len(frame.data) + FRAME_OVERHEAD_BYTES
        self._covered_from[camera_id] = max(self._covered_from[camera_id], stamp_ns + 1)

    def drop_before(self, stamp_ns: int) -> None:
        """Forget every frame stamped before stamp_ns (retention)."""
        for camera_id, stamp in [item for item in self._order if item[1] < stamp_ns]:
            frame = self._frames[camera_id].pop(stamp)
            self._bytes -= len(frame.data) + FRAME_OVERHEAD_BYTES
        self._order = deque(item for item in self._order if item[1] >= stamp_ns)
        for camera_id, stamps in self._stamps.items():
            del stamps[:bisect_left(stamps, stamp_ns)]
            self._covered_from[camera_id] = max(self._covered_from[camera_id], stamp_ns)

    def covered_from(self, camera_id: str) -> int | None:
        """Return the stamp from which the ring holds every frame of camera_id it was given.

        None when the camera never gave the ring a frame. Older frames must come from disk.
        """
        return self._covered_from.get(camera_id)

    def get(self, camera_id: str, stamp_ns: int) -> StoredFrame | None:
        """Return the frame of camera_id with exactly stamp_ns, if held."""
        return self._frames.get(camera_id, {}).get(stamp_ns)

    def replace(self, camera_id: str, stamp_ns: int, data: bytes) -> bool:
        """Replace the image of a held frame (same stamp, place and age); False if not held.

        The budget is not enforced again: a blurred frame is about as large as the original.
        """
        frame = self._frames.get(camera_id, {}).get(stamp_ns)
        if frame is None:
            return False
        self._bytes += len(data) - len(frame.data)
        self._frames[camera_id][stamp_ns] = StoredFrame(stamp_ns, camera_id, bytes(data),
                                                        frame.frame_id, frame.format)
        return True

    def stamps(self, camera_id: str, start_ns: int, end_ns: int) -> list[int]:
        """Return the stamps held for camera_id in [start_ns, end_ns], ascending."""
        stamps = self._stamps.get(camera_id, [])
        return stamps[bisect_left(stamps, start_ns):bisect_right(stamps, end_ns)]
