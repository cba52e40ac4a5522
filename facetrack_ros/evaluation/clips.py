"""Compose test clips from labelled photos, with per-frame ground truth known by construction.

Each person is cut out of a real upper-body photo (GrabCut, seeded with a head-and-torso shape
around the photo's face) and moved over a background along keyframes: they enter, cross,
stand behind panels, turn, leave and come back. Their faces are real faces of known identity;
their size is set in pixels of face height (the face detector's box), from 20 to 150 px.
Turning is a perspective warp of the whole cut-out (a flat card rotated about the vertical
axis through the face): it foreshortens the face but hides nothing and keeps the nose between
the eyes, so it tests detectors on foreshortened faces, not on real profiles (use the real
turned photos and videos for those). In-plane roll is real.

Per frame the truth holds, for each person in view, the box of their visible pixels (nearer
people and panels removed), the visible fraction of their body, the face box, size, visible
fraction and pose. A 16-bit frame number is drawn in the top-left corner (a strip of 8x8 px
cells) so that an evaluation can tell exactly which frame a message came from.

Everything is deterministic: a scene and the photos give the same clip, bit for bit, on one
machine (GrabCut is seeded; the MJPG encoder is OpenCV's).
"""

from dataclasses import asdict, dataclass, field
import hashlib
import json
import math
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from facetrack_ros.core.face import FaceDetector
from facetrack_ros.evaluation.photos import photo_path, PHOTO_IDENTITIES

#: Bumped when rendering changes, so cached clips are rebuilt.
COMPOSER_VERSION = 1
#: Sprites keep at most this face height [px]; clips ask for 20..150 px.
SPRITE_FACE_PX = 170
#: Photos are searched for their face at this longest side [px] (HOG finds 40 px faces).
FACE_SEARCH_SIDE = 800
#: Frame-number strip: cells of this size [px], a white and a black guard cell around 16 bits.
CODE_CELL_PX = 8
CODE_BITS = 16
#: A person counts as visible from this fraction of their body on screen.
VISIBLE_MIN = 0.05
#: Frame rate of every composed clip [Hz].
CLIP_FPS = 10.0
#: Least height of a cut-out, in face heights: YOLOv8n scores shorter busts (a face with a
#: little of the neck) under 0.5 or misses them at 20-45 px faces, measured on the shared
#: photos, so scenes use only photos that show the chest at least.
MIN_SPRITE_FACES = 2.3


@dataclass(frozen=True)
class Sprite:
    """A person cut out of a photo: BGR image, alpha (0..255) and face box x1, y1, x2, y2."""

    key: str
    identity: str
    image: np.ndarray
    alpha: np.ndarray
    face: np.ndarray


@dataclass(frozen=True)
class Key:
    """Where a person is at time t [s] of the clip; values between keys are interpolated.

    x: face centre, fraction of the frame width. face_px: face height [px].
    y: face centre, fraction of the frame height; None stands the person on the scene's ground
    line (the lower body sinks behind it). yaw [deg]: turn about the vertical axis (perspective
    warp, see the module doc). roll [deg]: in-plane tilt.
    """

    t: float
    x: float
    face_px: float
    y: float | None = None
    yaw: float = 0.0
    roll: float = 0.0


@dataclass(frozen=True)
class Actor:
    """One appearance of one person: a photo moved along keys.

    The person is in view from the first key's time to the last one's. depth orders drawing:
    larger is nearer the camera.
    """

    identity: str
    photo: str
    keys: tuple[Key, ...]
    depth: float = 0.0


@dataclass(frozen=True)
class Panel:
    """A static occluder drawn in front of every person: x1, y1, x2, y2 as frame fractions."""

    box: tuple[float, float, float, float]
    colour: tuple[int, int, int] = (70, 80, 90)


