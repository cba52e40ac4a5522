"""ROS-free algorithms: plain numpy/OpenCV, tested without rclpy."""
