"""One camera's person pipeline in one loop, without ROS: detect, track, embed faces.

The node graph runs these steps in the detector, tracker and face_embedding nodes; this
facade runs the same core objects, with the same settings, where a graph is not wanted: the
offline indexing of recordings (index_bag) and the benchmark's core loop (bench_pipeline).
"""

from dataclasses import dataclass, field
import time

from facetrack_ros.core.camera import Frame
from facetrack_ros.core.detection import body_appearance, PersonDetector, scale_boxes
from facetrack_ros.core.embedding_scheduler import embed_scheduled, EmbeddingScheduler
from facetrack_ros.core.face import Face, FaceAnalyzer
from facetrack_ros.core.tracking import (Detection, EventReason, PersonEventRecord,
                                         PersonTracker, TrackedPerson)

#: The stages of PipelineFrame.seconds, in the order they run.
STAGES = ('reduction', 'detection', 'appearance', 'tracking', 'face')


@dataclass
class FaceSighting:
    """A face embedded for a track in one frame: the face node's output for one person.

    stamp: the frame's time [s]; person: the track as the tracker gave it to the face step.
    """

    stamp: float
    person: TrackedPerson
    face: Face


@dataclass
class PipelineFrame:
    """What one frame gave.

    persons: every track seen in the frame; events: PersonEvents it caused; identified:
    faces counted for a person, with that person's id: this frame's, or faces of earlier
    frames whose track's identity this frame decided (their own stamp is in the sighting);
    faces_tried: tracks the face step looked at; seconds: time of each STAGES step [s].
    """

    persons: list[TrackedPerson]
    events: list[PersonEventRecord]
    identified: list[tuple[FaceSighting, str]]
    faces_tried: int
    seconds: dict[str, float] = field(default_factory=dict)


class PersonPipeline:
    """Detector, tracker and face scheduler of one camera, run frame by frame."""

    def __init__(self, detector: PersonDetector, analyzer: FaceAnalyzer,
                 tracker: PersonTracker, scheduler: EmbeddingScheduler, *, detect_size: int,
                 appearance: bool) -> None:
        """Use these core objects (built from the nodes' parameters by the caller).

        detect_size: longest side [px] of the copy the detector reads, as the camera node's
        `detect_size` (0: the full frame); appearance: give each box its body descriptor, as
        the detector node's `appearance`.
        """
        self.detector = detector
        self.analyzer = analyzer
        self.tracker = tracker
        self.scheduler = scheduler
        self.detect_size = detect_size
        self.appearance = appearance

    def process(self, frame: Frame, stamp: float) -> PipelineFrame:
        """Run one frame captured at stamp [s] (camera time) through every step.

        As in the node graph, the detector and the body cue read the frame reduced to
        detect_size (a Motion-JPEG frame is decoded straight at that size), boxes are given in
        the full frame's pixels, and faces are searched at full resolution: a JPEG frame is
        decoded in full only when a track is due a face.
        """
        start = time.perf_counter()
        small = frame.reduced(self.detect_size)
        reduced = time.perf_counter()
        boxes = self.detector.detect(small)
        detected = time.perf_counter()
        full_boxes = scale_boxes(boxes, (small.shape[1], small.shape[0]),
                                 (frame.width, frame.height))
        detections = [Detection(full.box, full.confidence,
                                body_appearance(small, box.box) if self.appearance else None)
                      for box, full in zip(boxes, full_boxes)]
        described = time.perf_counter()
        persons, events = self.tracker.update(stamp, detections, (frame.width, frame.height))
        tracked = time.perf_counter()
        by_track = {person.track_id: person for person in persons}
        tried = self.scheduler.select(stamp, persons)
        for track_id in tried:
            person = by_track[track_id]
            face = embed_scheduled(self.scheduler, self.analyzer, frame.image, track_id, stamp,
                                   person.box, [other.box for other in persons
                                                if other is not person])
            if face is not None:
                events += self.tracker.add_face(stamp, track_id, face.embedding, face.quality,
                                                tag=FaceSighting(stamp, person, face),
                                                face_box=face.box)
        done = time.perf_counter()
        return PipelineFrame(persons, events, self.tracker.take_attributions(), len(tried),
                             dict(zip(STAGES, (reduced - start, detected - reduced,
                                               described - detected,
                                               tracked - described, done - tracked))))

    def finish(self) -> list[PersonEventRecord]:
        """End every appearance at the last frame; return the PERSON_OUTs.

        The input is over: INPUT_STALLED, as the tracker node says when a recording ends.
        """
        return self.tracker.end_appearances(EventReason.INPUT_STALLED)
