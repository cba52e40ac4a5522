"""camera node: publish sensor_msgs/Image from a V4L2 device, video file, image folder or topic.

Images are bgr8 (a relayed one keeps its encoding on image_raw), stamped at capture (right
after the grab) with the configured frame_id. Beside the full-resolution image_raw (and
camera_info: the size every box is given in) it publishes image_raw/compressed, each frame
JPEG-encoded once for all its readers (face crops, the history; a Motion-JPEG camera or
recording is neither decoded nor re-encoded for it: its own JPEG goes out, and is decoded only
at the size another topic needs), and image_detect, the frame reduced once to the detector's
size, raw and as JPEG (image_detect/compressed, which the detector reads: best-effort DDS
delivers a frame of tens of KiB whole, where fragments of a raw one get lost; a Motion-JPEG
source's own JPEG goes out there too, and the detector decodes only the frames it takes,
straight at its size; a frame no larger than the detector's size goes out as
image_raw/compressed's JPEG, encoded once for both). Each image topic is converted and
published only while it has subscribers. A recording (video file, image folder) waits until the
pipeline's nodes read their image topics, so that it is processed from its first frame; live
sources start at once. A frame that cannot be used (not a JPEG, undecodable) is skipped and
counted; a source that fails is reopened with exponential backoff (a file goes on after the
last frame read); a file that ends is reported once.
"""

import functools
import threading
import time
from typing import Callable

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.node import Node, NodeNameNonExistentError
import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from facetrack_ros.conversions import (bgr_to_compressed, bgr_to_image, camera_info,
                                       check_image, image_to_bgr, ImageConversionError,
                                       sec_to_time)
from facetrack_ros.core.camera import (BadFrame, Backoff, FrameSource, open_source,
                                       reduce_image, reduced_size, SourceEnded)
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.parameters import declare_parameters, IMAGE_QOS, image_qos_profile, ParamSpec
from facetrack_ros.runner import run_node

TOPIC_PREFIX = 'topic:'

#: Logged once when a non-looping file or folder has no more frames (tools wait for it).
END_OF_SOURCE = 'no more frames'
#: /diagnostics keys of the latest published frame: its position in the source (from 0) and
#: its stamp [s]; a reader that misses frames (best effort) can still number those it got.
LATEST_FRAME_KEY = 'latest frame'
LATEST_FRAME_STAMP_KEY = 'latest frame stamp [s]'

