"""The composed evaluation clips, by name (SCENES).

Crossings, occlusions, exits, returns, a doorway, a person alone for a minute, and faces of
20 to 150 px, some turned, at 640x360 and 1280x720.

Every exit meant as one lasts at least 5 s and every occlusion at most 1.5 s, so "left" and
"never left" are unambiguous at the evaluation's absence tolerance (identity.ABSENCE_S).
"""

from facetrack_ros.evaluation.clips import Actor, Key, Panel, Scene, walk

#: The doorway: who passes, in order, with the photos of each round (cycled), and the face
#: height of each round [px]. Only photos whose cut-out is at least clips.MIN_SPRITE_FACES tall.
DOORWAY_PEOPLE = {
    'jolie': ('img1', 'img2', 'img7', 'img11'),
    'aniston': ('img3', 'img53', 'img54', 'img56'),
    'clooney': ('img38', 'img39', 'img40'),
    'perry': ('img27', 'img42', 'img44', 'img46'),
    'obama': ('faces/obama.jpg', 'faces/obama3.jpg', 'faces/obama-480p.jpg'),
    'johansson': ('img8', 'img9', 'img48', 'img49'),
    'zuckerberg': ('img14', 'img15', 'img57', 'img58'),
    'dicaprio': ('img34', 'img35', 'img36', 'img37'),
}
DOORWAY_FACES = (85, 100, 75, 95)
DOORWAY_SLOT_S = 3.5


def doorway() -> Scene:
    """Eight people pass one doorway one after another, each alone in view for about 3 s.

    Four rounds (112 s); each round shows each person from another photo where there is one.
    """
    actors = []
    for round_ in range(len(DOORWAY_FACES)):
        for place, (identity, photos) in enumerate(DOORWAY_PEOPLE.items()):
            photo = photos[round_ % len(photos)]
            photo = photo if '/' in photo else f'face_pairs/{photo}.jpg'
            start = (round_ * len(DOORWAY_PEOPLE) + place) * DOORWAY_SLOT_S
            size = DOORWAY_FACES[round_]
            actors.append(Actor(identity, photo, (
                Key(start, 0.9, size), Key(start + 0.6, 0.5, size),
                Key(start + 2.9, 0.53, size), Key(start + DOORWAY_SLOT_S - 0.05, 0.12, size))))
    return Scene('doorway', (640, 360), len(DOORWAY_FACES) * len(DOORWAY_PEOPLE)
                 * DOORWAY_SLOT_S, 'clutter', tuple(actors),
                 panels=(Panel((0.0, 0.0, 0.27, 1.0), (60, 75, 95)),
                         Panel((0.73, 0.0, 1.0, 1.0), (60, 75, 95))), seed=3,
                 note='8 people x 4 rounds through a doorway; each alone ~3 s')


def alone() -> Scene:
    """One person in view for a minute: wanders, turns (warp), tilts, passes a post."""
    size = 80
    keys = (Key(0.0, 1.2, size), Key(2.0, 0.75, size), Key(10.0, 0.55, 90),
            Key(14.0, 0.55, 90, yaw=35.0), Key(18.0, 0.5, 90, yaw=0.0),
            Key(24.0, 0.35, 70, roll=12.0), Key(30.0, 0.3, 70, roll=-10.0),
            Key(36.0, 0.5, 75), Key(40.0, 0.62, 75, yaw=-30.0), Key(46.0, 0.6, 85),
            Key(52.0, 0.4, 85), Key(60.0, 0.35, 80), Key(63.0, -0.25, 80))
    return Scene('alone', (640, 360), 66.0, 'street',
                 (Actor('dicaprio', 'face_pairs/img35.jpg', keys),),
                 panels=(Panel((0.47, 0.0, 0.485, 1.0), (150, 150, 160)),), seed=5,
                 note='one person in view 63 s, passing a post; expect exactly one PERSON_IN')


