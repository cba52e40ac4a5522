"""tracker node: stable person ids (ByteTrack motion, faces, body cue) and PersonEvents.

Inputs: `detections` (detector), `faces` (face_embedding: embeddings of some tracks) and
`known_people` (the fleet's enrolled people) and `person_forgotten` (whom the history forgot on
request; both transient local). Outputs: `tracks` (every person
with track and person id), `identified_faces` (each face with the person id it was resolved
to), `person_events` (PERSON_IN / PERSON_OUT / PERSON_RETURNED with a reason), an append-only
JSONL event log rotated daily, and the tracker state file (remembered people, id sequence).
Tracker time is camera time; the wall clock only notices that input stopped (input_timeout).
"""

import os
from pathlib import Path
import time
from types import SimpleNamespace
from typing import Callable

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.publisher import Publisher

from facetrack_ros.conversions import sec_to_time, time_to_ns, time_to_sec
from facetrack_ros.core.embedding import EmbeddingError, validate_embedding
from facetrack_ros.core.event_log import EventLog
from facetrack_ros.core.input_guard import InputMonitor, StampLimits, StampVerdict
from facetrack_ros.core.tracker_state import StateStore
from facetrack_ros.core.tracking import (Detection, EventReason, PersonEventRecord,
                                         PersonTracker, TrackerConfig, usable_box)
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.msg import (EmbeddingSync, KnownPeople, PersonDetection,
                               PersonDetectionArray, PersonEvent)
from facetrack_ros.parameters import (declare_parameters, FORGOTTEN_QOS, InvalidParameterError,
                                      KNOWN_PEOPLE_QOS, ParamSpec, RECORDED_QOS, RELIABLE_QOS)
from facetrack_ros.runner import run_node

#: The tracker state is saved this often [s] (and on shutdown, and before new ids go out).
STATE_SAVE_PERIOD_S = 10.0
#: What /diagnostics says while the disk refuses the tracker's writes.
DISK_TROUBLE = {
    'state': 'tracker state not saved: person ids handed out since may repeat after a restart',
    'event log': 'event log not written: events go out on person_events only'}

_DEFAULTS = TrackerConfig()
#: Tracker parameters that are TrackerConfig fields: (parameter, field, description, min, max).
#: Their defaults are TrackerConfig's, so the node, the benchmark and the tests share them.
_CONFIG_PARAMETERS = (
    ('frame_rate', 'frame_rate', 'Expected detection rate, to size ByteTrack buffers [Hz].',
     1.0, 240.0),
    ('track_high_thresh', 'track_high_thresh', 'ByteTrack first-association score [0..1].',
     0.0, 1.0),
    ('track_low_thresh', 'track_low_thresh', 'ByteTrack second-association score [0..1]; '
     'a box scoring this or less is in no track, only holds someone standing where they '
     'were.', 0.0, 1.0),
    ('new_track_thresh', 'new_track_thresh', 'Score needed to start a track [0..1].', 0.0, 1.0),
    ('match_thresh', 'match_thresh', 'ByteTrack matching cost limit [0..1].', 0.0, 1.0),
    ('track_buffer', 'track_buffer_s', 'How long ByteTrack keeps a lost track [s].', 0.1, 60.0),
    ('relink_distance', 'relink_distance',
     'A new track within this distance of where a present person whose track was lost was '
     'heading continues that person [person heights]; 0 disables.', 0.0, 10.0),
    ('identity_wait', 'identity_wait_s',
     'How long a new track waits for a face before PERSON_IN is decided [s].', 0.0, 30.0),
    ('identity_max_wait', 'identity_max_wait_s',
     'How long a track whose first face matched a remembered person waits for a confirming '
     'face [s].', 0.0, 60.0),
    ('absence_timeout', 'absence_timeout_s',
     'Unseen this long in processed frames (and evidence_frames frames), a person gets '
     'PERSON_OUT [s].', 0.1, 3600.0),
    ('evidence_frames', 'evidence_frames',
     'Processed frames in a row without a person needed for their PERSON_OUT.', 1, 100),
    ('reid_memory', 'reid_memory_s',
     'How long a person who left can be re-identified by face [s].', 0.0, 86400.0),
    ('min_similarity', 'min_similarity',
     'Face cosine similarity needed to re-identify a person [-1..1].', -1.0, 1.0),
    ('match_margin', 'match_margin',
     'How much a face must match its best person better than the next-best [cosine].',
     0.0, 1.0),
    ('contradiction_similarity', 'contradiction_similarity',
     'A good face contradicts its track\'s person (two such, or one strong, split the track) '
     'only below this similarity to them [cosine].', -1.0, 1.0),
    ('min_face_quality', 'min_face_quality',
     'Faces of lower quality never decide an identity [0..1].', 0.0, 1.0),
    ('strong_face_quality', 'strong_face_quality',
     'A face this good decides alone; poorer ones need a second, agreeing face [0..1].',
     0.0, 1.0),
    ('strong_match_quality', 'strong_match_quality',
     'A face this good re-identifies a known person alone (at most strong_face_quality) '
     '[0..1].', 0.0, 1.0),
    ('max_samples', 'max_samples', 'Faces kept in a person\'s running embedding.', 1, 1000),
)

