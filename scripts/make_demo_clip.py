#!/usr/bin/env python3
"""Make the demo's sample clip from the labelled photos in face_recognition's PyPI sdist.

Obama walks in, Biden joins, Obama leaves for long enough to be reported out, then comes back
(another photo of him) and must be re-identified. 640x360, 10 FPS, 14 s. Prints the clip path
and the query photo path. Cached: a second run only prints.
"""

import argparse
from pathlib import Path
import subprocess
import sys
import tarfile

import cv2
import numpy as np

SDIST = 'face_recognition==1.3.0'
PHOTOS = ('obama.jpg', 'obama2.jpg', 'biden.jpg')
SIZE = (640, 360)
FPS = 10


def fetch_photos(cache: Path) -> dict[str, Path]:
    """Download the sdist once and extract the labelled test photos."""
    out = cache / 'photos'
    if all((out / name).is_file() for name in PHOTOS):
        return {name: out / name for name in PHOTOS}
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                    '--no-binary', ':all:', SDIST, '-d', str(cache)], check=True)
    archive = next(cache.glob('face_recognition-*.tar.gz'))
    out.mkdir(exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.endswith(tuple(f'test_images/{n}' for n in PHOTOS)):
                (out / Path(member.name).name).write_bytes(tar.extractfile(member).read())
    return {name: out / name for name in PHOTOS}


def person_sprite(photo: Path, height: int) -> np.ndarray:
    """Return the photo scaled to a given height, as the 'person' that moves in the clip."""
    image = cv2.imread(str(photo))
    scale = height / image.shape[0]
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def paste(canvas: np.ndarray, sprite: np.ndarray, x: int, y: int) -> None:
    """Paste sprite with its top-left corner at (x, y), clipped to the canvas."""
    h, w = sprite.shape[:2]
    x1, y1 = max(x, 0), max(y, 0)
    x2, y2 = min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    if x2 > x1 and y2 > y1:
        canvas[y1:y2, x1:x2] = sprite[y1 - y:y2 - y, x1 - x:x2 - x]


def render(photos: dict[str, Path], path: Path) -> None:
    """Write the scripted clip."""
    obama, obama_back = (person_sprite(photos[n], 230) for n in PHOTOS[:2])
    biden = person_sprite(photos['biden.jpg'], 320)  # full-body photo: a smaller face
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), FPS, SIZE)
    rng = np.random.default_rng(7)
    background = np.clip(rng.normal(90, 12, (SIZE[1], SIZE[0], 3)), 0, 255).astype(np.uint8)
    for index in range(14 * FPS):
        t = index / FPS
        frame = background.copy()
        if t < 5.0:                                  # Obama walks in, stays, walks out left
            x = int(-150 + 120 * min(t, 2.0) - (0 if t < 3.5 else 250 * (t - 3.5)))
            paste(frame, obama, x, 80)
        if 1.5 <= t < 12.0:                          # Biden stands on the right
            paste(frame, biden, 420, 30)
        if t >= 9.0:                                 # Obama comes back (another photo)
            paste(frame, obama_back, int(-200 + 100 * min(t - 9.0, 2.5)), 80)
        writer.write(frame)
    writer.release()


def main() -> None:
    """Make (or find) the clip; print its path and the query photo's path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cache', type=Path,
                        default=Path.home() / '.cache' / 'facetrack_ros' / 'demo')
    args = parser.parse_args()
    photos = fetch_photos(args.cache)
    clip = args.cache / 'demo_clip.mp4'
    if not clip.is_file():
        render(photos, clip)
    print(clip)
    print(photos['obama.jpg'])


if __name__ == '__main__':
    main()
