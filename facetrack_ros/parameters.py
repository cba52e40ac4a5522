"""Declare node parameters from one table per node, with descriptors, ranges and validation.

Each node module lists its parameters as `PARAMETERS: tuple[ParamSpec, ...]`; the same table
declares them (with a ParameterDescriptor each), refuses invalid values with a reason, and
generates the README's parameter reference (scripts/param_reference.py), so they cannot drift.
"""

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
import yaml

from facetrack_ros.conversions import StampedCache


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: name, default, description (with units) and constraints."""

    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: Sequence[str] = ()
    read_only: bool = False
    #: Taken when a lifecycle node configures: refused while it is configured (cleanup first).
    at_configure: bool = False
    #: Extra check returning an error text, or None when the value is fine.
    check: Callable[[Any], str | None] | None = None

    def descriptor(self) -> ParameterDescriptor:
        """Return the ParameterDescriptor that rqt and `ros2 param describe` show."""
        text = self.description
        if self.choices:
            text += f' One of: {", ".join(self.choices)}.'
        if self.at_configure:
            text += f' ({AT_CONFIGURE})'
        descriptor = ParameterDescriptor(description=text, read_only=self.read_only)
        bounded = self.min_value is not None and self.max_value is not None
        if bounded and not isinstance(self.default, bool):
            if isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(
                    from_value=int(self.min_value), to_value=int(self.max_value), step=0)]
            elif isinstance(self.default, float):
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.min_value), to_value=float(self.max_value), step=0.0)]
        return descriptor

    def error(self, value: Any) -> str | None:
        """Return why value is invalid for this parameter, or None."""
        if self.min_value is not None and value < self.min_value:
            return f'{self.name}={value!r} is below the minimum {self.min_value}'
        if self.max_value is not None and value > self.max_value:
            return f'{self.name}={value!r} is above the maximum {self.max_value}'
        if self.choices and value not in self.choices:
            return f'{self.name}={value!r} is not one of {", ".join(self.choices)}'
        return self.check(value) if self.check else None


#: What the description of an at_configure parameter says.
AT_CONFIGURE = 'taken at configure: set it while the node is unconfigured'


class InvalidParameterError(ValueError):
    """A parameter value refused at start-up; the message names the parameter and why."""


def offline_parameters(node: str, specs: Sequence[ParamSpec], params_file: Path | None = None,
                       **overrides: Any) -> SimpleNamespace:
    """Return a node's parameters where no node runs (a command-line tool, a benchmark).

    As the node would have them: its declared defaults, then the `ros__parameters` of node
    (`/**/<node>`, `/<node>` or `<node>`) in params_file, then overrides that are not None;
    each checked as at start-up (InvalidParameterError). Unknown names are refused.
    """
    values = {spec.name: spec.default for spec in specs}
    given = {}
    if params_file is not None:
        sections = yaml.safe_load(Path(params_file).read_text()) or {}
        for key in (f'/**/{node}', f'/{node}', node):
            given.update((sections.get(key) or {}).get('ros__parameters', {}))
    given.update({name: value for name, value in overrides.items() if value is not None})
    unknown = set(given) - set(values)
    if unknown:
        raise InvalidParameterError(f'{node} has no parameter {", ".join(sorted(unknown))}')
    values.update(given)
    for spec in specs:
        reason = spec.error(values[spec.name])
        if reason:
            raise InvalidParameterError(reason)
    return SimpleNamespace(**values)


def declare_parameters(node: Node, specs: Sequence[ParamSpec],
                       configured: Callable[[], bool] = lambda: False) -> SimpleNamespace:
    """Declare specs on node and return their values; later invalid sets are refused.

    Raises InvalidParameterError when a value given at start-up (YAML or command line) is
    invalid, so a misconfigured node stops with the reason instead of running wrongly. A set
    of an at_configure parameter is refused while configured() (a lifecycle node holding what
    configure loaded from it): it would change nothing until the next configure.
    """
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, spec.descriptor())
    try:
        values = SimpleNamespace(**{
            spec.name: node.get_parameter(spec.name).value for spec in specs})
    except ParameterUninitializedException as error:   # given [] from a YAML or the CLI
        raise InvalidParameterError(
            f'{error}: ROS 2 parameters cannot type an empty list; give [\'\'] for none') \
            from error
    for spec in specs:
        reason = spec.error(getattr(values, spec.name))
        if reason:
            raise InvalidParameterError(reason)

    def on_set(parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            spec = by_name.get(parameter.name)
            reason = spec.error(parameter.value) if spec else None
            if not reason and spec and spec.at_configure and configured():
                reason = f'{spec.name} is {AT_CONFIGURE} (lifecycle cleanup)'
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        for parameter in parameters:
            if parameter.name in by_name:
                setattr(values, parameter.name, parameter.value)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


#: Image QoS choices: 'sensor_data' (best effort, keep last 1: a slow consumer sees the newest
#: frame instead of a backlog) or 'reliable' (for rosbag play and lossless pipelines).
IMAGE_QOS = ParamSpec(
    'image_qos', 'sensor_data',
    'QoS of image topics: sensor_data (best effort, newest frame) or reliable.',
    choices=('sensor_data', 'reliable'), read_only=True)


def image_transport(topic: str, why: str) -> ParamSpec:
    """Return the `image_transport` parameter of a node that reads topic: raw or compressed."""
    return ParamSpec('image_transport', 'compressed',
                     f'Take {topic}/compressed (JPEG; {why}) or {topic} (raw).',
                     choices=('compressed', 'raw'), read_only=True)


#: For nodes that pair an image with the tracks of its frame, which arrive as late as the
#: detector is slow: 3 s keeps the frames of a detector slowed to 0.5 frames a second by
#: other work (tracks 2-2.5 s behind the camera), at any camera rate. As the camera's JPEG
#: (the default transport) 3 s of 30 fps take 3 MiB at 640x360 and 7 MiB at 1080p; raw
#: 1080p frames (6 MiB each) reach IMAGE_CACHE_MIB in 1.4 s.
IMAGE_CACHE_SECONDS = ParamSpec(
    'image_cache_seconds', 3.0,
    'Recent images kept to pair with tracks that arrive later, by camera time [s].',
    0.1, 60.0, read_only=True)
IMAGE_CACHE_MIB = ParamSpec(
    'image_cache_mib', 256,
    'Most memory the kept images take; beyond it the oldest go first [MiB].', 1, 65536,
    read_only=True)


def image_cache(p: SimpleNamespace) -> StampedCache:
    """Return the image cache of a node's IMAGE_CACHE_SECONDS and IMAGE_CACHE_MIB parameters."""
    return StampedCache(span_s=p.image_cache_seconds, max_bytes=p.image_cache_mib * 2 ** 20)