PARAMETERS = (
    ParamSpec('robot_id', 'robot',
              'Robot name written into every event; person ids are <robot_id>-<number>.',
              read_only=True),
    ParamSpec('camera_id', 'camera', 'Camera name written into every event.', read_only=True),
    *(ParamSpec(name, getattr(_DEFAULTS, field), description, low, high, read_only=True)
      for name, field, description, low, high in _CONFIG_PARAMETERS),
    ParamSpec('input_timeout', 10.0,
              'No detections for this long (wall clock): appearances end (INPUT_STALLED) and '
              '/diagnostics warns [s].', 0.5, 3600.0, read_only=True),
    ParamSpec('reorder_window', 2.0,
              'Detections up to this much older than the latest frame still count as '
              'sightings; older ones are refused [s].', 0.0, 60.0, read_only=True),
    ParamSpec('max_stamp_skew', 5.0,
              'Detections stamped further ahead of the node clock are refused [s].',
              0.0, 3600.0, read_only=True),
    ParamSpec('max_stamp_age', 60.0,
              'Detections stamped further behind the node clock are refused (replays need '
              'use_sim_time) [s].', 1.0, 86400.0, read_only=True),
    ParamSpec('event_log_dir', '~/.ros/facetrack/events',
              'Folder of the daily JSONL event logs ("" disables the log).', read_only=True),
    ParamSpec('state_file', 'tracker_state.json',
              'Tracker state (remembered people, id sequence), relative to event_log_dir '
              'unless absolute; "" keeps nothing across restarts.', read_only=True),
)


def tracker_config(p: SimpleNamespace) -> TrackerConfig:
    """Return the TrackerConfig of the tracker parameters p, refusing inconsistent ones."""
    config = TrackerConfig(**{field: getattr(p, name)
                              for name, field, *_ in _CONFIG_PARAMETERS})
    try:
        config.validate()
    except ValueError as error:
        raise InvalidParameterError(str(error)) from error
    return config


def event_message(record: PersonEventRecord, robot_id: str, camera_id: str,
                  frame_id: str) -> PersonEvent:
    """Return the PersonEvent of a core event record, stamped at the record's frame."""
    msg = PersonEvent(kind=int(record.kind), reason=int(record.reason),
                      person_id=record.person_id, track_id=record.track_id, robot_id=robot_id,
                      camera_id=camera_id, box=record.box.tolist(),
                      confidence=float(record.confidence), duration=float(record.duration))
    msg.header.stamp = sec_to_time(record.stamp)
    msg.header.frame_id = frame_id
    if record.embedding is not None:
        msg.embedding = record.embedding.tolist()
    return msg