PARAMETERS = (
    ParamSpec('source', '0',
              'Frame source: V4L2 index or device (/dev/videoN, /dev/v4l/by-id/...), a video '
              'file, an image folder, or '
              f'{TOPIC_PREFIX}<image topic> to relay an existing sensor_msgs/Image topic.',
              read_only=True),
    ParamSpec('frame_id', 'camera_optical_frame',
              'frame_id written into every image header ("" keeps a relayed image\'s own).'),
    ParamSpec('loop', False, 'Restart a video file or image folder when it ends.',
              read_only=True),
    ParamSpec('realtime', True,
              'Pace a video file at its own frame rate; false reads as fast as possible.',
              read_only=True),
    ParamSpec('rate', 1.0,
              'Playback speed of a video file relative to its own frame rate, with realtime '
              '(like ros2 bag play --rate).', 0.01, 100.0, read_only=True),
    ParamSpec('fps', 10.0, 'Image folder rate; also the V4L2 rate asked for (0 = default) [Hz].',
              min_value=0.0, max_value=240.0, read_only=True),
    ParamSpec('width', 0, 'V4L2 capture width (0 = device default) [px].', 0, 7680,
              read_only=True),
    ParamSpec('height', 0, 'V4L2 capture height (0 = device default) [px].', 0, 4320,
              read_only=True),
    ParamSpec('publish_compressed', True,
              'Also publish image_raw/compressed and image_detect/compressed (JPEG; encoded '
              'only while they have subscribers). The detector, face_embedding and '
              'frame_history read them unless their image_transport is raw.', read_only=True),
    ParamSpec('jpeg_quality', 80,
              'JPEG quality of image_raw/compressed [1..100]; a Motion-JPEG source (camera or '
              'recording) is not re-encoded: its own JPEGs go out as they are.', 1, 100),
    ParamSpec('detect_size', 640,
              'Longest side of image_detect, the copy of each frame the detector reads, '
              'reduced once here (a smaller frame keeps its size; 0: image_detect is not '
              'published; a Motion-JPEG source\'s image_detect/compressed is its own JPEG, '
              'which the detector reduces). Match the detector\'s image_size [px].', 0, 7680,
              read_only=True),
    ParamSpec('detect_jpeg_quality', 90,
              'JPEG quality of image_detect/compressed [1..100] (published with '
              'publish_compressed and detect_size). A frame no larger than detect_size is '
              'encoded once, at jpeg_quality, for both compressed topics while image_raw/'
              'compressed has readers.', 1, 100),
    ParamSpec('wait_for_nodes', ('detector', 'face_embedding', 'tracker', 'frame_history'),
              'Nodes (names relative to the camera\'s namespace, or absolute) that must be '
              'up and subscribed before a video file or image folder plays, so that it is '
              'processed from its first frame (lifecycle nodes subscribe once active, with '
              'their models loaded). V4L2 cameras and topic relays start at once. None: '
              '[\'\'] (ROS 2 parameters cannot type an empty list).',
              read_only=True),
    ParamSpec('wait_for_subscribers', 0,
              'Before a video file or image folder plays, also wait until image_raw has this '
              'many matched subscribers, named or not (a recorder or viewer with a generated '
              'name).', 0, 100, read_only=True),
    ParamSpec('wait_timeout', 120.0,
              'Longest wait for wait_for_nodes and wait_for_subscribers; then the recording '
              'plays anyway, with a warning naming what is missing (0: no wait) [s].',
              0.0, 3600.0, read_only=True),
    ParamSpec('reconnect_max_delay', 10.0,
              'Longest wait between attempts to reopen a failed source [s].', 0.1, 300.0,
              read_only=True),
    IMAGE_QOS,
)


