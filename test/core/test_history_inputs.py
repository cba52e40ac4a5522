"""Every field of the history's inputs is checked; refusals say which field; tally counts them."""

import time

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from facetrack_ros.core.history.inputs import (check_compressed, check_event, check_faces,
                                               check_raw_header, faces_to_entries,
                                               InputRefused, MAX_DETECTIONS, stamp_problem)
from facetrack_ros.core.history.tally import Tally
from facetrack_ros.msg import PersonDetection
from history_material import event, faces, frame, jpeg, S, unit

NAN, INF = float('nan'), float('inf')
NOW = time.time_ns()


def _faces(**fields):
    message = faces(NOW, {'alice': unit(np.random.default_rng(1))})
    for name, value in fields.items():
        setattr(message.detections[0], name, value)
    return message


@pytest.mark.parametrize('fields, field', [
    ({'box': [NAN, 0.0, 1.0, 1.0]}, 'box'),
    ({'box': [10.0, 0.0, 1.0, 1.0]}, 'box'),
    ({'box': [0.0, 0.0, 1e9, 1.0]}, 'box'),
    ({'face_box': [0.0, INF, 1.0, 1.0]}, 'face_box'),
    ({'face_quality': NAN}, 'face_quality'),
    ({'face_quality': 2.0}, 'face_quality'),
    ({'confidence': -0.5}, 'confidence'),
    ({'match_similarity': NAN}, 'match_similarity'),
    ({'embedding': [1.0] * 7}, 'embedding'),
    ({'embedding': [NAN] * 128}, 'embedding'),
    ({'embedding': [0.0] * 128}, 'embedding'),
    ({'embedding': [INF] * 128}, 'embedding'),
    ({'embedding': []}, 'embedding'),
    ({'person_id': 'x' * 300}, 'person_id'),
    ({'embedding_model': 'm' * 300}, 'embedding_model'),
])
def test_a_bad_detection_is_refused_by_name(fields: dict, field: str) -> None:
    """A detection with one bad field is refused alone, saying which field."""
    message = _faces(**fields)
    message.detections.append(faces(NOW, {'bob': unit(np.random.default_rng(2))}).detections[0])
    _, kept, refused = check_faces(message, 128)
    assert [d.person_id for d in kept] == ['bob']
    assert len(refused) == 1 and field in refused[0], refused
    entries, reasons = faces_to_entries(message, 'r1', 'hall', 128)
    assert [e.person_id for e in entries] == ['bob'] and reasons == refused


def test_a_bad_message_is_refused_whole() -> None:
    """A bad header, image size or too many detections refuse the message."""
    message = _faces()
    message.header.stamp.nanosec = 2_000_000_000
    with pytest.raises(InputRefused, match='header.stamp'):
        check_faces(message, 128)
    message = _faces()
    message.header.stamp.sec = -5
    with pytest.raises(InputRefused, match='header.stamp'):
        check_faces(message, 128)
    message = _faces()
    message.detections = [PersonDetection()] * (MAX_DETECTIONS + 1)
    with pytest.raises(InputRefused, match='detections'):
        check_faces(message, 128)
    message = _faces()
    message.image_width = 10 ** 6
    with pytest.raises(InputRefused, match='image_width'):
        check_faces(message, 128)


@pytest.mark.parametrize('field, value, word', [
    ('kind', 9, 'kind'), ('person_id', '', 'person_id'), ('box', [NAN] * 4, 'box'),
    ('confidence', INF, 'confidence'), ('duration', -1.0, 'duration'),
    ('duration', NAN, 'duration'), ('embedding', [1.0] * 5, 'embedding'),
    ('robot_id', 'r' * 300, 'robot_id'),
])
def test_bad_events_are_refused(field: str, value, word: str) -> None:
    """Each bad field of a PersonEvent refuses it, naming the field."""
    message = event(NOW, 'alice')
    setattr(message, field, value)
    with pytest.raises(InputRefused, match=word):
        check_event(message, 128)
    assert check_event(event(NOW, 'alice'), 128) == NOW


def test_frames_are_checked() -> None:
    """Compressed frames must be JPEG or PNG and not huge; raw images not too large."""
    assert check_compressed(frame(NOW, jpeg())) == NOW
    for data in (b'', b'GIF89a' + b'\0' * 10, b'\xff\xd8'):
        with pytest.raises(InputRefused, match='JPEG nor PNG'):
            check_compressed(frame(NOW, data))
    with pytest.raises(InputRefused, match='format'):
        check_compressed(CompressedImage(format='j' * 300, data=jpeg()))
    with pytest.raises(InputRefused, match='larger'):
        check_raw_header(Image(width=20000, height=10))


def test_stamps_far_from_the_clock() -> None:
    """A stamp in 2038 or an hour back is refused by a 300 s skew; 0 accepts anything."""
    assert stamp_problem(NOW + 10 * S, NOW, 300.0) is None
    assert 'ahead' in stamp_problem(2_145_916_800 * S, NOW, 300.0)
    assert 'behind' in stamp_problem(NOW - 3600 * S, NOW, 300.0)
    assert stamp_problem(2_145_916_800 * S, NOW, 0.0) is None


def test_tally_counts_and_forgets_old_trouble() -> None:
    """Counts stay; a refusal warns and a failure errs for notice_s, then the state clears."""
    tally = Tally(notice_s=0.2)
    tally.count('image_raw', 'stored', 3)
    tally.refused('person_events', 'kind 9')
    tally.failed('flush', 'disk')
    assert [c.level for c in tally.conditions()] == [2, 1]
    assert tally.values() == {'flush failed': '1', 'image_raw stored': '3',
                              'person_events refused': '1'}
    time.sleep(0.25)
    assert tally.conditions() == []
