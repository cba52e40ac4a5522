#!/usr/bin/env python3
r"""Replay a video's detections and faces through the tracker at several detection rates.

The person detector (with the body cue) and the face model run once over every frame of the
video; the results are cached beside the video's name in --cache. Then the ROS-free tracker
(core.tracking) and the face node's scheduler (core.embedding_scheduler) replay them keeping
every step-th frame, from several frame offsets: a detector that manages fps/step frames a
second. It prints per rate the new ids (PERSON_IN), PERSON_RETURNED, and, given the shots of an
edited video (--cuts) and which of them show different people (--distinct), how often an id
was shown in two of those shots. Deterministic, and minutes instead of real-time graph runs;
the graph itself is measured by the end-to-end tests and the identity evaluation.

  python scripts/replay_tracker.py ../shared/data/video/hamilton_clip.mp4 --cuts 20 82 211 \
      --distinct 1 2 3
"""

import argparse
from pathlib import Path
import pickle

import cv2
import numpy as np

from facetrack_ros.core.dequantize import cached_float_model
from facetrack_ros.core.detection import body_appearance, YoloPersonDetector
from facetrack_ros.core.embedding_scheduler import EmbeddingScheduler
from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.core.tracking import Detection, EventKind, PersonTracker, TrackerConfig

SHARED = Path(__file__).resolve().parents[2] / 'shared'
MODEL_CACHE = Path.home() / '.cache' / 'facetrack_ros' / 'models'


def analyse(video: Path, model: str, frames: int) -> dict:
    """Return per frame (stamp, [(box, confidence, appearance, face or None)])."""
    detector = YoloPersonDetector(model)
    faces = FaceAnalyzer(FaceDetector('hog'), DlibResNetEmbedder())
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    result = []
    while len(result) < frames:
        ok, image = capture.read()
        if not ok:
            break
        people = []
        for box in detector.detect(image):
            face = faces.face_in_person(image, box.box)
            people.append((box.box, box.confidence, body_appearance(image, box.box),
                           None if face is None else (face.embedding, face.quality)))
        result.append((len(result) / fps, people))
    return {'fps': fps, 'frames': result}


def replay(data: dict, step: int, offset: int, shots: list[int]) -> tuple[int, int, dict]:
    """Replay every step-th frame from offset; return (INs, RETURNEDs, {shot: person ids})."""
    tracker, scheduler = PersonTracker(TrackerConfig()), EmbeddingScheduler()
    ins = returned = 0
    seen: dict[int, set[str]] = {}
    for index in range(offset, len(data['frames']), step):
        stamp, people = data['frames'][index]
        persons, events = tracker.update(stamp, [Detection(b, c, a) for b, c, a, _ in people])
        for track_id in scheduler.select(stamp, persons):
            person = next(p for p in persons if p.track_id == track_id)
            face = next(f for b, _, _, f in people if np.array_equal(b, person.box))
            scheduler.record(track_id, stamp, face[1] if face else 0.0, person.box)
            if face is not None:
                events += tracker.add_face(stamp, track_id, face[0], face[1])
        ins += sum(e.kind is EventKind.PERSON_IN for e in events)
        returned += sum(e.kind is EventKind.PERSON_RETURNED for e in events)
        shot = int(np.searchsorted(shots, index, side='right'))
        seen.setdefault(shot, set()).update(p.person_id for p in persons if p.person_id)
    return ins, returned, seen


def main() -> None:
    """Analyse (or load) the video, replay it at each step, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('video', type=Path)
    parser.add_argument('--model', help='person model (default: the shared YOLOv8n as float)')
    parser.add_argument('--frames', type=int, default=10**6, help='first frames only')
    parser.add_argument('--steps', type=int, nargs='+', default=[1, 2, 3, 5, 8, 12, 30])
    parser.add_argument('--offsets', type=int, default=3, help='frame offsets per step')
    parser.add_argument('--cuts', type=int, nargs='*', default=[],
                        help='first frame of each shot after the first')
    parser.add_argument('--distinct', type=int, nargs='*', default=[],
                        help='shots (0 = the first) that show different people')
    parser.add_argument('--cache', type=Path, default=Path('replay_cache'))
    args = parser.parse_args()
    model = args.model or str(cached_float_model(SHARED / 'models' / 'yolov8n_int8.onnx',
                                                 MODEL_CACHE))
    args.cache.mkdir(parents=True, exist_ok=True)
    cache = args.cache / f'{args.video.stem}-{Path(model).stem}-{args.frames}.pickle'
    if cache.exists():
        data = pickle.loads(cache.read_bytes())
    else:
        data = analyse(args.video, model, args.frames)
        cache.write_bytes(pickle.dumps(data))
    print(f'{args.video.name}: {len(data["frames"])} frames at {data["fps"]:.2f} fps, '
          f'model {Path(model).name}')
    print('| detections/s | new ids (PERSON_IN) | PERSON_RETURNED | replays with an id in two '
          'distinct shots |\n| --- | --- | --- | --- |')
    for step in args.steps:
        offsets = sorted({round(i * step / args.offsets) for i in range(args.offsets)})
        runs = [replay(data, step, offset, args.cuts) for offset in offsets]
        shared = sum(any(seen.get(a, set()) & seen.get(b, set())
                         for a in args.distinct for b in args.distinct if a < b)
                     for _, _, seen in runs)
        ins = sorted(r[0] for r in runs)
        returned = sorted(r[1] for r in runs)
        across = f'{shared} of {len(runs)}' if args.distinct else '-'
        print(f'| {data["fps"] / step:.2f} | {ins[0]}-{ins[-1]} | {returned[0]}-{returned[-1]} '
              f'| {across} |', flush=True)


if __name__ == '__main__':
    main()
