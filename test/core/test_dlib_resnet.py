"""dlib's face ResNet read from its model file, run by ONNX Runtime, against dlib's own.

The embedder computes descriptors with core.dlib_resnet; dlib.face_recognition_model_v1 is
the reference here only. Equal descriptors on the faces of a third of the shared photos show
that the model file is read as dlib wrote it (the contact point with dlib's serialization)
and that the calibrated thresholds still hold.
"""

from pathlib import Path
import subprocess
import sys

import cv2
import dlib
import numpy as np
import pytest

from facetrack_ros.core.dlib_resnet import DlibResNet, ModelFileError
from facetrack_ros.core.face import DlibResNetEmbedder, FaceDetector, find_dlib_model_files


def _photos(shared_dir: Path) -> list[Path]:
    return sorted([*(shared_dir / 'data' / 'faces').iterdir(),
                   *(shared_dir / 'data' / 'face_pairs').glob('*.jpg')])[::3]


def test_descriptors_equal_dlibs_own_on_real_faces(shared_dir: Path) -> None:
    """Every face of a third of the shared photos: dlib's descriptor and landmarks."""
    files = find_dlib_model_files()
    reference = dlib.face_recognition_model_v1(str(files.face_recognition))
    predictor = dlib.shape_predictor(str(files.shape_predictor_5))
    embedder = DlibResNetEmbedder()
    detector = FaceDetector('hog')
    compared = 0
    for path in _photos(shared_dir):
        image = cv2.imread(str(path))
        assert image is not None, path
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        for face in detector.detect(image):
            embedding, landmarks = embedder.embed(image, face)
            x1, y1, x2, y2 = (int(v) for v in np.round(face.box))
            shape = predictor(rgb, dlib.rectangle(x1, y1, x2, y2))
            expected = np.array(reference.compute_face_descriptor(rgb, shape), np.float32)
            expected /= np.linalg.norm(expected)
            np.testing.assert_allclose(embedding, expected, atol=2e-6, err_msg=str(path))
            np.testing.assert_array_equal(
                landmarks, np.array([(p.x, p.y) for p in shape.parts()], np.float32))
            compared += 1
    assert compared >= 15


def test_batches_give_each_chip_its_own_descriptor(shared_dir: Path) -> None:
    """Chips computed together give what each gives alone."""
    network = DlibResNet(find_dlib_model_files().face_recognition)
    size = network.chip_size
    chips = np.stack([cv2.resize(cv2.imread(str(path)), (size, size))[:, :, ::-1]
                      for path in _photos(shared_dir)[:3]])
    batch = network(chips)
    assert batch.shape == (3, network.dim) == (3, 128)
    for chip, descriptor in zip(chips, batch):
        np.testing.assert_allclose(network(chip[None])[0], descriptor, atol=1e-5)
    with pytest.raises(ValueError, match='chips must be'):
        network(chips[0])


def test_a_file_that_is_not_the_network_is_refused(tmp_path: Path) -> None:
    """Another dlib model and a truncated copy get a clear error; a missing file its own."""
    files = find_dlib_model_files()
    with pytest.raises(ModelFileError, match='not dlib'):
        DlibResNet(files.shape_predictor_5)
    truncated = tmp_path / 'truncated.dat'
    truncated.write_bytes(files.face_recognition.read_bytes()[:5_000_000])
    with pytest.raises(ModelFileError, match='not dlib'):
        DlibResNet(truncated)
    with pytest.raises(FileNotFoundError):
        DlibResNet(tmp_path / 'missing.dat')


def test_threads_below_one_are_refused() -> None:
    """threads: 0 is no setting."""
    with pytest.raises(ValueError, match='threads'):
        DlibResNet(find_dlib_model_files().face_recognition, threads=0)


def test_the_face_models_need_no_torch(shared_dir: Path, tmp_path: Path) -> None:
    """The CNN face detector and the ResNet load and find a face without torch (0.5 GiB)."""
    photo = str(shared_dir / 'data' / 'faces' / 'obama.jpg')
    code = ('import sys, cv2; '
            'from facetrack_ros.core.face import DlibResNetEmbedder, FaceAnalyzer, FaceDetector; '
            f'faces = FaceAnalyzer(FaceDetector("cnn"), DlibResNetEmbedder()).analyze('
            f'cv2.imread({photo!r})); '
            'print(len(faces), sorted({"torch", "ultralytics"} & set(sys.modules)))')
    # Run away from the repository, whose source folder lacks the built message modules.
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '1 []', result.stdout
