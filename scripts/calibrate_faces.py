#!/usr/bin/env python3
"""Calibrate the face decision: same/different score distributions, FAR/FRR, by face quality.

Faces (facetrack_ros/evaluation/calibration.py): every labelled photo, the faces the face path
(person detector boxes, FaceAnalyzer.face_in_person with the face node's detectors, thorough
search included) finds in the composed clips, and the Hamilton clip's shots whose people are
known by eye. Prints the pair counts, the score distributions, FAR/FRR at candidate
thresholds on the photos (master.csv's 300 pairs and all photo pairs), on the video faces and
on everything, by face-quality band, and checks the default operating point of
facetrack_ros/core/embedding.py (min_similarity_for and MIN_DECISION_QUALITY): it must accept
no impostor pair.

  python scripts/calibrate_faces.py            # the faces are cached after the first run
"""

import argparse
import os
from pathlib import Path
import pickle
import sys

import numpy as np

from facetrack_ros import face_embedding_node
from facetrack_ros.core.dequantize import cached_float_model
from facetrack_ros.core.detection import YoloPersonDetector
from facetrack_ros.core.embedding import (DEFAULT_MIN_SIMILARITY, MIN_DECISION_QUALITY,
                                          min_similarity_for)
from facetrack_ros.core.identity import (CONTRADICTION_MAX_SIMILARITY, MATCH_MARGIN,
                                         POOR_CONFIRM_SIMILARITY, STRONG_FACE_QUALITY,
                                         STRONG_MATCH_QUALITY, STRONG_MATCH_SIMILARITY)
from facetrack_ros.evaluation.calibration import (all_pairs, clip_faces, FaceSample,
                                                  hamilton_faces, Pairs, photo_faces, rates)
from facetrack_ros.evaluation.clips import ClipTruth, compose
from facetrack_ros.evaluation.photos import read_master_pairs
from facetrack_ros.evaluation.scenes import SCENES
from facetrack_ros.parameters import offline_parameters

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('FACETRACK_SHARED', REPO.parent / 'shared'))
CACHE = Path.home() / '.cache' / 'facetrack_ros'
PARAMS_FILE = REPO / 'config' / 'facetrack.yaml'
CLIPS = ('doorway', 'alone', 'crossing', 'sizes_360p', 'sizes_720p')
THRESHOLDS = (0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97)
QUALITY_BANDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def collect(step: int) -> list[FaceSample]:
    """Embed every calibration face with the face node's default detectors."""
    analyzer = face_embedding_node.face_analyzer(
        offline_parameters('face_embedding', face_embedding_node.PARAMETERS, PARAMS_FILE))
    samples = photo_faces(SHARED, analyzer)
    print(f'photos: {len(samples)} faces', flush=True)
    detector = YoloPersonDetector(str(cached_float_model(
        SHARED / 'models' / 'yolov8n_int8.onnx', CACHE / 'models')))
    for name in CLIPS:
        clip = compose(SCENES[name], SHARED, CACHE / 'eval_clips')
        found, dropped = clip_faces(clip.video, ClipTruth.read(clip.truth), detector, analyzer,
                                    step, [a.photo for a in SCENES[name].actors])
        print(f'{name}: {len(found)} faces ({dropped} on a neighbour\'s face dropped)',
              flush=True)
        samples += found
    found = hamilton_faces(SHARED / 'data' / 'video' / 'hamilton_clip.mp4', detector,
                           analyzer, 3)
    print(f'hamilton: {len(found)} faces', flush=True)
    return samples + found


def decide(pairs: Pairs) -> tuple[np.ndarray, np.ndarray]:
    """Return (may decide, accepted) per pair under the default operating point."""
    usable = pairs.quality >= MIN_DECISION_QUALITY
    needed = np.array([min_similarity_for(q) for q in pairs.quality])
    return usable, usable & (pairs.similarity >= needed)


def table(title: str, pairs: Pairs, mask: np.ndarray) -> None:
    """Print FAR/FRR at each candidate threshold for the pairs in mask."""
    genuine = pairs.genuine[mask] & ~pairs.same_origin[mask]
    keep = ~(pairs.genuine[mask] & pairs.same_origin[mask])
    scores, labels = pairs.similarity[mask][keep], genuine[keep]
    print(f'\n{title}: {int(np.sum(~labels))} impostor pairs (highest '
          f'{scores[~labels].max() if np.any(~labels) else float("nan"):.3f}), '
          f'{int(np.sum(labels))} genuine pairs across origins (lowest '
          f'{scores[labels].min() if np.any(labels) else float("nan"):.3f})')
    print('| threshold | FAR | false accepts | FRR | false rejects |')
    print('| --- | --- | --- | --- | --- |')
    for r in rates(scores, labels, THRESHOLDS):
        print(f'| {r.threshold:.2f} | {r.far:.4%} | {r.false_accepts}/{r.impostors} | '
              f'{r.frr:.1%} | {r.false_rejects}/{r.genuines} |')


