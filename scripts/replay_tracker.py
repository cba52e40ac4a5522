#!/usr/bin/env python3
r"""Replay the evaluation's clips through the tracker at several detection rates, offline.

The person detector (with the body cue) and the face model run once over every frame of a
clip; the results are cached in --cache. Then the ROS-free tracker (core.tracking) and the face
node's scheduler (core.embedding_scheduler) replay them keeping every step-th frame, from
several frame offsets: a detector that manages fps/step frames a second. Per clip and rate it
prints the identity evaluation's metrics (evaluation.identity: PERSON_IN per real person,
flaps, wrong RETURNED, merged ids, id switches, misfiled faces, wrong-id boxes, withheld-id
boxes, face coverage) as min-max over the offsets.
With --keep the frames kept are drawn at random instead (each with that probability, one
draw per seed): irregular gaps like the graph's, where a detector under load takes whichever
frame is newest when it is free; the spread is then over --seeds draws.
Deterministic, and minutes instead of real-time graph runs. Faces reach the tracker with
their frame, or --face-delay frames later as in the graph (where they come 3-6 frames late at
30 fps); the graph's own measure is scripts/eval_identity.py.

  python scripts/replay_tracker.py doorway alone crossing hamilton --steps 1 2 4 6
  python scripts/replay_tracker.py sizes_720p crossing --keep 0.5 0.7 0.9 --seeds 20
"""

import argparse
from dataclasses import replace
import os
from pathlib import Path
import pickle
from typing import Sequence

import numpy as np

from facetrack_ros import camera_node, detector_node, face_embedding_node
from facetrack_ros.conversions import bgr_to_compressed, jpeg_to_bgr
from facetrack_ros.core.camera import (reduce_image, reduced_size, SourceEnded,
                                       video_size, VideoFileSource)
from facetrack_ros.core.detection import body_appearance, DEFAULT_CONFIDENCE, scale_boxes
from facetrack_ros.core.embedding_scheduler import EmbeddingScheduler
from facetrack_ros.core.face import (close_up, DlibResNetEmbedder, Face, FaceAnalyzer,
                                     FaceDetector, FaceSearch)
from facetrack_ros.core.tracking import Detection, EventReason, PersonTracker, TrackerConfig
from facetrack_ros.evaluation.identity import (ClipReport, evaluate, EventRecord, FaceRecord,
                                               spread, TrackBox)
from facetrack_ros.evaluation.material import clip_material, DEFAULT_CLIPS, model_path
from facetrack_ros.parameters import offline_parameters

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('FACETRACK_SHARED', REPO.parent / 'shared'))
CACHE = Path.home() / '.cache' / 'facetrack_ros'
PARAMS_FILE = REPO / 'config' / 'facetrack.yaml'
#: Bump when what analyse() stores changes, so that old caches are not read (5: no thorough
#: search in boxes under THOROUGH_MIN_PERSON_WIDTH_PX; 6: face boxes; 7: boxes cut by the
#: image top searched whole; 8: and by the thorough detector for close-ups, whose pyramid
#: levels are padded to LEVEL_SHAPE_MULTIPLE; 9: a face for each FaceSearch; 10: the detector
#: reads a frame no larger than detect_size as the full frame's JPEG, at jpeg_quality; 11: head
#: and shoulders filling the frame are close-ups too, CLOSE_UP_MAX_ASPECT and
#: CLOSE_UP_MIN_HEIGHT; 12: a thorough search does a close-up's search first; 13: a face
#: another person's box holds nearer its centre line is theirs, face_in_person's others;
#: 14: unless one box lies inside the other, RIVAL_MAX_NESTED; 15: the face networks in ONNX
#: Runtime, descriptors and CNN scores as torch gave them to float rounding).
CACHE_VERSION = 15