def crossing() -> Scene:
    """Crossings, an occlusion behind a passer-by, a hand-over at one spot, two returns."""
    actors = (
        walk('aniston', 'face_pairs/img3.jpg', ((1.0, -0.15), (9.0, 0.9), (10.0, 1.2)), 70,
             depth=1),
        walk('johansson', 'face_pairs/img8.jpg', ((2.0, 1.15), (10.0, 0.1), (11.0, -0.2)), 62),
        # Another woman comes in where Johansson just left, 1.5 s later.
        walk('mayer', 'face_pairs/img22.jpg', ((12.5, -0.2), (13.5, 0.15), (18.0, 0.2),
                                               (19.0, -0.2)), 64),
        walk('musk', 'face_pairs/img19.jpg', ((12.0, 1.2), (13.5, 0.35), (29.0, 0.3),
                                              (30.0, -0.2)), 80),
        # Walks in front of Musk, hiding him for about a second.
        walk('dorsey', 'face_pairs/img59.jpg', ((16.0, 1.2), (22.0, -0.2)), 78, depth=2),
        walk('aniston', 'face_pairs/img12.jpg', ((21.0, 1.2), (23.0, 0.65), (32.0, 0.7),
                                                 (33.0, 1.2)), 72, depth=1),
        walk('johansson', 'face_pairs/img48.jpg', ((31.0, -0.2), (33.0, 0.3), (39.0, 0.32)),
             66),
    )
    return Scene('crossing', (640, 360), 40.0, 'street', actors, seed=7,
                 note='crossings, occlusion by a passer-by, a hand-over, two returns')


def sizes_720p() -> Scene:
    """Faces of 20 to 150 px at 1280x720, some turned (real photos and warps), some tilted."""
    actors = (
        walk('obama', 'faces/obama3.jpg',
             ((2.0, 0.08), (14.0, 0.4), (18.0, 0.42), (20.0, -0.05)), 20, y=0.42),
        walk('biden', 'faces/biden.jpg',
             ((3.0, 0.95), (12.0, 0.62), (20.0, 0.6), (24.0, 1.05)), 28, y=0.45),
        Actor('mayer', 'face_pairs/img23.jpg', (
            Key(6.0, 1.05, 40, 0.5), Key(8.0, 0.8, 40, 0.5), Key(12.0, 0.8, 40, 0.5, yaw=-40),
            Key(16.0, 0.8, 40, 0.5), Key(26.0, 0.82, 40, 0.5), Key(28.0, 1.05, 40, 0.5))),
        walk('zuckerberg', 'face_pairs/img13.jpg', ((10.0, -0.1), (12.0, 0.2), (30.0, 0.26),
                                                    (32.0, -0.1)), 56, depth=1),
        walk('dorsey', 'face_pairs/img59.jpg', ((14.0, -0.15), (16.0, 0.45), (34.0, 0.47),
                                                (36.0, 1.15)), 80, depth=2),
        Actor('musk', 'face_pairs/img19.jpg', (
            Key(22.0, 1.2, 110), Key(24.0, 0.8, 110), Key(28.0, 0.8, 110, roll=20),
            Key(32.0, 0.8, 110, roll=-20), Key(36.0, 0.8, 110), Key(38.0, 1.2, 110)), 3),
        walk('clooney', 'face_pairs/img39.jpg', ((28.0, 1.3), (30.0, 0.6), (40.0, 0.62)), 150,
             depth=4),
        walk('obama', 'faces/obama-480p.jpg', ((30.0, -0.1), (32.0, 0.15), (40.0, 0.18)),
             40, y=0.5),
    )
    return Scene('sizes_720p', (1280, 720), 40.0, 'street', actors, seed=11,
                 note='faces 20-150 px at 1280x720; real turned photos, yaw warps, roll')


def sizes_360p() -> Scene:
    """Faces of 20 to 90 px at 640x360 over clutter, turned by warps and tilted."""
    actors = (
        walk('perry', 'face_pairs/img42.jpg', ((1.0, 1.05), (4.0, 0.85), (24.0, 0.85),
                                               (26.0, 1.05)), 20, y=0.4),
        Actor('jolie', 'face_pairs/img1.jpg', (
            Key(2.0, -0.1, 30, 0.45), Key(4.0, 0.15, 30, 0.45),
            Key(8.0, 0.15, 30, 0.45, yaw=30),
            Key(20.0, 0.18, 30, 0.45, yaw=30), Key(22.0, -0.1, 30, 0.45, yaw=30))),
        Actor('aniston', 'face_pairs/img53.jpg', (
            Key(5.0, 1.2, 45), Key(7.0, 0.62, 45), Key(10.0, 0.62, 45, yaw=-45),
            Key(16.0, 0.62, 45, yaw=-45), Key(18.0, 0.62, 45), Key(28.0, 0.6, 45)), 1),
        Actor('damon', 'face_pairs/img29.jpg', (
            Key(9.0, -0.2, 60), Key(11.0, 0.35, 60), Key(14.0, 0.35, 60, roll=20),
            Key(18.0, 0.35, 60, roll=-20), Key(22.0, 0.38, 60), Key(24.0, -0.2, 60)), 2),
        Actor('johansson', 'face_pairs/img9.jpg', (
            Key(16.0, 1.3, 90), Key(18.0, 0.8, 90, yaw=25), Key(26.0, 0.78, 90, yaw=25),
            Key(28.0, 1.3, 90)), 3),
    )
    return Scene('sizes_360p', (640, 360), 30.0, 'clutter', actors, seed=13,
                 note='faces 20-90 px at 640x360 over clutter; yaw warps and roll')