def state_store(p: SimpleNamespace) -> StateStore:
    """Return the tracker state file of parameters p (relative paths: in event_log_dir)."""
    log_dir = Path(os.path.expanduser(p.event_log_dir)) if p.event_log_dir else None
    path = Path(os.path.expanduser(p.state_file)) if p.state_file else None
    if path is not None and not path.is_absolute():
        path = log_dir / path if log_dir is not None else None
    return StateStore(path, log_dir)


class TrackerNode(Node):
    """Thin adapter over core.tracking.PersonTracker."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, restore the tracker's state, open the event log."""
        super().__init__('tracker', **kwargs)
        p = self.params = declare_parameters(self, PARAMETERS)
        self.config = tracker_config(p)
        self.tracker = PersonTracker(self.config, id_prefix=p.robot_id)
        self.state = state_store(p)
        self.disk_trouble: dict[str, str] = {}   # what the disk refused -> why, until written
        # First: it creates the folder with mode 0700.
        restored, note = self.state.restore(self.tracker, p.robot_id)
        (self.get_logger().error if self.state.damaged_copy else self.get_logger().info)(note)
        self.event_log = EventLog(os.path.expanduser(p.event_log_dir)) if p.event_log_dir else None
        self.tracks_pub = self.create_publisher(PersonDetectionArray, 'tracks', RELIABLE_QOS)
        self.faces_pub, self.events_pub = self._kept_publishers()
        self.diagnostics = NodeDiagnostics(self)
        guarded = self.diagnostics.guarded
        self.create_subscription(PersonDetectionArray, 'detections',
                                 guarded(self.on_detections), RELIABLE_QOS)
        self.create_subscription(PersonDetectionArray, 'faces', guarded(self.on_faces),
                                 RELIABLE_QOS)
        self.create_subscription(KnownPeople, 'known_people', guarded(self.on_known_people),
                                 KNOWN_PEOPLE_QOS)
        self.create_subscription(EmbeddingSync, 'person_forgotten', guarded(self.on_forgotten),
                                 FORGOTTEN_QOS)
        self.frame_id = ''
        # /diagnostics stays WARN for 10 s after a refused stamp.
        self.input = InputMonitor(
            StampLimits(p.reorder_window, p.max_stamp_skew, p.max_stamp_age), p.input_timeout,
            time.monotonic())
        self.saved_at = time.monotonic()
        # The wall clock, also under use_sim_time: it notices that input stopped.
        self.create_timer(0.5, guarded(self.on_watchdog),
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._save_state()   # the reservation first, and the file made at once
        self._emit(restored)
        self._update_diagnostics()

    def on_detections(self, msg: PersonDetectionArray) -> None:
        """Track one frame's persons; publish tracks and any events."""
        stamp = time_to_sec(msg.header.stamp)
        verdict = self.input.judge(stamp, self.tracker.now, self._clock_seconds(),
                                   time.monotonic())
        if verdict.refused:
            self.diagnostics.dropped += 1
            self.get_logger().warning(
                f'{self.input.refusal}: check the clocks, or replay with use_sim_time and /clock',
                throttle_duration_sec=5.0)
            self._update_diagnostics()
            return
        if self.input.stall.arrived(time.monotonic()):
            self.get_logger().info('input resumed')
        if verdict is StampVerdict.TIME_JUMP:
            self.get_logger().warning(
                f'time jumped back {self.tracker.now - stamp:.1f} s with the node clock '
                '(replay loop or sim-time reset): tracking restarts; known faces are kept')
            self._emit(self.tracker.reset(stamp))
        self.frame_id = msg.header.frame_id
        size = (msg.image_width, msg.image_height)
        persons, events = self.tracker.update(stamp, self._detections(msg),
                                              size if all(size) else None)
        out = PersonDetectionArray(header=msg.header, image_width=msg.image_width,
                                   image_height=msg.image_height)
        out.detections = [PersonDetection(
            box=p.box.tolist(), confidence=float(p.confidence), track_id=p.track_id,
            person_id=p.person_id, match_similarity=float(p.match_similarity))
            for p in persons]
        self.tracks_pub.publish(out)
        self._emit(events)
        self._publish_identified()  # faces of tracks whose identity this frame decided
        self.diagnostics.processed(time.time() - stamp)
        self._update_diagnostics()

    def _detections(self, msg: PersonDetectionArray) -> list[Detection]:
        """Return the usable detections of msg; malformed ones are counted and skipped."""
        detections = []
        for d in msg.detections:
            box = np.asarray(d.box, dtype=np.float32)
            appearance = np.asarray(d.appearance, np.float32) if len(d.appearance) else None
            if not (usable_box(box) and np.isfinite(d.confidence)
                    and (appearance is None or np.all(np.isfinite(appearance)))):
                self.diagnostics.errors += 1
                self.get_logger().warning(f'malformed detection skipped: box {box.tolist()}, '
                                          f'confidence {d.confidence}',
                                          throttle_duration_sec=5.0)
                continue
            detections.append(Detection(box, d.confidence, appearance))
        return detections

    def on_faces(self, msg: PersonDetectionArray) -> None:
        """Fold face embeddings into the tracks' identities; republish them identified."""
        stamp = time_to_sec(msg.header.stamp)
        for face in msg.detections:
            if not face.has_face:
                continue
            try:
                face_box = np.asarray(face.face_box)
                self._emit(self.tracker.add_face(stamp, face.track_id, np.asarray(face.embedding),
                                                 face.face_quality, tag=(msg, face),
                                                 face_box=face_box if face_box.any() else None))
            except ValueError as error:  # EmbeddingError, a bad quality or face box
                self.diagnostics.errors += 1
                self.get_logger().warning(f'face of track {face.track_id} ignored: {error}')
        self._publish_identified()

    def _publish_identified(self) -> None:
        """Publish the faces the tracker counted for a person, with that person's id.

        A face of a track whose identity is still pending goes out once it is decided (in a
        later frame, under its own frame's header); faces that decided nothing do not.
        """
        frames: dict[int, PersonDetectionArray] = {}
        for (msg, face), person_id in self.tracker.take_attributions():
            face.person_id = person_id
            frames.setdefault(id(msg), PersonDetectionArray(
                header=msg.header, image_width=msg.image_width,
                image_height=msg.image_height)).detections.append(face)
        for identified in frames.values():
            self.faces_pub.publish(identified)

    def on_known_people(self, msg: KnownPeople) -> None:
        """Take the fleet's enrolled people as the tracker's gallery of names."""
        people = {}
        for entry in msg.people:
            if entry.action != EmbeddingSync.ACTION_ENROLL or not entry.person_id:
                continue
            try:
                people[entry.person_id] = validate_embedding(entry.embedding,
                                                             self.config.embedding_dim)
            except EmbeddingError as error:  # a bad entry is skipped, the others still count
                self.diagnostics.errors += 1
                self.get_logger().warning(f'enrolled person {entry.person_id!r} ignored: '
                                          f'{error}')
        self._emit(self.tracker.set_known_people(people))
        self.diagnostics.values['enrolled people'] = str(len(people))

    def on_forgotten(self, msg: EmbeddingSync) -> None:
        """Forget whom the history forgot (forget_person), so their face is not re-learned."""
        if msg.action != EmbeddingSync.ACTION_WITHDRAW:
            return
        try:
            forgotten, events = self.tracker.forget(msg.person_id, np.asarray(msg.embedding),
                                                    time_to_ns(msg.header.stamp))
        except EmbeddingError as error:
            self.diagnostics.errors += 1
            self.get_logger().warning(f'person_forgotten ignored: {error}')
            return
        if forgotten:
            # DDS keeps the last identified_faces and person_events for late joiners, theirs
            # too: new publishers keep nothing (late joiners miss the others' last ones, once).
            self.destroy_publisher(self.faces_pub)
            self.destroy_publisher(self.events_pub)
            self.faces_pub, self.events_pub = self._kept_publishers()
        self._emit(events)   # saves the state first: the file must not keep their faces
        # How many, never whom: the log must not keep what was forgotten.
        self.get_logger().info(f'forgot {len(forgotten)} person(s) at the history\'s request')

    def _kept_publishers(self) -> tuple[Publisher, Publisher]:
        """Create the identified_faces and person_events publishers (transient local)."""
        return (self.create_publisher(PersonDetectionArray, 'identified_faces', RECORDED_QOS),
                self.create_publisher(PersonEvent, 'person_events', RECORDED_QOS))

    def on_watchdog(self) -> None:
        """End appearances when input stalled; save the state now and then."""
        now = time.monotonic()
        if self.input.stall.check(now):
            self.get_logger().warning(self.input.warning(now))
            self._emit(self.tracker.end_appearances(EventReason.INPUT_STALLED))
        if now - self.saved_at >= STATE_SAVE_PERIOD_S:
            self._save_state()
        self._update_diagnostics()

    def _clock_seconds(self) -> float | None:
        """Return the node clock [s] (sim time under use_sim_time), None while it is unset."""
        nanoseconds = self.get_clock().now().nanoseconds
        return nanoseconds / 1e9 if nanoseconds > 0 else None

    def _update_diagnostics(self) -> None:
        now = time.monotonic()
        values = self.diagnostics.values
        values['active persons'] = str(self.tracker.active_count)
        values['input idle [s]'] = f'{self.input.stall.idle(now):.1f}'
        self.diagnostics.show(list(self.disk_trouble.values()), 'tracking',
                              self.input.warning(now))

    def _save_state(self) -> None:
        """Save the tracker's state; a disk that refuses is shown, tracking goes on."""
        self.saved_at = time.monotonic()
        self._on_disk('state', self.state.save, self.tracker)

    def _on_disk(self, what: str, write: Callable, *args) -> None:
        """Run write(*args); show an OSError on /diagnostics until the next write succeeds.

        The events still go out on person_events: a full or failing disk must not cost the
        robot its events. Unsaved state means ids reserved since could repeat after a restart.
        """
        try:
            write(*args)
        except OSError as error:
            self.disk_trouble[what] = f'{DISK_TROUBLE[what]} ({error})'
            self.get_logger().error(self.disk_trouble[what], throttle_duration_sec=10.0)
            self.diagnostics.errors += 1
            return
        if self.disk_trouble.pop(what, None):
            self.get_logger().info(f'{DISK_TROUBLE[what]}: written again')

    def _emit(self, events: list[PersonEventRecord]) -> None:
        if self.tracker.save_due:  # new ids were reserved: on disk before anyone sees them
            self._save_state()
        for record in events:
            self.events_pub.publish(event_message(record, self.params.robot_id,
                                                  self.params.camera_id, self.frame_id))
            if self.event_log is not None:
                self._on_disk('event log', self.event_log.append, {
                    **record.to_json_dict(), 'robot_id': self.params.robot_id,
                    'camera_id': self.params.camera_id})
            self.get_logger().info(
                f'{record.kind.name} {record.person_id} (track {record.track_id}, '
                f'{record.reason.name})'
                + (f' after {record.duration:.1f} s' if record.duration else ''))

    def destroy_node(self) -> None:
        """End the appearances (SHUTDOWN), save the state and close the event log."""
        self._emit(self.tracker.end_appearances(EventReason.SHUTDOWN))
        self._save_state()
        self.state.close()
        if self.event_log is not None:
            self.event_log.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the tracker node."""
    return run_node(TrackerNode, args)
