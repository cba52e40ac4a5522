"""frame_history's inputs: each message checked, then stored, skipped or refused, and counted.

Frames (raw or compressed), identified faces and person events each pass the core's checks
(core/history/inputs.py) and a bound on how far their stamp may be from the node's clock, then
go to the HistoryRecorder. Every message ends in exactly one count of the node's Tally, so
/diagnostics accounts for each; a refusal goes to the node's refuse(), which counts and logs
it.
"""

from types import SimpleNamespace
from typing import Callable

from sensor_msgs.msg import CompressedImage, Image

from facetrack_ros.conversions import bgr_to_compressed, image_to_bgr, ImageConversionError
from facetrack_ros.core.embedding import DLIB_EMBEDDING_DIM
from facetrack_ros.core.history.inputs import (check_compressed, check_event, check_faces,
                                               check_raw_header, InputRefused, stamp_problem)
from facetrack_ros.core.history.tally import Tally
from facetrack_ros.history_messages import HistoryRecorder
from facetrack_ros.msg import PersonDetectionArray, PersonEvent


class HistoryIntake:
    """Checks and stores frame_history's inputs into a HistoryRecorder, counting each.

    settings holds the node's live parameters store_rate [Hz], jpeg_quality and
    max_stamp_skew [s]; refuse(what, reason, number) counts and logs number refusals.
    """

    def __init__(self, recorder: HistoryRecorder, tally: Tally, settings: SimpleNamespace,
                 refuse: Callable[..., None]) -> None:
        """Store through recorder, count in tally; settings and refuse as the class says."""
        self.recorder = recorder
        self.tally = tally
        self.settings = settings
        self.refuse = refuse
        self.last_stored_ns = 0   # the stamp of the last frame stored [ns]

    def image(self, msg: Image, now_ns: int) -> bool:
        """JPEG-encode and store a raw frame when store_rate lets it; return whether stored."""
        try:
            stamp_ns = self._checked_time(check_raw_header(msg), now_ns)
            if not self._due(stamp_ns):
                self.tally.count('image_raw', 'skipped')
                return False
            image = image_to_bgr(msg)
        except (InputRefused, ImageConversionError) as error:
            self.refuse('image_raw', error)
            return False
        self._store_frame('image_raw', bgr_to_compressed(image, msg.header,
                                                         self.settings.jpeg_quality), stamp_ns)
        return True

    def compressed(self, msg: CompressedImage, now_ns: int) -> bool:
        """Store a compressed frame as it is when store_rate lets it; return whether stored."""
        what = 'image_raw/compressed'
        try:
            stamp_ns = self._checked_time(check_compressed(msg), now_ns)
        except InputRefused as error:
            self.refuse(what, error)
            return False
        if not self._due(stamp_ns):
            self.tally.count(what, 'skipped')
            return False
        self._store_frame(what, msg, stamp_ns)
        return True

    def faces(self, msg: PersonDetectionArray, published_ns: int, now_ns: int) -> None:
        """Record identified faces, every field checked: segment and embedding index.

        published_ns: when the tracker published msg [ns, wall time; 0 unknown].
        """
        if self._stored_before('identified_faces', published_ns):
            return
        try:
            stamp_ns, kept, refused = check_faces(msg, DLIB_EMBEDDING_DIM)
            self._checked_time(stamp_ns, now_ns)
            if refused and not kept:
                raise InputRefused(f'every detection: {refused[0]}')
        except InputRefused as error:
            self.refuse('identified_faces', error)
            return
        if refused:
            self.refuse('detections', f'{len(refused)} of {len(msg.detections)}: {refused[0]}',
                        len(refused))
            msg.detections = kept
        self.recorder.faces(msg, stamp_ns)
        self.tally.count('identified_faces', 'stored')

    def event(self, msg: PersonEvent, published_ns: int, now_ns: int) -> None:
        """Record a person event, every field checked, in the segment without its embedding.

        The history keeps a person's faces in identified_faces; an event needs none.
        """
        if self._stored_before('person_events', published_ns):
            return
        try:
            stamp_ns = self._checked_time(check_event(msg, DLIB_EMBEDDING_DIM), now_ns)
        except InputRefused as error:
            self.refuse('person_events', error)
            return
        self.recorder.event(msg, stamp_ns)
        self.tally.count('person_events', 'stored')

    def _checked_time(self, stamp_ns: int, now_ns: int) -> int:
        """Return stamp_ns, or raise InputRefused when it is far from now_ns."""
        problem = stamp_problem(stamp_ns, now_ns, self.settings.max_stamp_skew)
        if problem:
            raise InputRefused(problem)
        return stamp_ns

    def _due(self, stamp_ns: int) -> bool:
        """Return whether a frame at stamp_ns should be stored under store_rate.

        A stamp before the last stored one (a replay looped, the clock was reset) is due.
        """
        since = stamp_ns - self.last_stored_ns
        return since < 0 or since >= 1e9 / self.settings.store_rate

    def _store_frame(self, what: str, msg: CompressedImage, stamp_ns: int) -> None:
        self.recorder.frame(msg, stamp_ns)
        self.last_stored_ns = stamp_ns
        self.tally.count(what, 'stored')

    def _stored_before(self, what: str, published_ns: int) -> bool:
        """Return (and count) whether a message the tracker sent again is stored already."""
        if self.recorder.stored_before(published_ns):
            self.tally.count(what, 'stored before')
            return True
        return False