def analyse(video: Path, model: str, faces: FaceAnalyzer) -> list[list[tuple]]:
    """Return per frame [(box, confidence, appearance, *faces)] of every person.

    The frames are read as the graph reads them: decoded by core.camera (a Motion-JPEG
    clip's own JPEG, through OpenCV's JPEG decoder, not the video decoder: their pixels
    differ by up to 59 levels, enough to move a detector score by 0.1), the detector's and
    the body cue's copy reduced to the camera's detect_size, faces from the full frame. The
    frames of any other clip go through the JPEG the camera node makes of them (the full
    frame at jpeg_quality, the detector's copy of a larger frame at detect_jpeg_quality), as
    the detector and the face node read them.
    Boxes are kept down to the detector's default confidence, so that --confidence can replay
    any detector threshold above it. faces: what face_in_person finds at each FaceSearch,
    in its order; each (embedding, quality, face box [px]) or None. The other persons whose
    boxes face_in_person weighs are the boxes at the detector's configured confidence: those
    the graph's tracker gets.
    """
    camera = offline_parameters('camera', camera_node.PARAMETERS, PARAMS_FILE)
    settings = offline_parameters('detector', detector_node.PARAMETERS, PARAMS_FILE)
    published = settings.confidence
    settings.model, settings.require_model = model, True
    settings.confidence = DEFAULT_CONFIDENCE
    detector = detector_node.person_detector(settings)[0]
    result = []
    with VideoFileSource(str(video)) as source:
        while True:
            try:
                frame = source.read()
            except SourceEnded:
                break
            if frame.jpeg is None:
                image = _camera_jpeg(frame.image, camera.jpeg_quality)
                small = image  # a frame no larger than detect_size: one JPEG serves both
                size = (frame.width, frame.height)
                if reduced_size(*size, camera.detect_size) != size:
                    small = _camera_jpeg(reduce_image(frame.image, camera.detect_size),
                                         camera.detect_jpeg_quality)
            else:
                image, small = frame.image, frame.reduced(camera.detect_size)
            boxes = detector.detect(small)
            fulls = scale_boxes(boxes, (small.shape[1], small.shape[0]),
                                (frame.width, frame.height))
            people = []
            for box, full in zip(boxes, fulls):
                others = [other.box for other in fulls
                          if other is not full and other.confidence >= published]
                fast = faces.face_in_person(image, full.box, FaceSearch.FAST, others)
                near = fast if fast or not close_up(full.box, frame.height) else \
                    faces.face_in_person(image, full.box, FaceSearch.CLOSE_UP, others)
                thorough = near if near or not faces.thorough_detector else \
                    faces.face_in_person(image, full.box, FaceSearch.THOROUGH, others)
                people.append((full.box, full.confidence, body_appearance(small, box.box),
                               *map(_face_record, (fast, near, thorough))))
            result.append(people)
    return result


def _face_record(face: Face | None) -> tuple | None:
    """Return what the replays need of a face: (embedding, quality, face box [px])."""
    return None if face is None else (face.embedding, face.quality, face.box)


def _camera_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Return image as the camera node's JPEG of it decodes."""
    return jpeg_to_bgr(bytes(bgr_to_compressed(image, quality=quality).data))


def replay(frames: list[list[tuple]], fps: float, kept: Sequence[int], confidence: float,
           face_delay: int = 0, frame_size: tuple[int, int] | None = None
           ) -> tuple[list[TrackBox], list[EventRecord], list[FaceRecord]]:
    """Replay the frames numbered in kept (ascending); return what the graph would publish.

    confidence: the detector's threshold; boxes scoring less are dropped, as it drops them.
    face_delay: the faces of a frame reach the tracker this many frames later (before the
    first kept frame from then on), as the face node's answers do in the graph; 0: with
    their own frame. Events are placed on the frame of their own stamp (a face's event on
    the face's frame, as in the graph) and received at the time of the frame that caused
    them; faces still on their way at the end arrive after the last frame, and then the
    appearances still open get their PERSON_OUT, as when a recording ends. frame_size: the
    video's width and height [px], as the detector node sends them to the tracker.
    """
    tracker, scheduler = PersonTracker(TrackerConfig()), EmbeddingScheduler()
    tracks, events, faces = [], [], []
    pending: list[tuple[int, float, int, tuple, FaceRecord]] = []  # due frame, stamp, track

    def record(index: int, happened: list) -> None:
        events.extend(EventRecord(round(e.stamp * fps), e.kind.name, e.person_id, e.track_id,
                                  tuple(map(float, e.box)), index / fps, e.reason.name)
                      for e in happened)

    def attribute() -> None:
        faces.extend(replace(tag, person_id=person_id)
                     for tag, person_id in tracker.take_attributions())

    def deliver(index: int) -> list:
        happened = []
        while pending and pending[0][0] <= index:
            _, stamp, track_id, face, tag = pending.pop(0)
            happened += tracker.add_face(stamp, track_id, face[0], face[1], tag=tag,
                                         face_box=face[2])
        return happened

    for index in kept:
        stamp = index / fps
        people = [person for person in frames[index] if person[1] >= confidence]
        record(index, deliver(index))
        persons, happened = tracker.update(
            stamp, [Detection(b, c, a) for b, c, a, *_ in people], frame_size)
        tracks += [TrackBox(index, p.track_id, p.person_id, tuple(map(float, p.box)))
                   for p in persons]
        for track_id in scheduler.select(stamp, persons):
            person = next(p for p in persons if p.track_id == track_id)
            face = next(f[3 + scheduler.search(track_id)] for f in people
                        if np.array_equal(f[0], person.box))
            scheduler.record(track_id, stamp, face[1] if face else 0.0, person.box)
            if face is not None:
                pending.append((index + face_delay, stamp, track_id, face, FaceRecord(
                    index, track_id, '', tuple(map(float, person.box)),
                    tuple(map(float, face[2])))))
        happened += deliver(index)
        attribute()
        record(index, happened)
    # The faces of the last frames still on their way arrive after them, as the face node's
    # answers do after a recording's last frame.
    record(len(frames), deliver(len(frames) + face_delay))
    attribute()
    record(len(frames), tracker.end_appearances(EventReason.INPUT_STALLED))
    return tracks, events, faces


