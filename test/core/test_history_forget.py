"""Forgetting one person: index, stored messages, frames (segments and ring) and event logs."""

from pathlib import Path
import time

import cv2
import numpy as np
import pytest

from facetrack_ros.core.event_log import EventLog, read_events
from facetrack_ros.core.history import FrameHistory, HistoryConfig, INDEX_FILE
from facetrack_ros.core.history.forget import forget, matching_person_ids, pixelate
from facetrack_ros.history_messages import MessageCodec
from history_material import (CAMERA, event, EVENTS_TYPE, FACES_TYPE, jpeg, record, S,
                              serialized, unit)

NOW = time.time_ns() // S * S
#: Alice's and Bob's person boxes in the frames (see history_material.faces).
ALICE_BOX = (100, 40, 180, 230)
BOB_BOX = (200, 40, 280, 230)


@pytest.fixture
def recorded(tmp_path: Path):
    """Yield a history of 8 s: Alice and Bob side by side (faces every 0.5 s), events, a log."""
    rng = np.random.default_rng(11)
    alice, bob = unit(rng), unit(rng)
    history = FrameHistory(tmp_path / 'h', HistoryConfig(segment_duration_s=3.0),
                           robot_id='r1', background=False)
    stamps = record(history, NOW - 30 * S, 8, {'alice': alice, 'bob': bob}, data=jpeg(3))
    for person in ('alice', 'bob'):
        history.store.write(CAMERA, serialized('/hall/person_events', EVENTS_TYPE,
                                               event(stamps[0], person), stamps[0]))
    with EventLog(tmp_path / 'events') as log:
        for person in ('alice', 'bob'):
            log.append({'kind': 'PERSON_IN', 'stamp': stamps[0] / 1e9, 'person_id': person})
    history.flush()
    yield history, alice, bob, stamps, tmp_path
    history.close()


def _region_spread(data: bytes, box: tuple[int, int, int, int]) -> float:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = box
    return float(image[y1:y2, x1:x2].std())


def _stored_people(history: FrameHistory, codec: MessageCodec) -> tuple[set, set]:
    faces, events = set(), set()
    for info in history.store.segments():
        for schema, _, _, data in history.store.messages(info.name, {FACES_TYPE, EVENTS_TYPE}):
            message = codec.decode(schema.name, data)
            if schema.name == EVENTS_TYPE:
                events.add(message.person_id)
            else:
                faces |= {d.person_id for d in message.detections}
                assert all(len(d.embedding) == 128 for d in message.detections)
    return faces, events


def test_forget_by_id_removes_every_trace(recorded) -> None:
    """Alice's entries, faces, events and log records go, her region is pixelated; Bob stays."""
    history, alice, bob, stamps, folder = recorded
    codec = MessageCodec()
    original = jpeg(3)
    assert _region_spread(original, ALICE_BOX) > 40   # noise: the frames are all detail
    report = forget(history, {'alice'}, alice, 0.9, codec, folder / 'events')
    assert report.person_ids == ['alice'] and report.remaining == 0
    assert report.index_entries == 8 and report.faces == 16 and report.events == 1
    assert report.event_log_records == 1 and report.segments_rewritten == 3
    assert report.frames_blurred == 2 * len(stamps)   # every frame, on disk and in the ring
    assert _stored_people(history, codec) == ({'bob'}, {'bob'})
    assert [r['person_id'] for r in read_events(folder / 'events')] == ['bob']
    result = history.index.search(alice, min_similarity=0.5)
    assert result.appearances == [] and history.index.search(bob).appearances
    for found in (history.store.frames_in_range(stamps[0], stamps[-1], 0),
                  [history.store.ring.get(CAMERA, s) for s in stamps]):
        assert len(found) == len(stamps)
        for frame in found:
            assert _region_spread(frame.data, ALICE_BOX) < 25   # pixelated
            assert _region_spread(frame.data, (290, 40, 320, 230)) > 40   # beside Bob: kept
    # The index rebuilt from the rewritten segments does not bring her back.
    history.close()
    (folder / 'h' / INDEX_FILE).unlink()
    with FrameHistory(folder / 'h', robot_id='r1', background=False) as again:
        again.maintain()
        assert again.index.search(alice, min_similarity=0.5).appearances == []
        assert again.index.search(bob).appearances
    print(f'\nforget: {report.frames_blurred} frames pixelated, {report.segments_rewritten} '
          f'segments rewritten in {report.elapsed_s:.2f} s '
          f'({1000 * report.elapsed_s / report.frames_blurred:.1f} ms a frame)')


def test_forget_by_face_finds_every_id_of_it(recorded) -> None:
    """A face stored under two ids: forgetting the face forgets both, Bob stays."""
    history, alice, bob, stamps, folder = recorded
    record(history, stamps[-1] + S, 2, {'alice-again': alice + 0.01}, data=jpeg(3))
    history.flush()
    ids = matching_person_ids(history, alice, 0.9)
    assert ids == {'alice', 'alice-again'}
    report = forget(history, ids, alice, 0.9, MessageCodec(), folder / 'events')
    assert report.person_ids == ['alice', 'alice-again'] and report.remaining == 0
    assert {a.person_id for a in history.index.search(alice, min_similarity=-1.0,
                                                      max_results=0).appearances} == {'bob'}


def test_forgetting_nobody_changes_nothing(recorded) -> None:
    """An unknown id removes nothing and rewrites no segment."""
    history, alice, bob, stamps, folder = recorded
    history.store.finish_open()
    before = {info.name: info.path.stat().st_mtime_ns for info in history.store.segments()}
    report = forget(history, {'carol'}, None, 0.9, MessageCodec(), folder / 'events')
    assert (report.index_entries, report.faces, report.frames_blurred,
            report.segments_rewritten) == (0, 0, 0, 0)
    assert before == {info.name: info.path.stat().st_mtime_ns
                      for info in history.store.segments()}


def test_pixelate_keeps_size_and_format() -> None:
    """Pixelating returns an image of the same size and format; a box outside gives None."""
    data = jpeg(4)
    out = pixelate(data, np.array([10.0, 10.0, 60.0, 90.0]))
    assert cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
    assert pixelate(data, np.array([500.0, 500.0, 600.0, 600.0])) is None
    png = cv2.imencode('.png', np.zeros((20, 20, 3), np.uint8))[1].tobytes()
    assert pixelate(png, np.array([0.0, 0.0, 10.0, 10.0]), 'png').startswith(b'\x89PNG')
