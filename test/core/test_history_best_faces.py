"""The best faces the index keeps per person: always what a read of every block would choose.

A query by person id averages the person's best faces; the index keeps them (best_faces) so
that the query reads no block. These tests compare the kept faces, bit for bit, with
embeddings_of over an explicit window (which reads every block of the person) on real index
files: pending and committed entries, better faces replacing kept ones, retention, deleted
segments and persons, forgetting, a reopened index and one rebuilt from the segments.
"""

from pathlib import Path
import sqlite3
import time

import numpy as np

from facetrack_ros.core.embedding import l2_normalize
from facetrack_ros.core.history import (EmbeddingIndex, FrameHistory, HistoryConfig,
                                        HistorySearch, INDEX_FILE, IndexEntry, QueryKind,
                                        SearchCode, SearchQuery)
from facetrack_ros.core.history.forget import forget
from facetrack_ros.core.history.index import PERSON_QUERY_FACES
from facetrack_ros.history_messages import MessageCodec
from history_material import record, S, unit

T0 = 1_750_000_000 * S
#: A window holding every stamp the index accepts: embeddings_of then reads every block.
EVER = (0, 2 ** 62 - 1)
PEOPLE = ('alice', 'bob', 'carol')


def assert_kept_as_read(index: EmbeddingIndex, people=PEOPLE + ('nobody',)) -> None:
    """Assert that the kept best faces are the ones a read of every block chooses, in order."""
    for person in people:
        read = index.embeddings_of(person, *EVER, limit=0)
        for limit in (1, 7, PERSON_QUERY_FACES):
            kept = index.embeddings_of(person, limit=limit)
            assert kept.shape == (min(limit, len(read)), index.dim), (person, limit)
            np.testing.assert_array_equal(kept, index.embeddings_of(person, *EVER, limit=limit),
                                          err_msg=f'{person}, limit {limit}')


def committed_best_faces(path: Path) -> dict[str, int]:
    """Return how many best faces the committed file keeps per person name."""
    with sqlite3.connect(path) as db:
        return dict(db.execute('SELECT p.name, count(*) FROM best_faces f JOIN persons p'
                               ' ON p.code = f.person GROUP BY p.name'))


def offer(index: EmbeddingIndex, rng: np.random.Generator, faces: dict[str, np.ndarray],
          seconds: range, qualities: int = 5) -> None:
    """Offer sightings of every person on two cameras, most seconds, several per bucket.

    Qualities take few values, so many faces tie and the order among equals counts too.
    """
    for second in seconds:
        for person, face in faces.items():
            for camera in ('front', 'back'):
                for _ in range(int(rng.integers(0, 3))):
                    stamp = T0 + second * S + int(rng.integers(0, S))
                    index.add(IndexEntry(
                        stamp, 'r1', camera, person, (10.0, 20.0, 50.0, 80.0),
                        float(rng.integers(0, qualities)) / (qualities - 1),
                        face + rng.normal(scale=0.05, size=face.shape).astype(np.float32),
                        f'seg{second // 30}.mcap'))


def test_kept_best_faces_follow_adds_and_deletes(tmp_path: Path) -> None:
    """Pending, committed, replaced, deleted by age, segment and person, reopened: as read."""
    rng = np.random.default_rng(21)
    faces = {person: unit(rng) for person in PEOPLE}
    path = tmp_path / 'index.sqlite3'
    index = EmbeddingIndex(path, block_s=10.0, commit_interval_s=3600.0)
    try:
        offer(index, rng, faces, range(120))
        assert committed_best_faces(path) == {}
        assert_kept_as_read(index)   # all pending
        index.flush()
        assert committed_best_faces(path) == dict.fromkeys(PEOPLE, PERSON_QUERY_FACES)
        assert_kept_as_read(index)
        # Better faces for old buckets replace kept ones: pending, then committed.
        offer(index, rng, faces, range(3, 15), qualities=9)
        assert_kept_as_read(index)
        index.flush()
        assert_kept_as_read(index)
        best = {person: index.embeddings_of(person, limit=PERSON_QUERY_FACES)
                for person in PEOPLE}
        assert index.delete_before(T0 + 40 * S) > 0
        assert_kept_as_read(index)
        assert any(not np.array_equal(best[person], index.embeddings_of(
            person, limit=PERSON_QUERY_FACES)) for person in PEOPLE)   # best faces went
        assert index.delete_segment('seg2.mcap') > 0
        assert_kept_as_read(index)
        assert index.delete_person('bob') > 0
        assert_kept_as_read(index)
        assert 'bob' not in committed_best_faces(path)
        offer(index, rng, faces, range(120, 125))   # bob's new id takes the next code
        assert_kept_as_read(index)
    finally:
        index.close()
    with EmbeddingIndex(path) as again:
        assert_kept_as_read(again)
        kept = committed_best_faces(path)
        assert kept == {person: min(PERSON_QUERY_FACES, len(again.embeddings_of(
            person, *EVER, limit=0))) for person in PEOPLE}