#: For lifecycle nodes, so `ros2 run` works without a lifecycle manager.
AUTOSTART = ParamSpec('autostart', True,
                      'Configure and activate on start (no lifecycle manager).', read_only=True)


def image_qos_profile(name: str) -> QoSProfile:
    """Return the QoS profile for an IMAGE_QOS choice."""
    if name == 'reliable':
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                          history=HistoryPolicy.KEEP_LAST)
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                      history=HistoryPolicy.KEEP_LAST)


#: Detections, tracks and faces: reliable, so none is lost between nodes.
RELIABLE_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                          history=HistoryPolicy.KEEP_LAST)

#: person_events and identified_faces, what frame_history records: reliable, and the tracker
#: keeps its last messages for late joiners. A frame_history that matched late (a slow start
#: on a busy machine) or restarted gets what it missed and skips what it stored already; a `ros2
#: topic echo --qos-durability transient_local` started after the graph gets the recent
#: events. Volatile subscribers (the annotator) match too and get only new messages.
RECORDED_QOS = QoSProfile(depth=RELIABLE_QOS.depth, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL,
                          history=HistoryPolicy.KEEP_LAST)
#: known_people, from the fleet node to the tracker: the latest list, also for late joiners.
KNOWN_PEOPLE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: person_forgotten, from frame_history to the tracker and the fleet node: every subscriber,
#: also one that starts later, gets the recent withdrawals (a tracker restarting must not
#: re-learn a forgotten face from its own state).
FORGOTTEN_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL,
                           history=HistoryPolicy.KEEP_LAST)
