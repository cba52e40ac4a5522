"""Who is in each labelled photo of the shared test material.

`face_pairs/master.csv` labels all 300 pairs of img1..img25 (the deepface project's unit-test
set, MIT); the folder's other 37 photos (img26..img67) are of people already in it or of four
more, and were labelled by eye here, as were the photos of `faces/`. The grouping of img1..img25
reproduces master.csv's decisions exactly (test/core/test_calibration.py checks it).
"""

import csv
from dataclasses import dataclass
from pathlib import Path

#: Identity of each photo, by folder under <shared>/data. two_people.jpg shows two faces (Obama
#: on the left, Biden on the right) and obama_partial_face.jpg a face cut by the image edge.
PHOTO_IDENTITIES: dict[str, str] = {
    **{f'face_pairs/img{n}.jpg': 'jolie' for n in (1, 2, 4, 5, 6, 7, 10, 11)},
    **{f'face_pairs/img{n}.jpg': 'aniston' for n in (3, 12, 53, 54, 55, 56)},
    **{f'face_pairs/img{n}.jpg': 'johansson' for n in (8, 9, 47, 48, 49, 50, 51)},
    **{f'face_pairs/img{n}.jpg': 'zuckerberg' for n in (13, 14, 15, 57, 58)},
    **{f'face_pairs/img{n}.jpg': 'dorsey' for n in (16, 17, 59, 61, 62)},
    **{f'face_pairs/img{n}.jpg': 'musk' for n in (18, 19, 67)},
    **{f'face_pairs/img{n}.jpg': 'bezos' for n in (20, 21)},
    **{f'face_pairs/img{n}.jpg': 'mayer' for n in (22, 23)},
    **{f'face_pairs/img{n}.jpg': 'pichai' for n in (24, 25)},
    **{f'face_pairs/img{n}.jpg': 'perry' for n in (26, 27, 28, 42, 43, 44, 45, 46)},
    **{f'face_pairs/img{n}.jpg': 'damon' for n in (29, 30, 31, 32, 33)},
    **{f'face_pairs/img{n}.jpg': 'dicaprio' for n in (34, 35, 36, 37)},
    **{f'face_pairs/img{n}.jpg': 'clooney' for n in (38, 39, 40, 41)},
    'faces/obama.jpg': 'obama', 'faces/obama2.jpg': 'obama', 'faces/obama3.jpg': 'obama',
    'faces/obama-480p.jpg': 'obama', 'faces/obama_partial_face.jpg': 'obama',
    'faces/biden.jpg': 'biden', 'faces/lin-manuel-miranda.png': 'miranda',
    'faces/alex-lacamoire.png': 'lacamoire',
}
#: Photos with more than one face: identities from left to right.
MULTI_FACE_PHOTOS: dict[str, tuple[str, ...]] = {'faces/two_people.jpg': ('obama', 'biden')}


@dataclass(frozen=True)
class LabelledPair:
    """One pair of master.csv: two photo keys (as in PHOTO_IDENTITIES) and the label."""

    first: str
    second: str
    same: bool


def photo_path(shared_dir: Path, key: str) -> Path:
    """Return the file of a photo key such as 'face_pairs/img1.jpg'."""
    return Path(shared_dir) / 'data' / key


def photos_of(identity: str) -> list[str]:
    """Return the single-face photo keys of one identity, in a stable order."""
    return [key for key, who in PHOTO_IDENTITIES.items() if who == identity]


def read_master_pairs(shared_dir: Path) -> list[LabelledPair]:
    """Return the labelled pairs of face_pairs/master.csv (columns file_x, file_y, Decision)."""
    path = Path(shared_dir) / 'data' / 'face_pairs' / 'master.csv'
    with open(path, newline='') as stream:
        rows = list(csv.DictReader(stream))
    pairs = []
    for row in rows:
        decision = row['Decision'].strip().lower()
        if decision not in ('yes', 'no'):
            raise ValueError(f'{path}: unknown decision {row["Decision"]!r}')
        pairs.append(LabelledPair(f'face_pairs/{row["file_x"]}', f'face_pairs/{row["file_y"]}',
                                  decision == 'yes'))
    return pairs