def query_face(history: FrameHistory, person: str) -> np.ndarray | None:
    """Return the face a query by person id searches for (None: UNKNOWN_PERSON)."""
    outcome = HistorySearch(history).search(SearchQuery(QueryKind.PERSON_ID, person_id=person,
                                                        window_s=0))
    if outcome.code == SearchCode.UNKNOWN_PERSON:
        return None
    assert outcome.embedding is not None, outcome
    return outcome.embedding


def assert_query_as_read(history: FrameHistory, person: str) -> np.ndarray:
    """Assert a query by person id searches the mean of the best faces read from every block."""
    read = history.index.embeddings_of(person, *EVER, limit=PERSON_QUERY_FACES)
    face = query_face(history, person)
    np.testing.assert_array_equal(face, l2_normalize(np.mean(read, axis=0)))
    return face


def test_person_query_after_retention_forget_reopen_and_rebuild(tmp_path: Path) -> None:
    """A recorded history: the query face is the same as read after each change to the index."""
    rng = np.random.default_rng(22)
    alice, bob = unit(rng), unit(rng)
    now = time.time_ns() // S * S
    root = tmp_path / 'h'
    config = HistoryConfig(segment_duration_s=10.0, max_age_s=3600.0)
    with FrameHistory(root, config, robot_id='r1', background=False) as history:
        # 40 s, faces every 0.5 s: 40 entries each (one per second), all of one quality; the
        # face changes a little every 5 s.
        stamps = []
        for start in range(0, 40, 5):
            stamps += record(history, now - (60 - start) * S, 5, {
                name: face + rng.normal(scale=0.05, size=face.shape).astype(np.float32)
                for name, face in (('alice', alice), ('bob', bob))})
        history.flush()
        assert_kept_as_read(history.index, ('alice', 'bob'))
        first = assert_query_as_read(history, 'alice')
        assert_query_as_read(history, 'bob')
        # Retention deletes the first 20 s (two segments), which held the best faces (the
        # earliest of equals).
        report = history.enforce_retention(stamps[0] + 20 * S + 3600 * S)
        assert report.entries_deleted > 0 and len(report.segments) == 2
        assert_kept_as_read(history.index, ('alice', 'bob'))
        after_retention = assert_query_as_read(history, 'alice')
        assert not np.array_equal(first, after_retention)
        assert_query_as_read(history, 'bob')
        report = forget(history, {'bob'}, bob, 0.9, MessageCodec())
        assert report.index_entries > 0
        assert query_face(history, 'bob') is None
        assert_kept_as_read(history.index, ('alice', 'bob'))
        np.testing.assert_array_equal(assert_query_as_read(history, 'alice'), after_retention)
    with FrameHistory(root, config, robot_id='r1', background=False) as history:   # reopened
        np.testing.assert_array_equal(assert_query_as_read(history, 'alice'), after_retention)
    (root / INDEX_FILE).unlink()
    with FrameHistory(root, config, robot_id='r1', background=False) as history:
        history.maintain()   # rebuilt from the segments
        assert_kept_as_read(history.index, ('alice', 'bob'))
        np.testing.assert_array_equal(assert_query_as_read(history, 'alice'), after_retention)
        assert query_face(history, 'bob') is None
