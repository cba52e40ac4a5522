"""index_bag: search recordings later. Run the pipeline over a rosbag2 recording into a history.

  ros2 run facetrack_ros index_bag ~/bags/patrol_0 --topic /r1/image_raw \
      --history-dir ~/bags/patrol_0_history --model yolo11n.pt

Reads the image topic (sensor_msgs/Image or CompressedImage) of a rosbag2 MCAP recording (a
bag folder, as `ros2 bag record` writes it, or one .mcap file), runs detection, tracking and
face embedding over it frame by frame as fast as the CPU allows (no frame is dropped, unlike
a live graph), and writes a history folder as frame_history writes it: frames (a compressed
recording's own JPEGs, unchanged), identified faces with the embedding index, and person
events. Serve it with frame_history and ask BacktrackSearch, or fleet_search through a fleet
node. Settings are the nodes' own parameters: their defaults, then --params-file (the YAML
of config/facetrack.yaml, keyed by node name), then the options given here.
"""

import argparse
from collections import defaultdict
from dataclasses import dataclass
import json
from pathlib import Path
import re
import sys
import time
from typing import Any, BinaryIO, Callable, Iterator, TypeVar

import numpy as np
from mcap.exceptions import McapError
from mcap.reader import make_reader, NonSeekingReader
from mcap.summary import Summary
from rclpy.serialization import deserialize_message
import yaml
from sensor_msgs.msg import CompressedImage, Image

from facetrack_ros import (camera_node, detector_node, face_embedding_node, frame_history_node,
                           tracker_node)
from facetrack_ros.conversions import (bgr_to_compressed, image_to_bgr, ImageConversionError,
                                       jpeg_to_bgr, sec_to_time)
from facetrack_ros.core.camera import Frame
from facetrack_ros.core.detection import ModelUnavailableError
from facetrack_ros.core.history import FrameHistory
from facetrack_ros.core.owner_lock import InUseError
from facetrack_ros.core.pipeline import FaceSighting, PersonPipeline
from facetrack_ros.core.private_files import FileModes, replace_atomically
from facetrack_ros.core.tracker_state import highest_sequence
from facetrack_ros.core.tracking import PersonTracker
from facetrack_ros.history_messages import HistoryRecorder
from facetrack_ros.msg import PersonDetectionArray
from facetrack_ros.parameters import InvalidParameterError, offline_parameters

