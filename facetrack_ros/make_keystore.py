"""make_keystore: write the SROS2 keystore of a facetrack_ros deployment (see README).

Usage: ros2 run facetrack_ros make_keystore ~/keystore --robots r1 r2 --operator operator
"""

import argparse
import os
import sys

from facetrack_ros.graph import RELAY
from facetrack_ros.keystore import CA_DAYS, create_keystore, DEFAULT_DAYS


def parse_arguments(args: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog='make_keystore', description=__doc__.splitlines()[0].split(': ', 1)[1],
        epilog='Existing CAs in the folder are kept (enclaves made before stay valid); the '
               'governance and the enclaves of the robots named are rewritten.')
    parser.add_argument('keystore', help='keystore folder (created if missing); launch with '
                                         'keystore:=<this folder>')
    parser.add_argument('--robots', nargs='+', default=['/'], metavar='NAMESPACE',
                        help='robot namespaces, as given to the launch file\'s namespace '
                             'argument ("/" for a robot without one; default: /)')
    parser.add_argument('--operator', action='append', default=[], metavar='NAME',
                        help='add the tool enclave /facetrack_ros/NAME, allowed to call every '
                             'service and read every topic of these robots (ros2 CLI, rqt); '
                             'repeat for several')
    parser.add_argument('--days', type=int, default=DEFAULT_DAYS,
                        help=f'validity of the enclaves\' certificates and permissions '
                             f'(default {DEFAULT_DAYS}; new CAs get {CA_DAYS} or more)')
    parser.add_argument('--domain-id', type=int,
                        default=int(os.environ.get('ROS_DOMAIN_ID') or 0),
                        help='ROS_DOMAIN_ID the robots use (default: $ROS_DOMAIN_ID or 0)')
    parser.add_argument('--camera-relay', metavar='TOPIC',
                        help='the topic a camera relays with source:=topic:TOPIC, if any '
                             '(relative names are in each robot\'s namespace)')
    return parser.parse_args(args)


def main(args: list[str] | None = None) -> int:
    """Write the keystore and list its enclaves; return a process exit code."""
    options = parse_arguments(args)
    bindings = {RELAY: options.camera_relay} if options.camera_relay else {}
    try:
        enclaves = create_keystore(options.keystore, options.robots, options.domain_id,
                                   options.days, options.operator, bindings)
    except (ValueError, OSError) as error:
        print(f'make_keystore: {error}', file=sys.stderr)
        return 1
    print(f'keystore {os.path.abspath(options.keystore)} (domain {options.domain_id}, '
          f'{options.days} days):')
    for enclave in enclaves:
        print(f'  {enclave}')
    return 0
