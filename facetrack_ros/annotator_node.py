"""annotator node: person boxes, ids, face boxes, match scores and active count on an image.

For rqt_image_view. It is a node of its own so that, when it is not launched (the default),
annotation costs nothing; when launched it draws only while someone subscribes.
"""

from collections import OrderedDict

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from facetrack_ros.conversions import bgr_to_image, image_to_bgr, ImageConversionError, time_to_ns
from facetrack_ros.core.annotate import draw_overlays, Overlay
from facetrack_ros.msg import PersonDetectionArray
from facetrack_ros.parameters import (declare_parameters, IMAGE_QOS, image_qos_profile,
                                      ParamSpec, RELIABLE_QOS)
from facetrack_ros.runner import run_node

ANNOTATED_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)

PARAMETERS = (
    ParamSpec('image_cache_size', 30,
              'Recent images kept to pair with tracks that arrive later [frames].', 1, 1000),
    IMAGE_QOS,
)


class AnnotatorNode(Node):
    """Pairs `tracks` and `identified_faces` with their images and publishes `annotated`."""

    def __init__(self, **kwargs) -> None:
        """Declare parameters and wire topics."""
        super().__init__('annotator', **kwargs)
        self.params = declare_parameters(self, PARAMETERS)
        qos = image_qos_profile(self.params.image_qos)
        self.images: OrderedDict[int, Image] = OrderedDict()
        self.faces: dict[str, tuple[np.ndarray, float]] = {}
        # Reliable, keep last 2: every subscriber (rqt's best effort, a recorder's reliable)
        # matches, and a slow one never makes the publisher queue frames.
        self.publisher = self.create_publisher(Image, 'annotated', ANNOTATED_QOS)
        self.create_subscription(Image, 'image_raw', self.on_image, qos)
        self.create_subscription(PersonDetectionArray, 'tracks', self.on_tracks, RELIABLE_QOS)
        self.create_subscription(
            PersonDetectionArray, 'identified_faces', self.on_faces, RELIABLE_QOS)

    def on_image(self, msg: Image) -> None:
        """Keep recent images, only while someone watches the output."""
        if self.publisher.get_subscription_count() == 0:
            return
        self.images[time_to_ns(msg.header.stamp)] = msg
        while len(self.images) > self.params.image_cache_size:
            self.images.popitem(last=False)

    def on_faces(self, msg: PersonDetectionArray) -> None:
        """Remember each person's latest face box and similarity."""
        for face in msg.detections:
            self.faces[face.person_id] = (np.asarray(face.face_box), face.match_similarity)

    def on_tracks(self, msg: PersonDetectionArray) -> None:
        """Draw the tracks onto their image and publish it."""
        image_msg = self.images.pop(time_to_ns(msg.header.stamp), None)
        if image_msg is None:
            return
        try:
            image = image_to_bgr(image_msg)
        except ImageConversionError as error:
            self.get_logger().warning(f'skipping image: {error}', throttle_duration_sec=5.0)
            return
        overlays = []
        for person in msg.detections:
            face_box, similarity = self.faces.get(person.person_id, (None, 0.0))
            overlays.append(Overlay(
                box=np.asarray(person.box), label=f'{person.person_id} #{person.track_id}',
                face_box=face_box, score=person.match_similarity or similarity))
        canvas = draw_overlays(image, overlays, header=f'active: {len(msg.detections)}')
        self.publisher.publish(bgr_to_image(canvas, msg.header))


def main(args: list[str] | None = None) -> int:
    """Run the annotator node."""
    return run_node(AnnotatorNode, args)
