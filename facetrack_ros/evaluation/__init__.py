"""Evaluation tooling: labelled photos, composed clips with truth, identity metrics, calibration.

Everything but run.py (which starts the graph and probes it over rclpy) is ROS-free. Scripts
and tests use it; the nodes never do.
"""