#: index_bag's record of the person ids it handed out, in the history folder (IdSequences).
ID_SEQUENCES_FILE = 'index_bag_ids.json'
#: index_bag's record of the recordings it indexed, in the history folder (IndexedRecordings).
RECORDINGS_FILE = 'index_bag_recordings.json'
#: Unreadable frames named one by one; the count of all comes at the end.
MAX_SKIPS_SHOWN = 5
IMAGE_TYPES = {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CompressedImage': CompressedImage}
T = TypeVar('T')


class BagError(ValueError):
    """A recording that cannot be indexed; the message says why and what to do."""


def bag_files(path: Path) -> list[Path]:
    """Return the MCAP files of a bag folder (in order) or the one .mcap file given.

    The order is metadata.yaml's where it lists them, else by split number (name_2 before
    name_10, as `ros2 bag record --max-bag-size` numbers them).
    """
    if path.is_file():
        if path.suffix != '.mcap':
            raise BagError(f'{path} is not an MCAP file; record with `ros2 bag record -s mcap` '
                           '(the default storage since Iron)')
        return [path]
    if not path.is_dir():
        raise BagError(f'{path} does not exist')
    files = sorted(path.glob('*.mcap'), key=_split_order)
    listed = _metadata_files(path)
    if listed and set(listed) == set(files):
        files = listed
    if not files:
        raise BagError(f'{path} holds no .mcap file (a sqlite3 bag? convert it with '
                       '`ros2 bag convert`, or record with `-s mcap`)')
    return files


def _split_order(path: Path) -> tuple[str, int]:
    """Return a sort key putting a split bag's files in their number's order."""
    match = re.fullmatch(r'(.*)_(\d+)', path.stem)
    return (match.group(1), int(match.group(2))) if match else (path.stem, -1)


def _metadata_files(path: Path) -> list[Path]:
    """Return the files metadata.yaml lists, in its order, or [] without a usable one."""
    try:
        info = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
        return [path / name for name in info['relative_file_paths']]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return []


def _summary(stream: BinaryIO) -> Summary | None:
    """Return an MCAP file's summary, or None for one without (a file cut short)."""
    try:
        return make_reader(stream).get_summary()
    except McapError:
        return None


@dataclass(frozen=True)
class BagFile:
    """One MCAP file of a recording, its summary read once: its image topics and time span."""

    path: Path
    #: Without a summary (a recorder killed by a power loss): read in written order.
    cut_short: bool
    #: {topic: message type} of its image topics.
    image_topics: dict[str, str]
    #: First and last log time [ns] of all its messages (key None, from the summary), or, for
    #: a file cut short, of each image topic's; none for a file without messages.
    spans: dict[str | None, tuple[int, int]]

    def span(self, topic: str) -> tuple[int, int] | None:
        """Return the first and last log time [ns] of a span holding topic's messages."""
        return self.spans.get(None, self.spans.get(topic))


def scan(file: Path) -> BagFile:
    """Read an MCAP file's summary, or the messages of one cut short, into a BagFile."""
    with open(file, 'rb') as stream:
        summary = _summary(stream)
    statistics = None if summary is None else summary.statistics
    if summary is not None and statistics is not None:
        schemas = [(channel.topic, summary.schemas.get(channel.schema_id))
                   for channel in summary.channels.values()]
        topics = {topic: schema.name for topic, schema in schemas
                  if schema is not None and schema.name in IMAGE_TYPES}
        return BagFile(file, False, topics, {None: (
            statistics.message_start_time, statistics.message_end_time)}
            if statistics.message_count else {})
    topics, spans = {}, {}
    for schema, channel, message in _records(file, summary is None, warn=False):
        if schema is not None and schema.name in IMAGE_TYPES:
            topics[channel.topic] = schema.name
            first, last = spans.get(channel.topic, (message.log_time, message.log_time))
            spans[channel.topic] = (min(first, message.log_time), max(last, message.log_time))
    return BagFile(file, summary is None, topics, spans)


def _records(file: Path, cut_short: bool, topics: list[str] | None = None, warn: bool = True
             ) -> Iterator[tuple[object, object, object]]:
    """Yield (schema, channel, message) of topics (all: None) in log-time order.

    A file cut short (no summary) is read from its start up to the cut in the order it was
    written (a sort would read to the cut first and lose it all), with a warning (if warn),
    rather than refused whole.
    """
    with open(file, 'rb') as stream:
        reader = NonSeekingReader(stream) if cut_short else make_reader(stream)
        read = 0
        try:
            for record in reader.iter_messages(topics=topics, log_time_order=not cut_short):
                read += 1
                yield record
        except McapError as error:
            if not warn:
                return
            why = str(error) or type(error).__name__
            print(f'index_bag: {file} is cut short after {read} messages ({why}); indexed up '
                  'to there', file=sys.stderr)


def choose_topic(files: list[BagFile], topic: str | None) -> str:
    """Return the image topic to index: the one given, or the bag's only one."""
    topics = {name: kind for file in files for name, kind in file.image_topics.items()}
    if topic is None:
        if len(topics) != 1:
            raise BagError(f'give --topic: the recording has {len(topics)} image topics '
                           f'{sorted(topics)}')
        return next(iter(topics))
    if topic not in topics:
        raise BagError(f'no image topic {topic} in the recording; its image topics: '
                       f'{sorted(topics) or "none"}')
    return topic


def images(files: list[BagFile], topic: str) -> Iterator[Image | CompressedImage]:
    """Yield the image messages of topic, file after file, each in log-time order.

    A file cut short is read in written order (_records); messages of another type on the
    topic are passed over.
    """
    for file in files:
        for schema, _, message in _records(file.path, file.cut_short, [topic]):
            if schema is None or schema.name not in IMAGE_TYPES:
                continue
            msg = deserialize_message(message.data, IMAGE_TYPES[schema.name])
            if msg.header.stamp.sec == 0 and msg.header.stamp.nanosec == 0:
                msg.header.stamp = sec_to_time(message.log_time / 1e9)
            yield msg


def _read_record(path: Path, parse: Callable[[Any], T], empty: T, remedy: str) -> T:
    """Return parse(the JSON of one of index_bag's files), or empty where there is none.

    A file that does not parse is a BagError saying remedy.
    """
    try:
        return parse(json.loads(path.read_text()))
    except FileNotFoundError:
        return empty
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise BagError(f'{path} is damaged ({error!r}); {remedy}') from error


class IdSequences:
    """The highest person id number index_bag handed out per prefix into one history folder.

    The history's index holds only people with faces; people announced without one have ids
    too, in the stored events: those must not be handed out again by the next recording.
    """

    def __init__(self, path: Path, modes: FileModes) -> None:
        """Read path (absent: nothing handed out yet); files are written with modes."""
        self._path, self._modes = path, modes
        self._highest = _read_record(
            path, lambda saved: {str(k): int(v) for k, v in saved.items()}, {},
            'remove it only if no earlier recording was indexed into this history')

    def highest(self, prefix: str) -> int:
        """Return the highest number handed out under prefix, or 0."""
        return self._highest.get(prefix, 0)

    def handed_out(self, prefix: str, person_id: str) -> None:
        """Note a person id of prefix that went into the history."""
        self._highest[prefix] = max(self.highest(prefix), highest_sequence([person_id], prefix))

    def save(self) -> None:
        """Write the numbers to the history folder (atomically, private)."""
        replace_atomically(self._path, json.dumps(self._highest).encode(), self._modes)


def camera_of(topic: str) -> str:
    """Return the camera an image topic shows: its raw and compressed images are one."""
    return topic.removesuffix('/compressed')


def time_span(files: list[BagFile], topic: str) -> tuple[int, int] | None:
    """Return the first and last log time [ns] of a recording, or None if it has no message.

    A span at least the topic's: all topics' where a file's summary tells it (BagFile.spans).
    """
    spans = [span for span in (file.span(topic) for file in files) if span is not None]
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None


def _recordings(saved: Any) -> list[dict]:
    """Return the recordings of index_bag_recordings.json; TypeError if one is not one."""
    if not all(isinstance(known['camera'], str) and isinstance(known['first_ns'], int)
               and isinstance(known['last_ns'], int) for known in saved):
        raise TypeError('an entry is no recording')
    return list(saved)


class IndexedRecordings:
    """The recordings index_bag indexed into one history folder: camera, time span, files.

    A recording whose span overlaps one indexed of the same camera would store those frames
    and faces twice, their people under new ids: a search would answer each appearance twice,
    as two people. That holds for the same recording copied, converted, written by another
    tool, cut or still growing, or as its other image topic (raw or compressed).
    """

    def __init__(self, path: Path, modes: FileModes) -> None:
        """Read path (absent: none indexed yet); files are written with modes."""
        self._path, self._modes = path, modes
        self._indexed = _read_record(
            path, _recordings, [], 'remove it to index into this history again (then the '
            'recordings indexed before are not known)')

    def refuse_overlap(self, bag: Path, topic: str, span: tuple[int, int]) -> None:
        """Raise BagError if the span [ns] of bag's topic overlaps a recording indexed here."""
        for known in self._indexed:
            if (known['camera'] == camera_of(topic) and span[0] <= known['last_ns']
                    and known['first_ns'] <= span[1]):
                raise BagError(
                    f'{bag} ({topic}, {span[0] / 1e9:.3f}-{span[1] / 1e9:.3f} s) overlaps '
                    f'{known.get("recording")} ({known.get("topic")}), indexed into '
                    f'{self._path.parent} on {known.get("indexed_at")}: its frames and faces '
                    'would be stored twice, its people under new ids. Give another '
                    '--history-dir, or --again if that recording\'s data is gone (retention, '
                    'forget_person)')

    def add(self, bag: Path, topic: str, span: tuple[int, int], frames: int) -> None:
        """Note a recording as indexed, and save (atomically, private)."""
        self._indexed.append({'camera': camera_of(topic), 'first_ns': span[0],
                              'last_ns': span[1], 'recording': str(bag), 'topic': topic,
                              'frames': frames,
                              'indexed_at': time.strftime('%Y-%m-%dT%H:%M:%S%z')})
        replace_atomically(self._path, json.dumps(self._indexed, indent=1).encode(),
                           self._modes)


def identified_messages(identified: list[tuple[FaceSighting, str]], frame_id: str,
                        model: str) -> list[PersonDetectionArray]:
    """Return identified_faces messages, one per frame, as the tracker publishes them."""
    frames = defaultdict(list)
    for sighting, person_id in identified:
        frames[sighting.stamp].append(face_embedding_node.face_detection(
            sighting.person, sighting.face, model, person_id))
    messages = []
    for stamp, detections in sorted(frames.items()):
        msg = PersonDetectionArray(detections=detections)
        msg.header.stamp, msg.header.frame_id = sec_to_time(stamp), frame_id
        messages.append(msg)
    return messages


def default_robot_id(path: Path) -> str:
    """Return an id prefix from the recording's name: ids of two recordings never clash."""
    return re.sub(r'[^A-Za-z0-9_]', '_', path.stem if path.is_file() else path.name) or 'bag'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bag', type=Path, help='rosbag2 folder or .mcap file')
    parser.add_argument('--history-dir', type=Path, required=True,
                        help='history folder to write (created; an existing one is added to)')
    parser.add_argument('--topic', help='image topic (default: the recording\'s only one)')
    parser.add_argument('--params-file', type=Path,
                        help='parameters YAML keyed by node name (config/facetrack.yaml)')
    parser.add_argument('--model', help='detector model (the detector\'s `model` parameter)')
    parser.add_argument('--device', help='inference device (the detector\'s `device`)')
    parser.add_argument('--robot-id', help='robot id and person id prefix '
                                           '(default: the recording\'s name)')
    parser.add_argument('--camera-id', help='camera id (default: the frame_history\'s)')
    parser.add_argument('--again', action='store_true',
                        help='index a recording whose time span overlaps one indexed into the '
                             'history before (whose data retention or a forget removed)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Index one recording; exit code 0, or 2 with the reason for a bad recording or setting.

    A history folder a running frame_history (or another index_bag) has open is refused, and
    so is a recording that overlaps one indexed into it before (IndexedRecordings).
    """
    args = parse_args(argv)
    try:
        return index(args)
    except (BagError, InUseError, InvalidParameterError, ModelUnavailableError,
            OSError) as error:
        print(f'index_bag: {error}', file=sys.stderr)
        return 2


def index(args: argparse.Namespace) -> int:
    """Index args.bag into args.history_dir; return 0."""
    files = [scan(file) for file in bag_files(args.bag)]
    topic = choose_topic(files, args.topic)
    robot_id = args.robot_id or default_robot_id(args.bag)
    detector_p = offline_parameters('detector', detector_node.PARAMETERS, args.params_file,
                                    model=args.model, device=args.device)
    face_p = offline_parameters('face_embedding', face_embedding_node.PARAMETERS,
                                args.params_file)
    tracker_p = offline_parameters('tracker', tracker_node.PARAMETERS, args.params_file,
                                   robot_id=robot_id)
    history_p = offline_parameters('frame_history', frame_history_node.PARAMETERS,
                                   args.params_file, robot_id=robot_id, camera_id=args.camera_id)
    # First: a folder that another history has open is refused before the models load.
    modes = FileModes.shared_with_group(history_p.share_with_group)
    history = FrameHistory(args.history_dir.expanduser(),
                           frame_history_node.history_config(history_p), robot_id=robot_id,
                           modes=modes)
    try:
        recordings = IndexedRecordings(args.history_dir.expanduser() / RECORDINGS_FILE, modes)
        span = time_span(files, topic)
        if span is not None and not args.again:
            recordings.refuse_overlap(args.bag, topic, span)
        detector, status = detector_node.person_detector(detector_p)
        print(status)
        analyzer = face_embedding_node.face_analyzer(face_p)
        camera_p = offline_parameters('camera', camera_node.PARAMETERS, args.params_file)
        tracker = PersonTracker(tracker_node.tracker_config(tracker_p), id_prefix=robot_id)
        # A history already holding this prefix's people (an earlier recording of the robot):
        # its ids are never handed out again, those of people without a face neither.
        sequences = IdSequences(args.history_dir.expanduser() / ID_SEQUENCES_FILE, modes)
        tracker.skip_sequence_to(max(highest_sequence(history.person_ids(), robot_id),
                                     sequences.highest(robot_id)) + 1)
        pipeline = PersonPipeline(
            detector, analyzer, tracker, face_embedding_node.embedding_scheduler(face_p),
            detect_size=camera_p.detect_size, appearance=detector_p.appearance)
        recorder = HistoryRecorder(history, robot_id, history_p.camera_id,
                                   lambda name: f'/{history_p.camera_id}/{name}')
        model = analyzer.embedder.name
        frames = stored = faces = skipped = 0
        people = set()
        last_stored = None
        first = last = None
        started = time.monotonic()
        frame_id = ''
        for msg in images(files, topic):
            stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            first = stamp_ns if first is None else first
            last, frame_id = stamp_ns, msg.header.frame_id
            compressed = isinstance(msg, CompressedImage)
            try:
                image = jpeg_to_bgr(bytes(msg.data)) if compressed else image_to_bgr(msg)
            except ImageConversionError as error:   # one frame: the others still count
                skipped += 1
                if skipped <= MAX_SKIPS_SHOWN:
                    print(f'index_bag: frame at {stamp_ns / 1e9:.3f} s skipped: {error}',
                          file=sys.stderr)
                continue
            result = pipeline.process(Frame(stamp_ns / 1e9, frames, image=image), stamp_ns / 1e9)
            frames += 1
            if last_stored is None or stamp_ns - last_stored >= 1e9 / history_p.store_rate \
                    or stamp_ns < last_stored:
                recorder.frame(msg if compressed else bgr_to_compressed(
                    image, msg.header, history_p.jpeg_quality), stamp_ns)
                last_stored, stored = stamp_ns, stored + 1
            for identified in identified_messages(result.identified, frame_id, model):
                recorder.faces(identified, identified.header.stamp.sec * 10**9
                               + identified.header.stamp.nanosec)
                faces += len(identified.detections)
            for record in [*result.events]:
                people.add(record.person_id)
                sequences.handed_out(robot_id, record.person_id)
                recorder.event(tracker_node.event_message(
                    record, robot_id, history_p.camera_id, frame_id), round(record.stamp * 1e9))
            history.flush_if_due()
        for record in pipeline.finish():
            recorder.event(tracker_node.event_message(
                record, robot_id, history_p.camera_id, frame_id), round(record.stamp * 1e9))
        sequences.save()
        if frames:
            recordings.add(args.bag, topic, span, frames)
    finally:
        history.close()
    seconds = time.monotonic() - started
    span = (last - first) / 1e9 if frames else 0.0
    print(f'{topic}: {frames} frames ({span:.1f} s of recording) in {seconds:.1f} s '
          f'({frames / max(seconds, 1e-9):.1f} frames/s); {stored} frames, {faces} faces of '
          f'{len(people)} people stored in {args.history_dir}'
          + (f'; {skipped} unreadable frames skipped' if skipped else ''))
    if frames:
        age_s = time.time() - first / 1e9
        print('serve it (max_age must cover the recording\'s age, or retention deletes it):\n'
              f'  ros2 run facetrack_ros frame_history --ros-args -p history_dir:='
              f'{args.history_dir} -p robot_id:={robot_id} -p max_age:='
              f'{max(history_p.max_age, np.ceil(age_s + 86400)):.0f}.0')
    return 0


if __name__ == '__main__':
    sys.exit(main())
