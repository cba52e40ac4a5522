"""tracker node: stable person ids (ByteTrack motion plus face appearance) and PersonEvents.

Inputs: `detections` (detector) and `faces` (face_embedding: embeddings of some tracks).
Outputs: `tracks` (every person with track and person id), `identified_faces` (each face with
the person id it was resolved to), `person_events` (PERSON_IN / PERSON_OUT / PERSON_RETURNED),
and an append-only JSONL event log rotated daily.
"""

import os
import time
from types import SimpleNamespace

from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
from rclpy.node import Node

from facetrack_ros.conversions import sec_to_time, time_to_sec
from facetrack_ros.core.embedding import DEFAULT_MIN_SIMILARITY
from facetrack_ros.core.event_log import EventLog
from facetrack_ros.core.tracking import (Detection, PersonEventRecord, PersonTracker,
                                         TrackerConfig)
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.msg import PersonDetection, PersonDetectionArray, PersonEvent
from facetrack_ros.parameters import (declare_parameters, InvalidParameterError, ParamSpec,
                                      RELIABLE_QOS)
from facetrack_ros.runner import run_node

#: Detections older than tracker time by at most this are late and skipped; a larger jump back
#: (a rosbag loop, a sim-time reset) restarts tracking [s].
MAX_REORDER_S = 2.0

PARAMETERS = (
    ParamSpec('robot_id', 'robot', 'Robot name written into every event.', read_only=True),
    ParamSpec('camera_id', 'camera', 'Camera name written into every event.', read_only=True),
    ParamSpec('frame_rate', 30.0, 'Expected detection rate, to size ByteTrack buffers [Hz].',
              1.0, 240.0, read_only=True),
    ParamSpec('track_high_thresh', 0.5, 'ByteTrack first-association score [0..1].', 0.0, 1.0,
              read_only=True),
    ParamSpec('track_low_thresh', 0.1, 'ByteTrack second-association score [0..1].', 0.0, 1.0,
              read_only=True),
    ParamSpec('new_track_thresh', 0.6, 'Score needed to start a track [0..1].', 0.0, 1.0,
              read_only=True),
    ParamSpec('match_thresh', 0.8, 'ByteTrack matching cost limit [0..1].', 0.0, 1.0,
              read_only=True),
    ParamSpec('track_buffer', 2.0, 'How long ByteTrack keeps a lost track [s].', 0.1, 60.0,
              read_only=True),
    ParamSpec('relink_distance', 1.0,
              'A new track within this distance of where a present person whose track was lost '
              'was heading continues that person [person heights]; 0 disables.', 0.0, 10.0,
              read_only=True),
    ParamSpec('identity_wait', 1.0,
              'How long a new track waits for a face before PERSON_IN is decided [s].',
              0.0, 30.0, read_only=True),
    ParamSpec('absence_timeout', 2.0, 'Unseen this long, a person gets PERSON_OUT [s].',
              0.1, 3600.0, read_only=True),
    ParamSpec('reid_memory', 600.0,
              'How long a person who left can be re-identified by face [s].', 0.0, 86400.0,
              read_only=True),
    ParamSpec('min_similarity', DEFAULT_MIN_SIMILARITY,
              'Face cosine similarity needed to re-identify a person [-1..1].', -1.0, 1.0,
              read_only=True),
    ParamSpec('max_samples', 20, 'Faces kept in a person\'s running embedding.', 1, 1000,
              read_only=True),
    ParamSpec('event_log_dir', '~/.ros/facetrack/events',
              'Folder of the daily JSONL event logs ("" disables the log).', read_only=True),
)


def tracker_config(p: SimpleNamespace) -> TrackerConfig:
    """Return the TrackerConfig of the tracker parameters p, refusing inconsistent ones."""
    config = TrackerConfig(
        frame_rate=p.frame_rate, track_high_thresh=p.track_high_thresh,
        track_low_thresh=p.track_low_thresh, new_track_thresh=p.new_track_thresh,
        match_thresh=p.match_thresh, track_buffer_s=p.track_buffer,
        relink_distance=p.relink_distance,
        identity_wait_s=p.identity_wait, absence_timeout_s=p.absence_timeout,
        reid_memory_s=p.reid_memory, min_similarity=p.min_similarity,
        max_samples=p.max_samples)
    try:
        config.validate()
    except ValueError as error:
        raise InvalidParameterError(str(error)) from error
    return config


