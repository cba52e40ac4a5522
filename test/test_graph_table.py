"""facetrack_ros.graph.GRAPH matches the real nodes: their topics, services and types over DDS.

The keystore grants each node exactly its GRAPH entry, so an entry that drifts from the node
would, on a secured robot, deny the node what it needs or allow what it no longer uses. Every
node executable is started (in a namespace of its own, with real rclpy over real DDS; lifecycle
nodes activated, as autostart does) and its endpoints are compared with the table: once with
the default parameters and once with the parameter values that turn on its optional endpoints
(the `when` of its entries: an optional endpoint must be entered with its `when` to be seen).
When this test fails, update the node's entry in facetrack_ros/graph.py.
"""

import importlib
from pathlib import Path
import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from facetrack_ros.graph import Endpoint, GRAPH, RELAY, resolve, with_builtins
from facetrack_ros.graph_runner import GraphRunner

pytestmark = pytest.mark.ros

RELAY_NAME = 'relay_in'
#: What each node needs to start here without hardware or downloads (never a `when` key).
START_OVERRIDES = {
    'camera': {'source': '/nonexistent/video.mp4'},   # retries with backoff: no CPU spent
    'detector': {'model': '/nonexistent/model.pt'},   # face-first fallback, no model file
}
KINDS = ('publishes', 'subscribes', 'serves', 'calls')


def _defaults() -> dict[str, dict[str, object]]:
    """Return {node: {parameter: default}} for every node that exists (is not provisional)."""
    return {node: {spec.name: spec.default for spec in importlib.import_module(
                   f'facetrack_ros.{node}_node').PARAMETERS}
            for node, interfaces in GRAPH.items() if not interfaces.provisional}


def _applies(endpoint: Endpoint, parameters: dict[str, object]) -> bool:
    return all(parameters.get(key) == value for key, value in endpoint.when)


def _variants(node: str, defaults: dict[str, object]) -> list[dict[str, object]]:
    """Return the parameter sets to start node with: defaults, then every optional endpoint."""
    optional = {}
    for kind in KINDS:
        for endpoint in getattr(GRAPH[node], kind):
            bound = endpoint.bind({RELAY: RELAY_NAME})
            if not _applies(bound, defaults):
                for key, value in bound.when:
                    assert optional.setdefault(key, value) == value, (
                        f'{node}: endpoints need {key}={value!r} and {optional[key]!r}; '
                        'extend this test to start the node once per value')
    return [{}, optional] if optional else [{}]


def _expected(node: str, namespace: str, parameters: dict[str, object]) -> dict[str, set]:
    """Return the (name, type) pairs the table promises, without provisional entries."""
    full = with_builtins(GRAPH[node])
    expected = {}
    for kind in KINDS:
        expected[kind] = {
            (resolve(bound.name, node, namespace), bound.type)
            for bound in (e.bind({RELAY: RELAY_NAME}) for e in getattr(full, kind))
            if not bound.provisional and _applies(bound, parameters)}
    return expected


def _provisional(node: str, namespace: str) -> dict[str, set]:
    full = with_builtins(GRAPH[node])
    return {kind: {resolve(e.name, node, namespace) for e in getattr(full, kind) if e.provisional}
            for kind in KINDS}


def _actual(probe, node: str, namespace: str) -> dict[str, set]:
    lookups = {'publishes': probe.get_publisher_names_and_types_by_node,
               'subscribes': probe.get_subscriber_names_and_types_by_node,
               'serves': probe.get_service_names_and_types_by_node,
               'calls': probe.get_client_names_and_types_by_node}
    try:
        return {kind: {(name, kind_type) for name, types in lookup(node, namespace)
                       for kind_type in types}
                for kind, lookup in lookups.items()}
    except rclpy.node.NodeNameNonExistentError:
        return {kind: set() for kind in KINDS}


def test_every_node_module_has_an_entry():
    """Each *_node module is in GRAPH; each GRAPH node without a module is provisional."""
    import facetrack_ros
    modules = {p.stem[:-len('_node')] for p in Path(facetrack_ros.__file__).parent.glob(
        '*_node.py')}
    assert modules <= set(GRAPH), f'add {modules - set(GRAPH)} to facetrack_ros/graph.py'
    for node in set(GRAPH) - modules:
        assert GRAPH[node].provisional, f'{node} has no {node}_node module: mark it provisional'
    for node in modules:
        assert not GRAPH[node].provisional, f'{node} exists now: drop its provisional mark'


def test_table_matches_running_nodes(tmp_path, ros_context):
    """Every node's real endpoints (name and type) are exactly its entry, in a namespace."""
    defaults = _defaults()
    runs = []   # (namespace, node, parameters)
    runners = []
    probe = rclpy.create_node('graph_table_probe', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(probe)
    try:
        for index in range(2):
            namespace = f'/graph_table_{index}'
            runner = GraphRunner(tmp_path / f'logs{index}', None, namespace)
            runners.append(runner)
            for node in defaults:
                variants = _variants(node, defaults[node])
                if index >= len(variants):
                    continue
                overrides = {**START_OVERRIDES.get(node, {}), **variants[index]}
                if node == 'tracker':
                    overrides['event_log_dir'] = str(tmp_path / 'events')
                if node == 'frame_history':
                    overrides['history_dir'] = str(tmp_path / f'history{index}')
                runner.start(node, **overrides)
                runs.append((namespace, node, {**defaults[node], **overrides}))
        expected = {(ns, node): _expected(node, ns, params) for ns, node, params in runs}

        def all_up() -> bool:
            return all(not (wanted[kind] - _actual(probe, node, ns)[kind])
                       for (ns, node), wanted in expected.items() for kind in KINDS)

        deadline = time.monotonic() + 90   # model loading on a busy machine
        while not all_up() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.5)
            failed = [name for runner in runners for name in runner.failed()]
            assert not failed, f'nodes exited: {failed}\n' + '\n'.join(r.tail() for r in runners)
        # Endpoints appear within one discovery round of each other; let the last ones arrive.
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)

        problems = []
        for (ns, node), wanted in expected.items():
            actual = _actual(probe, node, ns)
            provisional = _provisional(node, ns)
            for kind in KINDS:
                for name, kind_type in sorted(wanted[kind] - actual[kind]):
                    problems.append(f'{ns}/{node} {kind} {name} ({kind_type}) per the table, '
                                    'but the node does not: remove or fix it')
                for name, kind_type in sorted(actual[kind] - wanted[kind]):
                    if name in provisional[kind]:
                        problems.append(f'{ns}/{node} {kind} {name} ({kind_type}) now: drop '
                                        'its provisional mark (and give its type)')
                    else:
                        problems.append(f'{ns}/{node} {kind} {name} ({kind_type}), missing '
                                        'from the table')
        assert not problems, ('facetrack_ros/graph.py GRAPH drifted from the nodes:\n  '
                              + '\n  '.join(problems))
    finally:
        for runner in runners:
            runner.stop()
        probe.destroy_node()
