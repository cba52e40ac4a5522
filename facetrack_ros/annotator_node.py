"""annotator node: person boxes, ids, face boxes, match scores and active count on an image.

For rqt_image_view. It is a node of its own so that, when it is not launched (the default),
annotation costs nothing; when launched it draws only while someone subscribes.
"""

import time

from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from facetrack_ros.conversions import (bgr_to_image, ImageConversionError, message_to_bgr,
                                       time_to_sec, transport_topic)
from facetrack_ros.core.annotate import draw_overlays, Overlay
from facetrack_ros.core.tracking import usable_box
from facetrack_ros.diagnostics import NodeDiagnostics
from facetrack_ros.msg import PersonDetectionArray
from facetrack_ros.parameters import (declare_parameters, image_cache, IMAGE_CACHE_MIB,
                                      IMAGE_CACHE_SECONDS, IMAGE_QOS, image_qos_profile,
                                      image_transport, RELIABLE_QOS)
from facetrack_ros.runner import run_node

ANNOTATED_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)

PARAMETERS = (
    image_transport('image_raw', 'the camera encodes each frame once for every reader; '
                    'only the frames drawn are decoded'),
    IMAGE_CACHE_SECONDS,
    IMAGE_CACHE_MIB,
    IMAGE_QOS,
)


class AnnotatorNode(Node):
    """Pairs `tracks` and `identified_faces` with their images and publishes `annotated`."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters and wire topics."""
        super().__init__('annotator', **kwargs)
        self.params = declare_parameters(self, PARAMETERS)
        self.images = image_cache(self.params)
        # Track id -> its latest face box as fractions of its person box then (x1, y1, x2, y2),
        # drawn on the track's box of each frame; pruned to each frame's tracks.
        self.faces: dict[int, np.ndarray] = {}
        self.diagnostics = NodeDiagnostics(self)
        self.diagnostics.set_state(DiagnosticStatus.OK, 'annotating while subscribed')
        guarded = self.diagnostics.guarded
        # Reliable, keep last 2: every subscriber (rqt's best effort, a recorder's reliable)
        # matches, and a slow one never makes the publisher queue frames.
        self.publisher = self.create_publisher(Image, 'annotated', ANNOTATED_QOS)
        self.create_subscription(*transport_topic('image_raw', self.params.image_transport),
                                 guarded(self.on_image), image_qos_profile(self.params.image_qos))
        self.create_subscription(PersonDetectionArray, 'tracks', guarded(self.on_tracks),
                                 RELIABLE_QOS)
        self.create_subscription(PersonDetectionArray, 'identified_faces',
                                 guarded(self.on_faces), RELIABLE_QOS)

    def on_image(self, msg: Image | CompressedImage) -> None:
        """Keep recent images, only while someone watches the output."""
        if self.publisher.get_subscription_count() > 0:
            self.images.add(msg)

    def on_faces(self, msg: PersonDetectionArray) -> None:
        """Remember each track's latest face box, where it lay in the track's box.

        Faces come every couple of seconds, a few frames after their own: placed in the
        track's box of each frame, the face box moves with the person.
        """
        for face in msg.detections:
            box = np.asarray(face.box, np.float64)
            if usable_box(box) and usable_box(face.face_box):
                self.faces[face.track_id] = (np.asarray(face.face_box) - np.tile(box[:2], 2)
                                             ) / np.tile(box[2:] - box[:2], 2)

    def on_tracks(self, msg: PersonDetectionArray) -> None:
        """Draw the tracks onto their image and publish it."""
        current = {person.track_id for person in msg.detections}
        self.faces = {k: v for k, v in self.faces.items() if k in current}
        image_msg = self.images.get(msg.header.stamp, remove=True)
        if image_msg is None:
            if self.publisher.get_subscription_count() > 0:   # else nothing is kept
                self.diagnostics.dropped += 1
            return
        try:
            image = message_to_bgr(image_msg)
        except ImageConversionError as error:
            self.diagnostics.errors += 1
            self.get_logger().warning(f'skipping image: {error}', throttle_duration_sec=5.0)
            return
        # Boxes are in the pixels of image_width x image_height (the camera's full frame);
        # the image drawn on may be another size.
        scale = np.tile([image.shape[1] / (msg.image_width or image.shape[1]),
                         image.shape[0] / (msg.image_height or image.shape[0])], 2)
        overlays = []
        for person in msg.detections:
            label = f'{person.person_id or "?"} #{person.track_id}'
            box = np.asarray(person.box) * scale
            face = self.faces.get(person.track_id)
            overlays.append(Overlay(box=box, label=label, score=person.match_similarity,
                                    face_box=None if face is None else np.tile(box[:2], 2)
                                    + face * np.tile(box[2:] - box[:2], 2)))
        canvas = draw_overlays(image, overlays, header=f'active: {len(msg.detections)}')
        self.publisher.publish(bgr_to_image(canvas, msg.header))
        self.diagnostics.processed(time.time() - time_to_sec(msg.header.stamp))


def main(args: list[str] | None = None) -> int:
    """Run the annotator node."""
    return run_node(AnnotatorNode, args)
