"""Shared set-up for the notebook tests: the scripts folder on the import path, and one strict
run of every chapter rendered into build/test-gallery for the tests that inspect it."""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import notebooks  # noqa: E402

CHAPTERS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
TEST_GALLERY = REPO / "build" / "test-gallery"


@pytest.fixture(scope="session")
def gallery() -> dict[str, "notebooks.Result"]:
    results = notebooks.render_gallery(TEST_GALLERY, CHAPTERS)
    return {r.notebook.stem: r for r in results}
