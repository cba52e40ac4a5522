#!/usr/bin/env python3
"""Measure face detectors inside person boxes: recall by face size and angle, ms per box.

The boxes are the true person boxes of the composed clips (people at least half visible, face
at least 90 % visible), every --step-th frame; a detector finds a face when the face
FaceAnalyzer.find_in_person returns (the person box widened, its top searched at the face
node's scale) is centred on the true face. Angles: the clips' yaw warps (a flat card turned,
see facetrack_ros/evaluation/clips.py) and tilts, and the real turned photos (img59: Jack
Dorsey in three-quarter view; img13: Mark Zuckerberg slightly turned). Times are per person
box on this CPU, as median and 10th..90th percentile. 'hog+cnn' runs the CNN only where HOG
found nothing.
"""

import argparse
from collections import defaultdict
import os
from pathlib import Path
import sys
import time

import numpy as np

from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector
from facetrack_ros.evaluation.clips import ClipTruth, compose, video_frames
from facetrack_ros.evaluation.scenes import SCENES

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('FACETRACK_SHARED', REPO.parent / 'shared'))
CACHE = Path.home() / '.cache' / 'facetrack_ros'
CLIPS = ('doorway', 'alone', 'crossing', 'sizes_360p', 'sizes_720p')
REAL_TURNED = {'face_pairs/img59.jpg': 'real 3/4 turn', 'face_pairs/img13.jpg': 'real slight turn'}
SIZE_BANDS = ((20, 30), (30, 40), (40, 60), (60, 90), (90, 1000))


def angle_of(photo: str, yaw: float, roll: float) -> str:
    """Return the angle class of a person: real turn, yaw warp, tilt or frontal."""
    if photo in REAL_TURNED:
        return REAL_TURNED[photo]
    if abs(yaw) >= 20:
        return 'yaw warp 20-45'
    if abs(roll) >= 10:
        return 'tilt 10-20'
    return 'frontal'


def size_of(face_px: float) -> str:
    """Return the face-height band of a size."""
    for low, high in SIZE_BANDS:
        if low <= face_px < high:
            return f'{low}-{high if high < 1000 else ""} px'
    return 'other'


def main() -> int:
    """Run each detector over the same person boxes and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--step', type=int, default=10)
    parser.add_argument('--detectors', nargs='+', default=['hog', 'cnn', 'yunet'])
    parser.add_argument('--yunet-model', default=str(SHARED / 'models' / 'yunet_s_640_640.onnx'))
    args = parser.parse_args()
    embedder = DlibResNetEmbedder()
    analyzers = {name: FaceAnalyzer(FaceDetector(name, args.yunet_model), embedder)
                 for name in args.detectors}
    found = defaultdict(dict)   # detector -> box index -> bool
    times = defaultdict(dict)   # detector -> box index -> ms
    labels = []                 # per box: (size band, angle)
    for name in CLIPS:
        scene = SCENES[name]
        clip = compose(scene, SHARED, CACHE / 'eval_clips')
        truth = ClipTruth.read(clip.truth)
        for index, image in video_frames(clip.video, args.step):
            for person in truth.frames[index]:
                if person.visible < 0.5 or person.face_visible < 0.9:
                    continue
                box = np.array(person.box, np.float32)
                number = len(labels)
                labels.append((size_of(person.face_px), angle_of(
                    scene.actors[person.actor].photo, person.yaw, person.roll)))
                for detector, analyzer in analyzers.items():
                    started = time.perf_counter()
                    face = analyzer.find_in_person(image, box)
                    times[detector][number] = 1000 * (time.perf_counter() - started)
                    fb = person.face_box
                    found[detector][number] = face is not None and (
                        fb[0] <= (face.box[0] + face.box[2]) / 2 <= fb[2]
                        and fb[1] <= (face.box[1] + face.box[3]) / 2 <= fb[3])
        print(f'{name}: {len(labels)} person boxes so far', file=sys.stderr, flush=True)
    if 'hog' in found and 'cnn' in found:
        for number in range(len(labels)):
            found['hog+cnn'][number] = found['hog'][number] or found['cnn'][number]
            times['hog+cnn'][number] = times['hog'][number] + (
                0.0 if found['hog'][number] else times['cnn'][number])
    names = list(found)
    groups = sorted({label for pair in labels for label in pair},
                    key=lambda g: (not g.endswith('px'), int(g.split('-')[0]) if g[0].isdigit()
                                   else 0, g))
    print(f'{len(labels)} person boxes from {", ".join(CLIPS)} (every {args.step}th frame)\n')
    print('| | boxes | ' + ' | '.join(names) + ' |')
    print('| --- | --- |' + ' --- |' * len(names))
    for group in ['all', *groups]:
        members = [i for i, pair in enumerate(labels) if group == 'all' or group in pair]
        cells = [f'{np.mean([found[n][i] for i in members]):.0%}' for n in names]
        print(f'| {group} | {len(members)} | ' + ' | '.join(cells) + ' |')
    cells = []
    for n in names:
        values = np.array(list(times[n].values()))
        cells.append(f'{np.median(values):.0f} ({np.percentile(values, 10):.0f}..'
                     f'{np.percentile(values, 90):.0f})')
    print('| ms per person box, median (p10..p90) | | ' + ' | '.join(cells) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
