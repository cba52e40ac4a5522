#!/usr/bin/env python3
"""Compose the evaluation clips from the labelled photos; optionally check YOLO finds the people.

Writes <name>-<hash>.avi (MJPG) and <name>-<hash>.truth.jsonl per scene into --out (cached:
an unchanged scene is not rendered again) and prints a line per clip. --check runs the person
detector (default: the float rebuild of the shared YOLOv8n) on every --step-th frame and
prints its recall against the truth: persons at least half visible, matched at IoU >= 0.5,
by face height band, and the detections that match no such person.
"""

import argparse
from collections import defaultdict
import os
from pathlib import Path
import sys
import time

from facetrack_ros.core.dequantize import cached_float_model
from facetrack_ros.core.detection import YoloPersonDetector
from facetrack_ros.evaluation.clips import ClipTruth, compose, video_frames
from facetrack_ros.evaluation.identity import match_boxes
from facetrack_ros.evaluation.scenes import SCENES

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('FACETRACK_SHARED', REPO.parent / 'shared'))
CACHE = Path.home() / '.cache' / 'facetrack_ros'
#: Face height bands of the recall table [px]: lower edges.
BANDS = (0, 30, 50, 80, 120)


def band(face_px: float) -> str:
    """Return the face-height band of a size, e.g. '30-50'."""
    lower = max(b for b in BANDS if b <= face_px)
    index = BANDS.index(lower)
    return f'{lower}-{BANDS[index + 1]}' if index + 1 < len(BANDS) else f'{lower}+'


def check_recall(video: Path, truth: ClipTruth, detector: YoloPersonDetector,
                 step: int) -> tuple[dict[str, list[int]], int]:
    """Return {band or 'all': [found, total]} and the unmatched detections of a clip."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    unmatched = 0
    for index, image in video_frames(video, step):
        boxes = [d.box.tolist() for d in detector.detect(image)]
        persons = [p for p in truth.frames[index] if p.visible >= 0.5]
        matched = match_boxes([p.box for p in persons], boxes, 0.5)
        found = set(matched.values())
        for number, person in enumerate(persons):
            for key in ('all', band(person.face_px)):
                counts[key][0] += number in found
                counts[key][1] += 1
        # Detections of people mostly hidden (not in the recall's truth) are not errors.
        hidden = [p.box for p in truth.frames[index] if p.visible < 0.5]
        rest = [b for i, b in enumerate(boxes) if i not in matched]
        unmatched += len(rest) - len(match_boxes(hidden, rest, 0.3))
    return counts, unmatched


def main() -> int:
    """Compose (and check) the clips; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scenes', nargs='+', default=list(SCENES), choices=list(SCENES))
    parser.add_argument('--out', type=Path, default=CACHE / 'eval_clips')
    parser.add_argument('--check', action='store_true', help='measure YOLO recall')
    parser.add_argument('--model', type=Path, help='person model (default: float YOLOv8n)')
    parser.add_argument('--step', type=int, default=2, help='check every step-th frame')
    args = parser.parse_args()
    detector = None
    if args.check:
        model = args.model or cached_float_model(SHARED / 'models' / 'yolov8n_int8.onnx',
                                                 CACHE / 'models')
        detector = YoloPersonDetector(str(model))
        print('| clip | size | s | people | recall (IoU >= 0.5) | by face height [px] '
              '| detections of no one |')
        print('| --- | --- | --- | --- | --- | --- | --- |')
    for name in args.scenes:
        scene = SCENES[name]
        started = time.monotonic()
        clip = compose(scene, SHARED, args.out)
        if detector is None:
            print(f'{name}: {clip.video} ({time.monotonic() - started:.1f} s)', flush=True)
            continue
        truth = ClipTruth.read(clip.truth)
        counts, unmatched = check_recall(clip.video, truth, detector, args.step)
        found, total = counts.pop('all')
        bands = ', '.join(f'{key}: {f}/{t}' for key, (f, t) in
                          sorted(counts.items(), key=lambda kv: int(kv[0].split('-')[0]
                                                                    .rstrip('+'))))
        print(f'| {name} | {scene.size[0]}x{scene.size[1]} | {scene.duration:g} | '
              f'{len(truth.identities)} | {found}/{total} = {found / max(total, 1):.1%} | '
              f'{bands} | {unmatched} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
