"""History search <-> ROS messages, shared by every node that runs or answers a search.

The frame_history node's BacktrackSearch service and the fleet's search both hand a
core.history.SearchQuery to HistorySearch and send back its SearchOutcome; these are the
translations, so both speak the same messages.
"""

from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from facetrack_ros.conversions import image_to_bgr, ns_to_time, time_to_ns
from facetrack_ros.core.history import Appearance, SearchQuery, StoredFrame
from facetrack_ros.msg import Appearance as AppearanceMsg
from facetrack_ros.msg import FaceMatch
from facetrack_ros.srv import BacktrackSearch


def query_from_request(request, thumbnail_width: int) -> SearchQuery:
    """Return the core query of a BacktrackSearch request (or one with the same fields).

    Zero centre, zero min_similarity mean "now" and "the robot's default", as the .srv says.
    Raises ImageConversionError for a query image that cannot be converted.
    """
    return SearchQuery(
        kind=request.query_type, person_id=request.person_id, embedding=request.embedding,
        image=(image_to_bgr(request.image)
               if request.query_type == BacktrackSearch.Request.QUERY_IMAGE else None),
        center_ns=time_to_ns(request.center_stamp) or None, window_s=request.window_width,
        min_similarity=request.min_similarity or None, max_results=request.max_results,
        thumbnails=request.include_thumbnails, thumbnail_width=thumbnail_width,
        deep=request.deep, deep_budget_s=request.deep_budget)


def frame_header(frame: StoredFrame) -> Header:
    """Return the capture header of a stored frame."""
    return Header(stamp=ns_to_time(frame.stamp_ns), frame_id=frame.frame_id)


def appearance_to_msg(appearance: Appearance) -> AppearanceMsg:
    """Return an Appearance message, with its thumbnail when the search attached one."""
    best = appearance.best
    match = FaceMatch(robot_id=best.robot_id, camera_id=best.camera_id,
                      person_id=best.person_id, box=list(best.box),
                      similarity=float(best.similarity))
    match.header.stamp = ns_to_time(best.stamp_ns)
    msg = AppearanceMsg(robot_id=appearance.robot_id, camera_id=appearance.camera_id,
                        person_id=appearance.person_id, sightings=appearance.sightings,
                        first_seen=ns_to_time(appearance.first_seen_ns),
                        last_seen=ns_to_time(appearance.last_seen_ns), best=match)
    thumbnail = appearance.thumbnail
    if thumbnail is not None:
        match.header.frame_id = thumbnail.frame_id
        msg.thumbnail = CompressedImage(header=frame_header(thumbnail),
                                        format=thumbnail.format, data=thumbnail.data)
    return msg