@dataclass(frozen=True)
class Scene:
    """A clip to compose.

    background: 'plain' (grey noise), 'street' (the shared street video with its walkers
    removed by a temporal median) or 'clutter' (seeded shapes and stripes).
    ground: fraction of the height where people stand (their lower body is hidden below it,
    usually by a panel); 1.0 is the frame's bottom edge.
    """

    name: str
    size: tuple[int, int]
    duration: float
    background: str
    actors: tuple[Actor, ...]
    panels: tuple[Panel, ...] = ()
    ground: float = 1.0
    seed: int = 0
    note: str = ''


@dataclass(frozen=True)
class TruthPerson:
    """One person in one frame of a composed clip (boxes x1, y1, x2, y2 in frame pixels).

    actor: index of the appearance in the scene; identity: the real person.
    box: bounding box of their visible pixels; visible: that area over their whole body's
    (what the frame and the ground line would show without occluders) [0..1].
    face_box, face_px: where the face is and its height [px]; face_visible [0..1] as visible.
    """

    actor: int
    identity: str
    box: tuple[float, float, float, float]
    visible: float
    face_box: tuple[float, float, float, float]
    face_px: float
    face_visible: float
    yaw: float
    roll: float


@dataclass
class ClipTruth:
    """Ground truth of a whole clip: a header and, per frame, who is where."""

    name: str
    fps: float
    size: tuple[int, int]
    identities: list[str]
    frames: list[list[TruthPerson]] = field(default_factory=list)
    note: str = ''

    def write(self, path: Path) -> None:
        """Write as JSON Lines: the header, then one line per frame."""
        with open(path, 'w') as stream:
            stream.write(json.dumps({'clip': self.name, 'fps': self.fps, 'size': self.size,
                                     'frames': len(self.frames),
                                     'identities': self.identities, 'note': self.note}) + '\n')
            for index, persons in enumerate(self.frames):
                stream.write(json.dumps({'frame': index,
                                         'persons': [asdict(p) for p in persons]}) + '\n')

    @classmethod
    def read(cls, path: Path) -> 'ClipTruth':
        """Read a file written by write()."""
        with open(path) as stream:
            header = json.loads(stream.readline())
            truth = cls(header['clip'], header['fps'], tuple(header['size']),
                        header['identities'], note=header.get('note', ''))
            for line in stream:
                record = json.loads(line)
                truth.frames.append([TruthPerson(**{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in p.items()})
                                     for p in record['persons']])
        return truth


def encode_frame_number(image: np.ndarray, number: int) -> None:
    """Draw number (0..65535) into the top-left corner, see decode_frame_number."""
    if not 0 <= number < 2 ** CODE_BITS:
        raise ValueError(f'frame number {number} does not fit {CODE_BITS} bits')
    cells = [1] + [(number >> bit) & 1 for bit in range(CODE_BITS)] + [0]
    for index, bit in enumerate(cells):
        x = index * CODE_CELL_PX
        image[:CODE_CELL_PX, x:x + CODE_CELL_PX] = 255 if bit else 0


def decode_frame_number(image: np.ndarray) -> int | None:
    """Return the number drawn by encode_frame_number, or None if the corner holds none."""
    cells = CODE_BITS + 2
    if image.shape[0] < CODE_CELL_PX or image.shape[1] < cells * CODE_CELL_PX:
        return None
    grey = image[:CODE_CELL_PX, :cells * CODE_CELL_PX].astype(np.float32).mean(axis=-1)
    quarter = CODE_CELL_PX // 4
    means = [float(grey[quarter:-quarter, i * CODE_CELL_PX + quarter:
                        (i + 1) * CODE_CELL_PX - quarter].mean()) for i in range(cells)]
    # Compressed cells stay far from the middle grey; anything else is not a code.
    if any(48 < m < 208 for m in means) or means[0] < 128 or means[-1] > 128:
        return None
    return sum(1 << bit for bit, m in enumerate(means[1:-1]) if m > 128)


# --- sprites -----------------------------------------------------------------------------