def group() -> Scene:
    """Three men walk in side by side, stand close for 10 s, split; one returns from the right.

    From a tester's hold-out set (as the two below): a box over two of them makes a person's
    box wider than one person, and the next one's track is born beside it.
    """
    actors = (
        walk('damon', 'face_pairs/img29.jpg',
             ((1.0, -0.25), (5.0, 0.33), (15.0, 0.34), (17.5, -0.25)), 68, depth=0),
        walk('clooney', 'face_pairs/img40.jpg',
             ((1.0, -0.08), (5.0, 0.50), (15.0, 0.50), (36.0, 0.47)), 78, depth=1),
        walk('dicaprio', 'face_pairs/img36.jpg',
             ((1.0, 0.09), (5.0, 0.67), (15.0, 0.66), (17.5, 1.25)), 72, depth=0.5),
        walk('damon', 'face_pairs/img29.jpg',
             ((23.5, 1.25), (26.0, 0.72), (36.0, 0.74)), 70, depth=0),
    )
    return Scene('group', (640, 360), 36.0, 'street', actors, seed=21,
                 note='3 people in together, 10 s close, split; one returns from the other side')


def group_tight() -> Scene:
    """Three men shoulder to shoulder; one walks in front of the others; two leave, one returns."""
    actors = (
        walk('damon', 'face_pairs/img29.jpg',
             ((0.5, -0.3), (4.0, 0.38), (10.0, 0.38), (12.0, 0.74), (16.0, 0.74),
              (18.5, 1.25)), 68, depth=3),
        walk('dicaprio', 'face_pairs/img35.jpg',
             ((0.5, -0.16), (4.0, 0.52), (34.0, 0.52)), 72, depth=2),
        walk('perry', 'face_pairs/img27.jpg',
             ((0.5, -0.02), (4.0, 0.66), (16.0, 0.66), (18.5, -0.25)), 70, depth=1),
        walk('perry', 'face_pairs/img44.jpg',
             ((25.5, 1.25), (28.0, 0.75), (34.0, 0.74)), 74, depth=1),
    )
    return Scene('group_tight', (640, 360), 34.0, 'street', actors, seed=41,
                 note='three men shoulder to shoulder, one walks in front, split, one returns')


def swap() -> Scene:
    """Two look-alikes swap places twice, then a third woman walks between them."""
    actors = (
        walk('aniston', 'face_pairs/img53.jpg',
             ((0.5, -0.2), (3.0, 0.3), (6.0, 0.3), (8.0, 0.7), (13.0, 0.7), (15.0, 0.3),
              (21.0, 0.3), (23.5, -0.2)), 72, depth=1),
        walk('johansson', 'face_pairs/img9.jpg',
             ((0.8, 1.2), (3.3, 0.7), (6.0, 0.7), (8.0, 0.3), (13.0, 0.3), (15.0, 0.7),
              (21.0, 0.7), (23.5, 1.2)), 74),
        walk('jolie', 'face_pairs/img1.jpg',
             ((16.0, -0.2), (18.0, 0.5), (20.0, 0.5), (22.5, 1.25)), 66, depth=0.5),
    )
    return Scene('swap', (640, 360), 25.0, 'clutter', actors, seed=31,
                 note='look-alikes swap places twice; a third walks between them')


def short() -> Scene:
    """Return a few seconds for the test suite.

    One person walks in and stays, another passes behind them.
    """
    actors = (
        walk('obama', 'faces/obama.jpg', ((0.3, 1.15), (2.5, 0.35), (8.0, 0.37)), 70, depth=1),
        walk('biden', 'faces/biden.jpg', ((1.5, -0.1), (7.0, 0.85), (8.0, 0.9)), 60),
    )
    return Scene('short', (640, 360), 8.0, 'plain', actors, seed=17,
                 note='two people, one crossing behind the other; both in view at the end')


#: Every composed evaluation clip by name (short is the test suite's).
SCENES = {scene.name: scene for scene in (doorway(), alone(), crossing(), sizes_720p(),
                                          sizes_360p(), group(), group_tight(), swap(),
                                          short())}
