"""Lint the source tree as ament_flake8 and ament_pep257 would: flake8 at 99 columns."""

import subprocess
import sys

import pytest

SOURCES = ['facetrack_ros', 'launch', 'scripts', 'test']


@pytest.mark.lint
def test_flake8_and_pep257(repo_dir):
    """flake8 (pycodestyle, pyflakes) plus pep257 docstrings via flake8-docstrings."""
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', '--max-line-length', '99',
         '--docstring-convention', 'pep257', *SOURCES],
        cwd=repo_dir, capture_output=True, text=True)
    assert result.returncode == 0, f'flake8 found problems:\n{result.stdout}{result.stderr}'