def _person_shape(shape: tuple[int, int], face: np.ndarray) -> np.ndarray:
    """Return a 0/1 head-and-torso mask around a face box, the GrabCut prior."""
    height, width = shape
    x1, y1, x2, y2 = face
    fw, fh, cx = x2 - x1, y2 - y1, (x1 + x2) / 2
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (round(cx), round(y1 + 0.4 * fh)), (round(0.62 * fw), round(0.85 * fh)),
                0, 0, 360, 1, -1)
    cv2.rectangle(mask, (round(cx - 0.3 * fw), round(y2 - 0.1 * fh)),
                  (round(cx + 0.3 * fw), round(y2 + 0.5 * fh)), 1, -1)
    shoulders = y2 + 0.35 * fh
    torso = np.array([[cx - 1.3 * fw, shoulders], [cx + 1.3 * fw, shoulders],
                      [cx + 1.6 * fw, height], [cx - 1.6 * fw, height]])
    cv2.fillPoly(mask, [np.round(torso).astype(np.int32)], 1)
    return mask


def cut_out(photo: np.ndarray, face: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut the person whose face box is face out of photo; return (image, alpha, face).

    GrabCut (seeded, on a half-size copy) starts from a head-and-torso shape: its core is
    certain foreground, its rim probable, further out probable background, the rest
    background. The result is the largest connected part, cropped to its extent.
    """
    half = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    prior = _person_shape(half.shape[:2], np.asarray(face, np.float64) / 2)
    kernel = np.ones((max(3, half.shape[0] // 40),) * 2, np.uint8)
    mask = np.full(half.shape[:2], cv2.GC_BGD, np.uint8)
    mask[cv2.dilate(prior, kernel, iterations=2) > 0] = cv2.GC_PR_BGD
    mask[prior > 0] = cv2.GC_PR_FGD
    mask[cv2.erode(prior, kernel, iterations=2) > 0] = cv2.GC_FGD
    cv2.setRNGSeed(0)
    models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
    cv2.grabCut(half, mask, None, *models, 4, cv2.GC_INIT_WITH_MASK)
    alpha = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(alpha)
    if count > 2:
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        alpha = np.where(labels == largest, 255, 0).astype(np.uint8)
    alpha = cv2.resize(alpha, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (5, 5), 0)
    ys, xs = np.nonzero(alpha > 127)
    x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    offset = np.array([x1, y1, x1, y1], np.float32)
    return (np.ascontiguousarray(photo[y1:y2, x1:x2]), np.ascontiguousarray(alpha[y1:y2, x1:x2]),
            np.asarray(face, np.float32) - offset)


def load_sprite(shared_dir: Path, key: str, cache_dir: Path,
                detector: FaceDetector | None = None) -> Sprite:
    """Return the cut-out person of a single-face photo, from cache_dir when made before.

    The photo's face is its largest HOG face; the photo is scaled so that face is at most
    SPRITE_FACE_PX high. Raise ValueError when the photo has no face.
    """
    path = photo_path(shared_dir, key)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    stem = cache_dir / f'{Path(key).stem}-{digest}-v{COMPOSER_VERSION}'
    png, meta = stem.with_suffix('.png'), stem.with_suffix('.json')
    if png.is_file() and meta.is_file():
        bgra = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        face = np.array(json.loads(meta.read_text())['face'], np.float32)
        return Sprite(key, PHOTO_IDENTITIES[key], bgra[..., :3].copy(), bgra[..., 3].copy(),
                      face)
    photo = cv2.imread(str(path))
    if photo is None:
        raise ValueError(f'cannot read photo {path}')
    shrink = min(1.0, FACE_SEARCH_SIDE / max(photo.shape[:2]))
    small = cv2.resize(photo, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    faces = (detector or FaceDetector('hog', upsample=1)).detect(small)
    if not faces:
        raise ValueError(f'no face found in {path}')
    face = max(faces, key=lambda f: f.box[3] - f.box[1]).box / shrink
    scale = min(1.0, SPRITE_FACE_PX / float(face[3] - face[1]))
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    image, alpha, face = cut_out(photo, face * scale)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), np.dstack([image, alpha]))
    meta.write_text(json.dumps({'photo': key, 'face': face.tolist()}))
    return Sprite(key, PHOTO_IDENTITIES[key], image, alpha, face)


# --- backgrounds -------------------------------------------------------------------------

def street_background(shared_dir: Path, size: tuple[int, int]) -> np.ndarray:
    """Return the shared street video without its walkers (median of every 8th frame)."""
    frames = [frame for _, frame in video_frames(
        Path(shared_dir) / 'data' / 'video' / 'pedestrians_vtest.avi', 8)]
    if not frames:
        raise ValueError('cannot read the shared street video')
    median = np.median(np.stack(frames), axis=0).astype(np.uint8)
    return _fill(median, size)


def _fill(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Crop image to the aspect of size (centred) and resize it to size."""
    width, height = size
    rows, cols = image.shape[:2]
    if cols / rows > width / height:
        keep = round(rows * width / height)
        image = image[:, (cols - keep) // 2:(cols - keep) // 2 + keep]
    else:
        keep = round(cols * height / width)
        image = image[(rows - keep) // 2:(rows - keep) // 2 + keep]
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def clutter_background(size: tuple[int, int], seed: int) -> np.ndarray:
    """Seeded clutter: shelves, boxes, stripes, discs and lines in muted colours."""
    width, height = size
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rng.integers(60, 160, 3)
    for _ in range(60):
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w = int(rng.integers(width // 40, width // 5))
        h = int(rng.integers(height // 40, height // 4))
        kind = rng.integers(0, 4)
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
        elif kind == 1:
            cv2.circle(image, (x, y), max(2, h // 2), colour, -1)
        elif kind == 2:
            cv2.line(image, (x, y), (x + w, y + h), colour, int(rng.integers(1, 6)))
        else:
            for stripe in range(0, w, 6):
                cv2.line(image, (x + stripe, y), (x + stripe, y + h), colour, 2)
    noise = rng.normal(0, 6, image.shape)
    return cv2.GaussianBlur(np.clip(image + noise, 0, 255).astype(np.uint8), (3, 3), 0)


def plain_background(size: tuple[int, int], seed: int) -> np.ndarray:
    """Grey with a little noise."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(110, 10, (size[1], size[0], 3)), 0, 255).astype(np.uint8)


def make_background(scene: Scene, shared_dir: Path) -> np.ndarray:
    """Return the scene's background image."""
    if scene.background == 'street':
        return street_background(shared_dir, scene.size)
    if scene.background == 'clutter':
        return clutter_background(scene.size, scene.seed)
    if scene.background == 'plain':
        return plain_background(scene.size, scene.seed)
    raise ValueError(f'unknown background {scene.background!r}: plain, street or clutter')


# --- rendering ---------------------------------------------------------------------------

def pose_at(actor: Actor, t: float) -> Key | None:
    """Return the actor's interpolated key at t, or None outside its keys."""
    keys = actor.keys
    if not keys or t < keys[0].t or t > keys[-1].t:
        return None
    for before, after in zip(keys, keys[1:]):
        if before.t <= t <= after.t:
            w = 0.0 if after.t == before.t else (t - before.t) / (after.t - before.t)

            def mix(a: float, b: float) -> float:
                return a + w * (b - a)
            y = None if before.y is None or after.y is None else mix(before.y, after.y)
            return Key(t, mix(before.x, after.x), mix(before.face_px, after.face_px), y,
                       mix(before.yaw, after.yaw), mix(before.roll, after.roll))
    return keys[-1]


@dataclass(frozen=True)
class _Layer:
    """A sprite warped for one pose.

    Image, alpha and face corners are relative to the face centre: the layer's pixel (0, 0)
    is at offset from it.
    """

    image: np.ndarray
    alpha: np.ndarray
    offset: tuple[int, int]
    face_corners: np.ndarray  # (4, 2)
    bottom: float             # sprite's bottom edge below the face centre [px]


def _warp(sprite: Sprite, face_px: float, yaw: float, roll: float) -> _Layer:
    """Scale a sprite to a face height, then turn it (yaw) and tilt it (roll)."""
    scale = face_px / float(sprite.face[3] - sprite.face[1])
    size = (max(1, round(sprite.image.shape[1] * scale)),
            max(1, round(sprite.image.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image = cv2.resize(sprite.image, size, interpolation=interpolation)
    alpha = cv2.resize(sprite.alpha, size, interpolation=interpolation)
    face = sprite.face * scale
    centre = np.array([(face[0] + face[2]) / 2, (face[1] + face[3]) / 2])
    # Sprite pixel -> relative to the face centre, then the turn of a flat card at a distance
    # of four sprite heights, then the tilt.
    shift = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]], np.float64)
    theta, distance = math.radians(yaw), 4.0 * size[1]
    turn = np.array([[math.cos(theta), 0, 0], [0, 1, 0], [math.sin(theta) / distance, 0, 1]])
    c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    tilt = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    matrix = tilt @ turn @ shift
    corners = np.array([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]], np.float64)
    moved = cv2.perspectiveTransform(corners[None], matrix)[0]
    x0, y0 = np.floor(moved.min(axis=0)).astype(int)
    x1, y1 = np.ceil(moved.max(axis=0)).astype(int)
    matrix = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ matrix
    out_size = (int(x1 - x0), int(y1 - y0))
    image = cv2.warpPerspective(image, matrix, out_size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(alpha, matrix, out_size, flags=cv2.INTER_LINEAR)
    face_corners = np.array([[face[0], face[1]], [face[2], face[1]], [face[2], face[3]],
                             [face[0], face[3]]], np.float64)
    face_corners = cv2.perspectiveTransform(face_corners[None], matrix)[0] + [x0, y0]
    return _Layer(image, alpha, (int(x0), int(y0)), face_corners, float(y1))


class Composer:
    """Renders a scene frame by frame, with its truth."""

    def __init__(self, scene: Scene, sprites: dict[str, Sprite], background: np.ndarray
                 ) -> None:
        """Take the scene, a sprite per photo key it uses, and its background."""
        self.scene = scene
        self.sprites = sprites
        self.background = background
        self._layers: dict[tuple, _Layer] = {}
        width, height = scene.size
        self._panel_mask = np.zeros((height, width), bool)
        self._panel_pixels = []
        for panel in scene.panels:
            x1, y1, x2, y2 = (round(v * s) for v, s in zip(panel.box, (width, height) * 2))
            self._panel_mask[y1:y2, x1:x2] = True
            self._panel_pixels.append(((x1, y1, x2, y2), panel.colour))

    def _layer(self, actor: Actor, key: Key) -> _Layer:
        cache_key = (actor.photo, round(key.face_px, 1), round(key.yaw, 1), round(key.roll, 1))
        if cache_key not in self._layers:
            self._layers[cache_key] = _warp(self.sprites[actor.photo], key.face_px, key.yaw,
                                            key.roll)
        return self._layers[cache_key]

    def _place(self, layer: _Layer, key: Key) -> tuple[int, int]:
        """Return the frame pixel of the face centre for a pose."""
        width, height = self.scene.size
        if key.y is not None:
            return round(key.x * width), round(key.y * height)
        # Stand on the ground line: the sprite's bottom a little below it, but keep the head
        # (the face and about as much hair) inside the frame.
        ground = self.scene.ground * height
        sink = 0.1 * (layer.bottom - layer.offset[1])
        y = ground + sink - layer.bottom
        y = max(y, 0.04 * height + 1.3 * key.face_px)
        return round(key.x * width), round(y)

    def frame(self, index: int) -> tuple[np.ndarray, list[TruthPerson]]:
        """Return frame index (BGR) and who is where in it."""
        width, height = self.scene.size
        t = index / CLIP_FPS
        canvas = self.background.astype(np.float32)
        placed = []
        order = sorted(range(len(self.scene.actors)),
                       key=lambda i: (self.scene.actors[i].depth, i))
        for number in order:
            actor = self.scene.actors[number]
            key = pose_at(actor, t)
            if key is None:
                continue
            layer = self._layer(actor, key)
            cx, cy = self._place(layer, key)
            x0, y0 = cx + layer.offset[0], cy + layer.offset[1]
            placed.append((number, actor, key, layer, x0, y0, cx, cy))
        owner = np.full((height, width), -1, np.int32)
        for number, actor, key, layer, x0, y0, _, _ in placed:
            h, w = layer.alpha.shape
            fx1, fy1, fx2, fy2 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
            if fx2 <= fx1 or fy2 <= fy1:
                continue
            alpha = layer.alpha[fy1 - y0:fy2 - y0, fx1 - x0:fx2 - x0].astype(np.float32) / 255
            image = layer.image[fy1 - y0:fy2 - y0, fx1 - x0:fx2 - x0].astype(np.float32)
            region = canvas[fy1:fy2, fx1:fx2]
            region += alpha[..., None] * (image - region)
            owner[fy1:fy2, fx1:fx2][alpha > 0.5] = number
        for (x1, y1, x2, y2), colour in self._panel_pixels:
            canvas[y1:y2, x1:x2] = colour
        owner[self._panel_mask] = -1
        image = np.clip(canvas, 0, 255).astype(np.uint8)
        encode_frame_number(image, index)
        owner[:CODE_CELL_PX, :(CODE_BITS + 2) * CODE_CELL_PX] = -1
        return image, [p for p in (self._truth(owner, *entry) for entry in placed) if p]

    def _truth(self, owner: np.ndarray, number: int, actor: Actor, key: Key, layer: _Layer,
               x0: int, y0: int, cx: int, cy: int) -> TruthPerson | None:
        """Measure what the frame shows of one placed person."""
        height = self.scene.size[1]
        h, w = layer.alpha.shape
        body = layer.alpha > 127
        # The whole body as the frame's ground line would show it (no occluders, no edges).
        rows = np.arange(h)[:, None] + y0
        whole = int(np.count_nonzero(body & (rows < self.scene.ground * height)))
        ys, xs = np.nonzero(owner == number)
        if whole == 0 or len(xs) == 0:
            return None
        visible = len(xs) / whole
        if visible < VISIBLE_MIN:
            return None
        face = layer.face_corners + [cx, cy]
        fx1, fy1 = face.min(axis=0)
        fx2, fy2 = face.max(axis=0)
        ix1, iy1 = max(int(fx1), 0), max(int(fy1), 0)
        ix2, iy2 = min(int(math.ceil(fx2)), owner.shape[1]), min(int(math.ceil(fy2)),
                                                                 owner.shape[0])
        face_whole = max(1, int(np.count_nonzero(body[
            max(int(fy1) - y0, 0):max(int(math.ceil(fy2)) - y0, 0),
            max(int(fx1) - x0, 0):max(int(math.ceil(fx2)) - x0, 0)])))
        face_seen = (int(np.count_nonzero(owner[iy1:iy2, ix1:ix2] == number))
                     if ix2 > ix1 and iy2 > iy1 else 0)
        return TruthPerson(
            actor=number, identity=actor.identity,
            box=(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)),
            visible=round(min(1.0, visible), 3),
            face_box=tuple(round(float(v), 1) for v in (fx1, fy1, fx2, fy2)),
            face_px=round(key.face_px, 1), face_visible=round(min(1.0, face_seen / face_whole), 3),
            yaw=round(key.yaw, 1), roll=round(key.roll, 1))

    def frames(self) -> Iterator[tuple[np.ndarray, list[TruthPerson]]]:
        """Yield every frame of the scene with its truth."""
        for index in range(round(self.scene.duration * CLIP_FPS)):
            yield self.frame(index)


@dataclass(frozen=True)
class ComposedClip:
    """Files of a composed clip: an MJPG .avi and its truth (.truth.jsonl)."""

    name: str
    video: Path
    truth: Path


def scene_digest(scene: Scene, shared_dir: Path) -> str:
    """Return a short hash of the scene, the composer version and the photos it uses."""
    digest = hashlib.sha256(repr((COMPOSER_VERSION, scene)).encode())
    for key in sorted({a.photo for a in scene.actors}):
        digest.update(hashlib.sha256(photo_path(shared_dir, key).read_bytes()).digest())
    return digest.hexdigest()[:12]


def compose(scene: Scene, shared_dir: Path, out_dir: Path,
            cache_dir: Path | None = None) -> ComposedClip:
    """Write the scene's clip and truth into out_dir (unless already there); return them.

    cache_dir holds the cut-out sprites (default: out_dir/sprites).
    """
    out_dir = Path(out_dir)
    stem = out_dir / f'{scene.name}-{scene_digest(scene, shared_dir)}'
    clip = ComposedClip(scene.name, stem.with_suffix('.avi'), stem.with_suffix('.truth.jsonl'))
    if clip.video.is_file() and clip.truth.is_file():
        return clip
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else out_dir / 'sprites'
    detector = FaceDetector('hog', upsample=1)
    sprites = {key: load_sprite(shared_dir, key, cache_dir, detector)
               for key in sorted({a.photo for a in scene.actors})}
    for actor in scene.actors:
        sprite = sprites[actor.photo]
        if sprite.identity != actor.identity:
            raise ValueError(f'{scene.name}: photo {actor.photo} shows {sprite.identity}, '
                             f'not {actor.identity}')
        faces_tall = sprite.image.shape[0] / float(sprite.face[3] - sprite.face[1])
        if faces_tall < MIN_SPRITE_FACES:
            raise ValueError(f'{scene.name}: the cut-out of {actor.photo} is {faces_tall:.1f} '
                             f'face heights tall, under {MIN_SPRITE_FACES}')
    composer = Composer(scene, sprites, make_background(scene, shared_dir))
    truth = ClipTruth(scene.name, CLIP_FPS, scene.size,
                      sorted({a.identity for a in scene.actors}), note=scene.note)
    partial = clip.video.with_name(clip.video.stem + '.partial.avi')
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*'MJPG'), CLIP_FPS,
                             scene.size)
    try:
        for image, persons in composer.frames():
            writer.write(image)
            truth.frames.append(persons)
    finally:
        writer.release()
    truth.write(clip.truth)
    partial.replace(clip.video)
    return clip


def video_frames(video: Path | str, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame number, BGR image) of every step-th frame of a video file, from frame 0."""
    capture = cv2.VideoCapture(str(video))
    try:
        index = 0
        while capture.grab():  # frames in between are not converted to images
            if index % step == 0:
                ok, image = capture.retrieve()
                if not ok:
                    return
                yield index, image
            index += 1
    finally:
        capture.release()


def frame_numbers(video: Path) -> list[int | None]:
    """Decode the frame number of every frame of a video file (a check of the encoding)."""
    return [decode_frame_number(image) for _, image in video_frames(video)]


def walk(identity: str, photo: str, stops: Sequence[tuple[float, float]], face_px: float,
         depth: float = 0.0, y: float | None = None, yaw: float = 0.0,
         roll: float = 0.0) -> Actor:
    """Return an actor who goes through (time [s], x fraction) stops at one size and pose."""
    return Actor(identity, photo, tuple(Key(t, x, face_px, y, yaw, roll) for t, x in stops),
                 depth)