def by_quality(pairs: Pairs) -> None:
    """Print impostor maxima and genuine quantiles per band of the poorer face's quality."""
    print('\nBy the poorer face\'s quality (all sources; genuine pairs across origins):')
    print('| quality | impostor pairs | highest impostor | genuine pairs | genuine 10th pct '
          '| genuine median | threshold there | FRR there |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    edges = (*QUALITY_BANDS, 1.01)
    for low, high in zip(edges, edges[1:]):
        band = (pairs.quality >= low) & (pairs.quality < high)
        impostor = pairs.similarity[band & ~pairs.genuine]
        genuine = pairs.similarity[band & pairs.genuine & ~pairs.same_origin]
        needed = min_similarity_for((low + min(high, 1.0)) / 2)
        frr = (f'{np.mean(genuine < needed):.1%}' if low >= MIN_DECISION_QUALITY
               and len(genuine) else 'no decision')
        print(f'| {low:.1f}-{min(high, 1.0):.1f} | {len(impostor)} | '
              f'{impostor.max() if len(impostor) else float("nan"):.3f} | {len(genuine)} | '
              f'{np.percentile(genuine, 10) if len(genuine) else float("nan"):.3f} | '
              f'{np.median(genuine) if len(genuine) else float("nan"):.3f} | {needed:.3f} | '
              f'{frr} |')


def contradiction_point(pairs: Pairs) -> None:
    """Print how the contradiction threshold splits pairs of video faces that may decide.

    A face of a named track contradicts its person below CONTRADICTION_MAX_SIMILARITY: pairs
    of one appearance (one person on one track) must not fall there, pairs of two people
    should.
    """
    print(f'\nContradiction below cosine {CONTRADICTION_MAX_SIMILARITY} (video faces that may '
          'decide):')
    print('| poorer face quality | pairs of one appearance | below | impostor pairs | below |')
    print('| --- | --- | --- | --- | --- |')
    for low in (MIN_DECISION_QUALITY, STRONG_FACE_QUALITY):
        mask = (pairs.kind == 'video-video') & (pairs.quality >= low)
        same = pairs.similarity[mask & pairs.genuine & pairs.same_origin]
        impostor = pairs.similarity[mask & ~pairs.genuine]
        print(f'| >= {low} | {len(same)} | {int(np.sum(same < CONTRADICTION_MAX_SIMILARITY))} '
              f'| {len(impostor)} | {np.mean(impostor < CONTRADICTION_MAX_SIMILARITY):.1%} |')


def single_face_point(pairs: Pairs) -> None:
    """Print what one face may decide alone, per band of the poorer face's quality.

    A match from STRONG_MATCH_QUALITY (or from STRONG_MATCH_SIMILARITY at any quality that may
    decide), a new person from STRONG_FACE_QUALITY. Per band: the highest impostor pair (a
    single face's false match needs DEFAULT_MIN_SIMILARITY) and the pairs of one person across
    origins below a new person's bound (DEFAULT_MIN_SIMILARITY - MATCH_MARGIN: a single face's
    false new person).
    """
    new_bound = DEFAULT_MIN_SIMILARITY - MATCH_MARGIN
    print(f'\nOne face alone: a match from quality {STRONG_MATCH_QUALITY}, a new person from '
          f'{STRONG_FACE_QUALITY}')
    print(f'| poorer face quality | impostor pairs | highest | genuine pairs '
          f'| below {new_bound:.3f} |\n| --- | --- | --- | --- | --- |')
    edges = (STRONG_MATCH_QUALITY, STRONG_FACE_QUALITY, 1.01)
    for low, high in zip(edges, edges[1:]):
        band = (pairs.quality >= low) & (pairs.quality < high)
        impostor = pairs.similarity[band & ~pairs.genuine]
        genuine = pairs.similarity[band & pairs.genuine & ~pairs.same_origin]
        print(f'| {low:.2f}-{min(high, 1.0):.2f} | {len(impostor)} | {impostor.max():.3f} | '
              f'{len(genuine)} | {np.mean(genuine < new_bound):.1%} |')
    usable = pairs.quality >= MIN_DECISION_QUALITY
    impostor = pairs.similarity[usable & ~pairs.genuine]
    genuine = pairs.similarity[usable & pairs.genuine & ~pairs.same_origin]
    print(f'A match alone (in a box of its own) from any quality that may decide at cosine '
          f'{STRONG_MATCH_SIMILARITY} or more: '
          f'{int(np.sum(impostor >= STRONG_MATCH_SIMILARITY))} of {len(impostor)} impostor '
          f'pairs (highest {impostor.max():.3f}); '
          f'{np.mean(genuine >= STRONG_MATCH_SIMILARITY):.1%} of {len(genuine)} genuine pairs '
          'reach it')


def poor_confirm_point(pairs: Pairs) -> None:
    """Print how often a face too poor to decide reaches POOR_CONFIRM_SIMILARITY.

    Such a face ends the doubt of a track on its own person at that score (it names no one):
    an impostor pair there would confirm a box carried onto someone else. Pairs whose poorer
    face may not decide: two people's, one person's across origins, and one appearance's
    (the faces of one track, the case the rule is for).
    """
    poor = pairs.quality < MIN_DECISION_QUALITY
    impostor = pairs.similarity[poor & ~pairs.genuine]
    across = pairs.similarity[poor & pairs.genuine & ~pairs.same_origin]
    one = pairs.similarity[poor & pairs.genuine & pairs.same_origin
                           & (pairs.kind == 'video-video')]

    def share(values: np.ndarray) -> str:
        return f'{np.mean(values >= POOR_CONFIRM_SIMILARITY):.1%}' if len(values) else '-'

    print(f'\nA face too poor to decide ends a doubt from cosine {POOR_CONFIRM_SIMILARITY}: '
          f'{int(np.sum(impostor >= POOR_CONFIRM_SIMILARITY))} of {len(impostor)} impostor '
          f'pairs whose poorer face may not decide reach it (highest '
          f'{impostor.max() if len(impostor) else float("nan"):.3f}); {share(across)} of '
          f'{len(across)} pairs of one person across origins and {share(one)} of {len(one)} '
          'pairs of one appearance do')


def operating_point(samples: list[FaceSample], pairs: Pairs, master_mask: np.ndarray) -> int:
    """Print the default operating point's FAR/FRR per source; return the false accepts."""
    usable, accepted = decide(pairs)
    genuine = pairs.genuine & ~pairs.same_origin
    impostor = ~pairs.genuine
    faces_usable = np.mean([s.quality >= MIN_DECISION_QUALITY for s in samples])
    print(f'\nDefault operating point: quality >= {MIN_DECISION_QUALITY} may decide '
          f'({faces_usable:.0%} of the faces) at cosine {DEFAULT_MIN_SIMILARITY}; poorer faces '
          'do not decide (core/embedding.py min_similarity_for)')
    print('| pairs | impostor pairs | false accepts | genuine pairs (across origins) '
          '| false rejects (incl. faces too poor to decide) |')
    print('| --- | --- | --- | --- | --- |')
    total_false = 0
    for kind in ('master.csv', 'photo-photo', 'photo-video', 'video-video', 'all'):
        mask = (np.ones_like(genuine) if kind == 'all' else
                master_mask if kind == 'master.csv' else pairs.kind == kind)
        false = int(np.sum(accepted & impostor & mask))
        if kind == 'all':
            total_false = false
        rejected = int(np.sum(~accepted & genuine & mask))
        print(f'| {kind} | {int(np.sum(impostor & mask))} | {false} | '
              f'{int(np.sum(genuine & mask))} | {rejected} = '
              f'{rejected / max(int(np.sum(genuine & mask)), 1):.1%} |')
    return total_false


def main() -> int:
    """Collect (or load) the faces and print the tables.

    Exit 1 if the default operating point accepts an impostor pair.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--step', type=int, default=5, help='use every step-th clip frame')
    parser.add_argument('--cache', type=Path, default=CACHE / 'calibration' / 'faces-v5.pkl')
    parser.add_argument('--refresh', action='store_true', help='embed the faces again')
    args = parser.parse_args()
    if args.cache.is_file() and not args.refresh:
        samples = pickle.loads(args.cache.read_bytes())
    else:
        samples = collect(args.step)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        args.cache.write_bytes(pickle.dumps(samples))
    pairs = all_pairs(samples)
    sources = sorted({s.source for s in samples})
    counts = ', '.join(f'{src}: {sum(s.source == src for s in samples)}' for src in sources)
    print(f'{len(samples)} faces ({counts}), {len(pairs.similarity)} pairs, '
          f'{int(np.sum(~pairs.genuine))} of them impostor pairs')

    keys = [s.origin for s in samples]
    master = {(p.first, p.second) for p in read_master_pairs(SHARED)}
    in_master = (pairs.kind == 'photo-photo') & np.array(
        [(keys[a], keys[b]) in master or (keys[b], keys[a]) in master
         for a, b in zip(pairs.first, pairs.second)])
    table('master.csv pairs (photos)', pairs, in_master)
    table('all photo pairs', pairs, pairs.kind == 'photo-photo')
    table('pairs with a video face', pairs, pairs.kind != 'photo-photo')
    table('all pairs', pairs, np.ones_like(pairs.genuine))
    by_quality(pairs)
    contradiction_point(pairs)
    single_face_point(pairs)
    poor_confirm_point(pairs)
    return 1 if operating_point(samples, pairs, in_master) else 0


if __name__ == '__main__':
    sys.exit(main())
