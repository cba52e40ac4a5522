#!/usr/bin/env python3
"""Identity evaluation: run the node graph on clips with known truth and count what it got wrong.

The graph is the installed executables with config/facetrack.yaml (as `ros2 launch` runs them),
started as processes; each clip is played once in real time. Per clip it prints real persons,
PERSON_IN per real person, RETURNED, flaps (OUT of someone still in view), wrong RETURNED (an
id given to a second real person), merged ids, id switches, misfiled faces (under an id that
stands for someone else), wrong-id boxes (a person shown with someone else's id),
withheld-id boxes (a person shown with no id after one was shown on them: the cost of the
tracker's doubt), face coverage and event latency (definitions:
facetrack_ros/evaluation/identity.py). Clips: the composed ones (made at first use from the
labelled photos, facetrack_ros/evaluation/scenes.py) and the shared videos with truth counted
by eye (facetrack_ros/evaluation/shared_clips.py).

  python scripts/eval_identity.py                        # every clip once, float model
  python scripts/eval_identity.py --runs 3 --load        # 3 runs with both cores busy
  python scripts/eval_identity.py --clips hamilton doorway --detector-delay
"""

import argparse
from contextlib import nullcontext
import json
import os
from pathlib import Path
import shutil
import sys
import time

from facetrack_ros.evaluation.identity import ClipReport, evaluate, median, spread
from facetrack_ros.evaluation.material import clip_material, DEFAULT_CLIPS, model_path
from facetrack_ros.evaluation.run import (CpuLoad, detector_delay_parameter,
                                          DetectorDelayUnavailable, run_graph_on_clip)
from facetrack_ros.graph_runner import exit_on_sigterm

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('FACETRACK_SHARED', REPO.parent / 'shared'))
CACHE = Path.home() / '.cache' / 'facetrack_ros'
#: Detector delay giving 0.5 Hz detections [s per frame].
SLOW_DETECTOR_S = 2.0


def row(name: str, reports: list[ClipReport], frames: int) -> list[str]:
    """Return one table row: spreads over runs; frames is the clip's length."""
    def values(attribute: str) -> list:
        return [getattr(r, attribute) for r in reports]
    coverage = [r.face_coverage for r in reports]
    return [
        name, str(reports[0].real_persons), spread(values('person_in')),
        spread(values('in_per_person')), spread(values('returned')),
        spread(values('flaps')), spread(values('wrong_returned')),
        spread(values('merged_ids')), spread(values('id_switches')),
        spread(values('misfiled_faces')), spread(values('wrong_id_boxes')),
        spread(values('withheld_id_boxes')),
        (spread([100 * c for c in coverage if c is not None]) + ' %'
         if any(c is not None for c in coverage) else '-')
        + (f' of {reports[0].faces_eligible}' if reports[0].faces_eligible else ''),
        spread([median(r.latency_in) for r in reports]),
        spread([median(r.latency_out) for r in reports]),
        f'{spread(values("detector_frames"))} of {frames}',
    ]


HEADER = ['clip', 'real persons', 'PERSON_IN', 'IN / person', 'RETURNED', 'flaps',
          'wrong RETURNED', 'merged ids', 'id switches', 'misfiled faces', 'wrong-id boxes',
          'withheld-id boxes', 'face coverage', 'IN latency [s]', 'OUT latency [s]',
          'frames detected']


def print_table(rows: list[list[str]]) -> None:
    """Print a Markdown table."""
    print('| ' + ' | '.join(HEADER) + ' |')
    print('|' + ' --- |' * len(HEADER))
    for cells in rows:
        print('| ' + ' | '.join(cells) + ' |')


def main() -> int:
    """Run the evaluation; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clips', nargs='+', default=list(DEFAULT_CLIPS))
    parser.add_argument('--runs', type=int, default=1, help='runs per clip (spreads)')
    parser.add_argument('--load', action='store_true',
                        help='keep every CPU busy with a hog process during the runs')
    parser.add_argument('--detector-delay', action='store_true',
                        help=f'slow the detector to 1/{SLOW_DETECTOR_S:g} Hz (test-only '
                        'detector parameter)')
    parser.add_argument('--model', default='float',
                        help='float (the float rebuild of the shared YOLOv8n, default), int8 '
                        '(the shared ONNX) or a model path')
    parser.add_argument('--work', type=Path, default=CACHE / 'eval_runs')
    parser.add_argument('--json', type=Path, help='write every report here')
    parser.add_argument('--details', action='store_true',
                        help='print each flap, wrong RETURNED, merge, switch, missed face, late '
                        'OUT and appearance given no event')
    parser.add_argument('--keep', action='store_true',
                        help="keep each run's folder under --work (node logs, event log, "
                        'history with its faces); by default it is deleted once evaluated')
    args = parser.parse_args()
    exit_on_sigterm()  # the graph and the CPU hogs are stopped on the way out

    overrides = {}
    if args.detector_delay:
        try:
            overrides[detector_delay_parameter().name] = SLOW_DETECTOR_S
            overrides['workers'] = 1  # one frame at a time: the delay sets the rate
        except DetectorDelayUnavailable as error:
            print(f'--detector-delay: {error}', file=sys.stderr)
            return 2
    model = model_path(args.model, SHARED, CACHE)
    materials = {name: clip_material(name, SHARED, CACHE, args.work) for name in args.clips}
    condition = ', '.join(filter(None, [Path(model).name, 'CPU load' if args.load else '',
                                        'detector 0.5 Hz' if args.detector_delay else '']))
    print(f'identity evaluation: {len(args.clips)} clips x {args.runs} runs ({condition})',
          flush=True)
    reports: dict[str, list[ClipReport]] = {name: [] for name in args.clips}
    for run in range(args.runs):
        for name, (video, truth, fps, frames, coded) in materials.items():
            work = args.work / f'{name}-{run}-{os.getpid()}'
            started = time.monotonic()
            with CpuLoad() if args.load else nullcontext():
                recording = run_graph_on_clip(video, fps, frames, coded, model, work,
                                              f'eval_{name}_{run}_{os.getpid()}',
                                              detector_overrides=overrides)
            report = evaluate(truth, recording.tracks, recording.events, recording.faces,
                              recording.frame_stamps)
            report.detector_frames = recording.detector_frames
            reports[name].append(report)
            print(f'  run {run + 1} {name}: {report.person_in} IN, {report.returned} '
                  f'RETURNED, {report.person_out} OUT, flaps {report.flaps}, wrong RETURNED '
                  f'{report.wrong_returned}, switches {report.id_switches}, misfiled '
                  f'{report.misfiled_faces}, wrong-id boxes {report.wrong_id_boxes}, '
                  f'withheld-id boxes {report.withheld_id_boxes}, faces '
                  f'{report.faces_covered}/{report.faces_eligible}, '
                  f'{recording.detector_frames}/{frames} frames detected, '
                  f'{report.processed_frames} with people ({recording.images_seen} images seen, '
                  f'{time.monotonic() - started:.0f} s, load average '
                  f'{os.getloadavg()[0]:.1f})', flush=True)
            if args.details:
                for line in report.details:
                    print(f'      {line}')
            if args.keep:
                print(f'      kept in {work}')
            else:
                shutil.rmtree(work)
    print()
    print_table([row(name, runs, materials[name][3]) for name, runs in reports.items()])
    if args.json:
        args.json.write_text(json.dumps(
            {'condition': condition, 'runs': args.runs,
             'reports': {n: [r.as_dict() for r in runs] for n, runs in reports.items()}},
            indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
