"""facetrack_ros: see people, follow them, remember them and find them again."""
