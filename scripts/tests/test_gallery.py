"""The rendered gallery, opened in headless Chromium: every plot loads, nothing is fetched from the network."""
import nbformat
import pytest

from browser import Chromium
from conftest import CHAPTERS, TEST_GALLERY


@pytest.fixture(scope="module")
def browser():
    with Chromium() as chromium:
        yield chromium


def plot_cells(chapter_stem: str) -> int:
    nb = nbformat.read(TEST_GALLERY / f"{chapter_stem}.ipynb", as_version=4)
    return sum("plot" in c.metadata.get("tags", []) for c in nb.cells)


@pytest.mark.parametrize("chapter", [c.stem for c in CHAPTERS])
def test_chapter_page_shows_every_plot(gallery, browser, chapter):
    assert gallery[chapter].ok, gallery[chapter].problems
    report = browser.open(TEST_GALLERY / f"{chapter}.html", TEST_GALLERY / "screenshots" / f"{chapter}.png")
    assert report.images, "the page shows no image at all"
    assert not report.broken_images, report.broken_images
    assert len(report.images) >= plot_cells(chapter) >= 1
    assert report.external_requests == []


def test_index_links_every_chapter_with_a_thumbnail(gallery, browser):
    report = browser.open(TEST_GALLERY / "index.html", TEST_GALLERY / "screenshots" / "index.png")
    assert not report.broken_images, report.broken_images
    assert len(report.images) == len(CHAPTERS)
    assert report.external_requests == []
    index = (TEST_GALLERY / "index.html").read_text()
    for chapter in CHAPTERS:
        assert f'href="{chapter.stem}.html"' in index