class TrackerNode(Node):
    """Thin adapter over core.tracking.PersonTracker."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, build the tracker, open the event log."""
        super().__init__('tracker', **kwargs)
        p = self.params = declare_parameters(self, PARAMETERS)
        self.tracker = PersonTracker(tracker_config(p))
        self.event_log = EventLog(os.path.expanduser(p.event_log_dir)) if p.event_log_dir else None
        self.tracks_pub = self.create_publisher(PersonDetectionArray, 'tracks', RELIABLE_QOS)
        self.faces_pub = self.create_publisher(
            PersonDetectionArray, 'identified_faces', RELIABLE_QOS)
        self.events_pub = self.create_publisher(PersonEvent, 'person_events', RELIABLE_QOS)
        self.diagnostics = NodeDiagnostics(self)
        guarded = self.diagnostics.guarded
        self.create_subscription(PersonDetectionArray, 'detections',
                                 guarded(self.on_detections), RELIABLE_QOS)
        self.create_subscription(PersonDetectionArray, 'faces', guarded(self.on_faces),
                                 RELIABLE_QOS)
        self.diagnostics.set_state(DiagnosticStatus.OK, 'tracking')
        self.frame_id = ''
        # Camera time of the last detections and the wall time they arrived: when detections
        # stop (camera gone), time still advances so that absent people get PERSON_OUT.
        # `clock` is the latest time given to the tracker, which never goes back.
        self.clock: float | None = None
        self.last_stamp: float | None = None
        self.last_arrival = 0.0
        self.create_timer(0.5, guarded(self.on_idle))

    def on_detections(self, msg: PersonDetectionArray) -> None:
        """Track one frame's persons; publish tracks and any events."""
        stamp = time_to_sec(msg.header.stamp)
        if self.clock is not None and stamp < self.clock:
            if self.clock - stamp <= MAX_REORDER_S:
                self.diagnostics.dropped += 1  # out of order: tracking has moved past it
                return
            self.get_logger().warning(
                f'time jumped back {self.clock - stamp:.1f} s (replay loop or clock reset): '
                'tracking restarts; known faces are kept')
            self._emit(self.tracker.reset(stamp))
        self.frame_id = msg.header.frame_id
        self.clock = self.last_stamp = stamp
        self.last_arrival = time.monotonic()
        detections = [Detection(box=np.asarray(d.box, dtype=np.float32),
                                confidence=d.confidence) for d in msg.detections]
        persons, events = self.tracker.update(stamp, detections)
        out = PersonDetectionArray(header=msg.header, image_width=msg.image_width,
                                   image_height=msg.image_height)
        out.detections = [PersonDetection(
            box=p.box.tolist(), confidence=float(p.confidence), track_id=p.track_id,
            person_id=p.person_id, match_similarity=float(p.match_similarity))
            for p in persons]
        self.tracks_pub.publish(out)
        self._emit(events)
        self.diagnostics.values['active persons'] = str(self.tracker.active_count)
        self.diagnostics.processed(time.time() - stamp)

    def on_faces(self, msg: PersonDetectionArray) -> None:
        """Fold face embeddings into the tracks' identities; republish them identified."""
        stamp = time_to_sec(msg.header.stamp)
        identified = PersonDetectionArray(header=msg.header, image_width=msg.image_width,
                                          image_height=msg.image_height)
        for face in msg.detections:
            if not face.has_face:
                continue
            try:
                self._emit(self.tracker.add_face(
                    stamp, face.track_id, np.asarray(face.embedding), face.face_quality))
            except ValueError as error:  # EmbeddingError, or a quality outside [0, 1]
                self.diagnostics.errors += 1
                self.get_logger().warning(f'face of track {face.track_id} ignored: {error}')
                continue
            face.person_id = self.tracker.person_of_track(face.track_id) or ''
            identified.detections.append(face)
        if identified.detections:
            self.faces_pub.publish(identified)

    def on_idle(self) -> None:
        """Advance tracker time while no detections arrive, so absences are noticed."""
        if self.last_stamp is None:
            return
        idle = time.monotonic() - self.last_arrival
        if idle > 1.0:
            self.clock = max(self.clock, self.last_stamp + idle)
            _, events = self.tracker.update(self.clock, [])
            self._emit(events)

    def _emit(self, events: list[PersonEventRecord]) -> None:
        for record in events:
            msg = PersonEvent(kind=int(record.kind), person_id=record.person_id,
                              track_id=record.track_id, robot_id=self.params.robot_id,
                              camera_id=self.params.camera_id, box=record.box.tolist(),
                              confidence=float(record.confidence),
                              duration=float(record.duration))
            msg.header.stamp = sec_to_time(record.stamp)
            msg.header.frame_id = self.frame_id
            if record.embedding is not None:
                msg.embedding = record.embedding.tolist()
            self.events_pub.publish(msg)
            if self.event_log is not None:
                self.event_log.append({**record.to_json_dict(),
                                       'robot_id': self.params.robot_id,
                                       'camera_id': self.params.camera_id})
            self.get_logger().info(
                f'{record.kind.name} {record.person_id} (track {record.track_id})'
                + (f' after {record.duration:.1f} s' if record.duration else ''))

    def destroy_node(self) -> None:
        """Close the event log."""
        if self.event_log is not None:
            self.event_log.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the tracker node."""
    return run_node(TrackerNode, args)
