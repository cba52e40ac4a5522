#!/usr/bin/env python3
"""Point the PyPI ROS 2 wheels' CMake exports at this venv instead of their build image.

The wheels are built in a manylinux image whose Python lives under /opt/python/cp311-cp311; their
exported CMake files and ament parent-prefix markers keep naming it. Rewrite those paths to the
running interpreter's include directory, site-packages and prefix. Safe to run repeatedly.
"""

import os
import sys
import sysconfig

BUILD_PREFIX = '/opt/python/cp311-cp311'


def replacements() -> list[tuple[str, str]]:
    """Return (old, new) pairs, most specific first."""
    version = f'python{sys.version_info.major}.{sys.version_info.minor}'
    paths = sysconfig.get_paths()
    return [
        (f'{BUILD_PREFIX}/include/{version}', paths['include']),
        (f'{BUILD_PREFIX}/lib/{version}/site-packages', paths['purelib']),
        (BUILD_PREFIX, sys.prefix),
    ]


def patch_tree(root: str) -> int:
    """Rewrite every text file under root that names the build prefix; return files changed."""
    changed = 0
    pairs = replacements()
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            try:
                with open(path, 'r', encoding='utf-8') as f:
                    text = f.read()
            except (UnicodeDecodeError, OSError):
                continue
            if BUILD_PREFIX not in text:
                continue
            for old, new in pairs:
                text = text.replace(old, new)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
            changed += 1
    return changed


def main() -> None:
    """Patch share/ and lib/cmake of the current prefix."""
    total = sum(patch_tree(os.path.join(sys.prefix, sub)) for sub in ('share', 'lib/cmake'))
    print(f'patch_ros_wheels: {total} files rewritten under {sys.prefix}')


if __name__ == '__main__':
    main()