class CameraNode(Node):
    """Reads frames on a thread of its own and publishes them as they are captured."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters, create publishers and start reading."""
        super().__init__('camera', **kwargs)
        self.params = declare_parameters(self, PARAMETERS)
        qos = image_qos_profile(self.params.image_qos)
        self.image_pub = self.create_publisher(Image, 'image_raw', qos)
        self.info_pub = self.create_publisher(CameraInfo, 'camera_info', qos)
        self.detect_pub = (self.create_publisher(Image, 'image_detect', qos)
                           if self.params.detect_size else None)
        self.detect_compressed_pub = (
            self.create_publisher(CompressedImage, 'image_detect/compressed', qos)
            if self.params.detect_size and self.params.publish_compressed else None)
        self.compressed_pub = (
            self.create_publisher(CompressedImage, 'image_raw/compressed', qos)
            if self.params.publish_compressed else None)
        self.diagnostics = NodeDiagnostics(self)
        if not self.params.publish_compressed:
            self.get_logger().warning(
                'publish_compressed is false: the detector, face_embedding and frame_history '
                'get no frames unless their image_transport is raw')
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        source = self.params.source
        if source.startswith(TOPIC_PREFIX):
            self.create_subscription(Image, source[len(TOPIC_PREFIX):],
                                     self.diagnostics.guarded(self._relay), qos)
            self.diagnostics.set_state(DiagnosticStatus.OK, f'relaying {source}')
        else:
            self._thread = threading.Thread(target=self._read_loop, daemon=True)
            self._thread.start()

    def _relay(self, msg: Image) -> None:
        """Republish an image from another topic, keeping its capture stamp.

        One the package cannot read goes out on no topic (camera_info neither), with the
        reason in the log: readers would get some of a frame's topics and not others.
        """
        try:
            check_image(msg)
        except ImageConversionError as error:
            self.diagnostics.errors += 1
            self.get_logger().warning(f'relayed image skipped: {error}',
                                      throttle_duration_sec=5.0)
            return
        if self.params.frame_id:
            msg.header.frame_id = self.params.frame_id
        pixels = functools.cache(functools.partial(image_to_bgr, msg))
        self._publish(msg.header, msg.width, msg.height, pixels,
                      lambda: reduce_image(pixels(), self.params.detect_size), msg)
        self.diagnostics.processed(0.0)

    def _publish(self, header: Header, width: int, height: int,
                 pixels: Callable[[], np.ndarray], reduced: Callable[[], np.ndarray],
                 msg: Image | None = None, jpeg: bytes | None = None) -> None:
        """Publish one frame on each image topic that has subscribers.

        pixels() returns the frame as a BGR array and reduced() the frame reduced to
        detect_size (each converted at most once); msg is its image_raw message when there is
        one already (a relay), jpeg the source's own JPEG (a Motion-JPEG source), which goes
        out on both compressed topics as it is.
        """
        self.info_pub.publish(camera_info(header, width, height))
        reduced = functools.cache(reduced)
        # The source's own JPEG, else the frame encoded once for every topic it serves.
        full_jpeg = functools.cache(
            lambda: bgr_to_compressed(pixels(), header, self.params.jpeg_quality)
            if jpeg is None else CompressedImage(header=header, format='jpeg', data=jpeg))
        if _read(self.detect_pub):
            self.detect_pub.publish(bgr_to_image(reduced(), header))
        if _read(self.detect_compressed_pub):
            # A source JPEG is smaller to send than a decode costs here at the camera's rate;
            # a frame no larger than detect_size is image_raw's pixels: one encode serves both.
            shared = jpeg is not None or (
                _read(self.compressed_pub)
                and reduced_size(width, height, self.params.detect_size) == (width, height))
            self.detect_compressed_pub.publish(
                full_jpeg() if shared
                else bgr_to_compressed(reduced(), header, self.params.detect_jpeg_quality))
        if _read(self.image_pub):
            self.image_pub.publish(msg if msg is not None else bgr_to_image(pixels(), header))
        if _read(self.compressed_pub):
            self.compressed_pub.publish(full_jpeg())

    def _read_loop(self) -> None:
        """Open the source, publish until it ends, reopen it with backoff when it fails."""
        max_delay = self.params.reconnect_max_delay
        backoff = Backoff(initial_s=min(0.5, max_delay), max_s=max_delay)
        waited = False
        source = None   # one object throughout: a file reopened goes on where it was
        while not self._stop.is_set():
            try:
                if source is None:
                    source = open_source(
                        self.params.source, width=self.params.width,
                        height=self.params.height, fps=self.params.fps, loop=self.params.loop,
                        realtime=self.params.realtime, rate=self.params.rate,
                        warn=self.get_logger().warning, stop=self._stop)
                source.open()
                if not (waited or source.live):
                    self._wait_for_pipeline(source.description)
                waited = True
                if self._stop.is_set():
                    return
                self.get_logger().info(f'publishing {source.description}')
                self.diagnostics.set_state(DiagnosticStatus.OK, source.description)
                backoff.reset()
                ended = self._publish_frames(source)
                if ended is not None:
                    (self.get_logger().warning if ended.early else
                     self.get_logger().info)(f'{ended}; {END_OF_SOURCE}')
                    self.diagnostics.set_state(DiagnosticStatus.WARN, 'source ended')
                return
            except Exception as error:  # SourceError, a bad spec, a decoder failure: retry
                delay = backoff.next_delay()
                self.get_logger().error(f'{error}; trying again in {delay:.1f} s')
                self.diagnostics.errors += 1
                self.diagnostics.set_state(DiagnosticStatus.ERROR, str(error))
                self._stop.wait(delay)
            finally:
                if source is not None:
                    source.close()

    def _wait_for_pipeline(self, description: str) -> None:
        """Hold a recording back until wait_for_nodes are up and image_raw has its readers.

        Bounded by wait_timeout. A node counts once it subscribes to a topic (lifecycle nodes
        do on activation); the graph can show an image reader a moment before DDS has matched
        it, so each image publisher must also have matched every awaited reader of its topic.
        """
        wanted = [qualified_node_name(name, self.get_namespace())
                  for name in self.params.wait_for_nodes if name]
        count = self.params.wait_for_subscribers
        timeout = self.params.wait_timeout
        if not (wanted or count) or not timeout:
            return

        def unmatched(publisher) -> set[str]:
            readers = {qualified_node_name(r.node_name, r.node_namespace) for r in
                       self.get_subscriptions_info_by_topic(publisher.topic_name)}
            awaited_readers = readers.intersection(wanted)
            return (awaited_readers if publisher.get_subscription_count() < len(awaited_readers)
                    else set())

        def missing() -> list[str]:
            waiting = set().union(*(unmatched(publisher) for publisher in
                                    (self.image_pub, self.detect_pub, self.compressed_pub,
                                     self.detect_compressed_pub) if publisher is not None))
            absent = [name for name in wanted if not self._subscribes(name) or name in waiting]
            matched = self.image_pub.get_subscription_count()
            if matched < count:
                absent.append(f'{count} image_raw subscribers ({matched} now)')
            return absent

        absent = missing()
        if not absent:
            return
        self.get_logger().info(
            f'waiting up to {timeout:.0f} s for {", ".join(absent)}, so that {description} '
            'is processed from its first frame')
        self.diagnostics.set_state(DiagnosticStatus.OK, f'waiting for {", ".join(absent)}')
        start = time.monotonic()
        while absent and time.monotonic() - start < timeout and not self._stop.wait(0.1):
            absent = missing()
        if absent and not self._stop.is_set():
            self.get_logger().warning(
                f'{", ".join(absent)} still not up after {timeout:.0f} s (wait_timeout); '
                'playing without them')
        elif not absent:
            self.get_logger().info(f'pipeline ready after {time.monotonic() - start:.1f} s')

    def _subscribes(self, name: str) -> bool:
        """Return whether the node of absolute name `name` exists and subscribes to a topic."""
        namespace, _, node = name.rpartition('/')
        try:
            return bool(self.get_subscriber_names_and_types_by_node(node, namespace or '/'))
        except NodeNameNonExistentError:
            return False

    def _publish_frames(self, source: FrameSource) -> SourceEnded | None:
        """Publish frames from an open source; return its end, or None when stopped.

        Raises when the source fails.
        """
        while not self._stop.is_set():
            try:
                frame = source.read()
            except SourceEnded as ended:
                return ended
            except BadFrame as error:   # one frame: the next may be fine
                self._skipped(str(error))
                continue
            pixels = functools.cache(lambda: frame.image)
            reduced = functools.cache(lambda: frame.reduced(self.params.detect_size))
            try:
                # What the pixel topics' readers need is decoded before anything goes out: a
                # source's JPEG that does not decode goes out on no topic.
                for publisher, decode in ((self.image_pub, pixels), (self.detect_pub, reduced)):
                    if _read(publisher):
                        decode()
            except BadFrame as error:
                self._skipped(f'{source.description}: frame {frame.index} skipped ({error})')
                continue
            self._publish(Header(stamp=sec_to_time(frame.stamp), frame_id=self.params.frame_id),
                          frame.width, frame.height, pixels, reduced, jpeg=frame.jpeg)
            self.diagnostics.processed(time.time() - frame.stamp)
            # One update, so a status never pairs one frame's position with another's stamp.
            self.diagnostics.values.update({
                LATEST_FRAME_KEY: str(frame.index),
                LATEST_FRAME_STAMP_KEY: f'{frame.stamp:.6f}'})
        return None

    def _skipped(self, message: str) -> None:
        """Count and log a frame the source could not give usable (throttled)."""
        self.diagnostics.errors += 1
        self.get_logger().warning(message, throttle_duration_sec=5.0)

    def destroy_node(self) -> None:
        """Stop the reading thread before the node goes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        super().destroy_node()


def _read(publisher) -> bool:
    """Return whether publisher exists and has subscribers (only then is a frame converted)."""
    return publisher is not None and publisher.get_subscription_count() > 0


def qualified_node_name(name: str, namespace: str) -> str:
    """Return name as an absolute node name: relative names live in namespace."""
    if name.startswith('/'):
        return name
    return f'{namespace.rstrip("/")}/{name}'


def main(args: list[str] | None = None) -> int:
    """Run the camera node until shut down."""
    return run_node(CameraNode, args)