def _draws(count: int, fps: float, args: argparse.Namespace
           ) -> list[tuple[float, list[tuple[str, list[int]]]]]:
    """Return, per detection rate [Hz], the replays to run: (label, frame numbers kept)."""
    if args.keep:
        return [(fps * keep, [(f'keep {keep} seed {seed}', [
            int(i) for i in np.flatnonzero(np.random.default_rng(seed).random(count) < keep)])
            for seed in range(args.seeds)]) for keep in args.keep]
    rates = []
    for step in args.steps:
        offsets = sorted({round(i * step / args.offsets) for i in range(args.offsets)})
        rates.append((fps / step, [(f'step {step} offset {offset}',
                                    list(range(offset, count, step))) for offset in offsets]))
    return rates


def main() -> None:
    """Analyse (or load) each clip, replay it at each step, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    detector = offline_parameters('detector', detector_node.PARAMETERS, PARAMS_FILE)
    parser.add_argument('clips', nargs='*', default=list(DEFAULT_CLIPS))
    parser.add_argument('--model', default='float',
                        help='float (rebuild of the shared YOLOv8n, default), int8, or a path')
    face_p = offline_parameters('face_embedding', face_embedding_node.PARAMETERS, PARAMS_FILE)
    parser.add_argument('--face-detector', default=face_p.face_detector,
                        choices=('hog', 'cnn', 'yunet'))
    parser.add_argument('--thorough-face-detector', default=face_p.thorough_face_detector,
                        choices=('cnn', 'none'))
    parser.add_argument('--yunet-model', default=str(SHARED / 'models' /
                                                     'yunet_s_640_640.onnx'))
    parser.add_argument('--steps', type=int, nargs='+', default=[1, 2, 4, 6])
    parser.add_argument('--offsets', type=int, default=3, help='frame offsets per step')
    parser.add_argument('--keep', type=float, nargs='+', default=[],
                        help='instead of --steps: keep each frame with these probabilities')
    parser.add_argument('--seeds', type=int, default=10, help='random draws per --keep')
    parser.add_argument('--confidence', type=float, default=detector.confidence,
                        help="the detector's confidence threshold (default: the detector "
                        "node's)")
    parser.add_argument('--face-delay', type=int, default=0,
                        help='faces reach the tracker this many frames after their own')
    parser.add_argument('--cache', type=Path, default=CACHE / 'replay')
    parser.add_argument('--details', action='store_true',
                        help='print each flap, wrong RETURNED, merge, switch and missed face')
    args = parser.parse_args()
    if not all(0 < keep <= 1 for keep in args.keep) or args.seeds < 1 or args.face_delay < 0:
        parser.error('--keep takes probabilities in (0, 1], --seeds at least 1, '
                     '--face-delay at least 0')
    if not DEFAULT_CONFIDENCE <= args.confidence <= 1:
        parser.error(f'--confidence must be in [{DEFAULT_CONFIDENCE}, 1]: the analysis keeps '
                     'no box below the detector\'s default')
    model = model_path(args.model, SHARED, CACHE)
    faces = FaceAnalyzer(FaceDetector(args.face_detector, yunet_model=args.yunet_model
                                      if args.face_detector == 'yunet' else None),
                         DlibResNetEmbedder(), thorough_detector=None
                         if args.thorough_face_detector == 'none'
                         else FaceDetector(args.thorough_face_detector))
    args.cache.mkdir(parents=True, exist_ok=True)
    print('| clip | detections/s | replays | PERSON_IN / person | flaps | wrong RETURNED '
          '| merged ids | id switches | misfiled faces | wrong-id boxes | withheld-id boxes '
          '| face coverage [%] |\n' + '|' + ' --- |' * 12)
    for name in args.clips:
        clip = clip_material(name, SHARED, CACHE, args.cache)
        cache = args.cache / (f'{clip.video.stem}-{Path(model).stem}-{args.face_detector}'
                              f'-{args.thorough_face_detector}-v{CACHE_VERSION}.pickle')
        if cache.exists():
            frames = pickle.loads(cache.read_bytes())
        else:
            frames = analyse(clip.video, model, faces)
            cache.write_bytes(pickle.dumps(frames))
        size = video_size(clip.video)
        for rate, draws in _draws(len(frames), clip.fps, args):
            reports: list[ClipReport] = []
            for label, kept in draws:
                report = evaluate(clip.truth, *replay(frames, clip.fps, kept, args.confidence,
                                                      args.face_delay, size))
                reports.append(report)
                if args.details:
                    print('\n'.join(f'    {name} {label}: {line}' for line in report.details))

            def cell(attribute: str) -> str:
                return spread([getattr(r, attribute) for r in reports])

            coverage = [r.face_coverage for r in reports]
            print(f'| {name} | {rate:.1f} | {len(reports)} | {cell("in_per_person")} '
                  f'| {cell("flaps")} | {cell("wrong_returned")} | {cell("merged_ids")} '
                  f'| {cell("id_switches")} | {cell("misfiled_faces")} '
                  f'| {cell("wrong_id_boxes")} | {cell("withheld_id_boxes")} '
                  f'| {spread([None if c is None else 100 * c for c in coverage])} |',
                  flush=True)


if __name__ == '__main__':
    main()
