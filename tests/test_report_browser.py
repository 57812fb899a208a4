"""A study's report.html, opened in a real browser (headless Chromium): the page loads, every inlined image
decodes, nothing is logged at error level, and nothing outside the file is requested.

Chromium is driven over the DevTools protocol on a pipe (see ``_chromium.py``), with background networking
off and a throw-away profile. The tests are skipped only where Chromium is absent; ``.ci/run`` installs it.
A second test feeds the same checker a deliberately broken page, so a checker that sees nothing fails.
"""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from _chromium import chromium_executable, open_page
from dualmap.study import run_study, validate_config

pytestmark = [
    pytest.mark.skipif(chromium_executable() is None,
                       reason="Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it"),
    pytest.mark.slow,                     # a whole study, then a headless browser
]

#: 2-D data, so that the report holds the GIF animation as well as the PNG figures; small and fast.
CONFIG = {"dataset": {"name": "log2d", "options": {"n_samples": 300}}, "network": {"widths": [8]},
          "train": {"epochs": 3, "checkpoints": 3}, "refine": {"seeds": [0], "epochs": 3}, "report": {"dpi": 40}}

_IMG = re.compile(r"<img\b[^>]*\bsrc=\"data:(image/[a-z+]+);base64,([A-Za-z0-9+/=]*)\"", re.IGNORECASE)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "study"
    run_study(validate_config(CONFIG), out, progress=False)
    return out


def test_report_loads_in_chromium_with_every_image_decoded(study, tmp_path):
    source = (study / "report.html").read_text(encoding="utf-8")
    inlined = _IMG.findall(source)
    # Every <img> in the source is an inlined data URI, one per figure file, PNG and GIF both present.
    assert len(inlined) == source.count("<img") == len(list((study / "figures").iterdir())) >= 8
    assert {mime for mime, _ in inlined} == {"image/png", "image/gif"}

    page = open_page(study / "report.html", user_data_dir=tmp_path / "profile")

    assert page["readyState"] == "complete"
    assert page["title"].startswith("dualmap study: log2d")
    assert page["problems"] == [], "console errors, exceptions or failed loads:\n" + "\n".join(page.problems)
    assert len(page.images) == len(inlined), "the browser saw a different number of images than the HTML holds"
    assert page.undecoded() == [], f"images that did not decode: {page.undecoded()}"
    # The pixels the browser drew are those of the inlined file (Chromium shows a truncated or corrupted PNG
    # partially and calls it decoded, so "decoded" alone would not catch one): compare the channel sums of
    # the browser's canvas with PIL's full decode of the same bytes (for the GIF, its first frame both ways).
    for seen, (mime, data) in zip(page.images, inlined):        # document order on both sides
        try:
            size, sums, spread = _decode(base64.b64decode(data))
        except OSError as error:
            pytest.fail(f"inlined image {seen['alt']!r} ({mime}) does not decode in PIL either: {error}")
        assert (seen["width"], seen["height"]) == size, (seen["alt"], mime)
        assert spread > 1, (seen["alt"], "a blank image")
        assert _same_pixels(seen, sums), (seen["alt"], mime, seen["sums"], sums.tolist())
    # Self-contained: the page asked for itself and its data URIs, nothing else (no network, no other files).
    assert page.requests[0] == (study / "report.html").resolve().as_uri()
    assert all(url.startswith("data:image/") for url in page.requests[1:]), page.requests


def test_the_checker_catches_a_broken_page(tmp_path):
    """Without this, a checker that never sees an image or a console message would pass the test above."""
    noise = _png(np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8))
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>broken</title></head><body>\n"
        "<img src='data:image/png;base64,AAAA' alt='undecodable'>\n"          # not a PNG
        "<img src='missing.png' alt='missing'>\n"                             # no such file
        f"<img src='data:image/png;base64,{_b64(noise[:len(noise) * 3 // 5])}' alt='truncated'>\n"
        f"<img src='data:image/png;base64,{_b64(noise)}' alt='fine'>\n"
        "<script>console.error('deliberate console error');</script>\n"
        "<script>throw new Error('deliberate exception');</script>\n"
        "</body></html>\n", encoding="utf-8")

    page = open_page(broken, user_data_dir=tmp_path / "profile")

    assert [image["alt"] for image in page.images] == ["undecodable", "missing", "truncated", "fine"]
    assert [image["alt"] for image in page.undecoded()] == ["undecodable", "missing"]
    assert "EncodingError" in page.images[0]["error"]
    # Chromium 156 calls the truncated PNG decoded (it draws the rows it got); its pixels give it away.
    _, sums, _ = _decode(noise)
    truncated, fine = page.images[2:]
    assert not _same_pixels(truncated, sums)
    assert _same_pixels(fine, sums) and fine["decoded"]
    problems = "\n".join(page.problems)
    assert "deliberate exception" in problems
    assert "console.error: deliberate console error" in problems
    assert "Failed to load resource" in problems and "missing.png" in problems
    assert [url for url in page.requests if not url.startswith("data:")] == [
        broken.resolve().as_uri(), (tmp_path / "missing.png").resolve().as_uri()]


def _decode(data: bytes):
    """PIL's full decode of image bytes (the first frame of a GIF): size, RGBA channel sums, grey-level spread."""
    with Image.open(io.BytesIO(data)) as image:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.int64)
        return image.size, rgba.reshape(-1, 4).sum(axis=0), float(np.asarray(image.convert("L")).std())


def _same_pixels(seen: dict, sums) -> bool:
    """The browser's canvas sums match ``sums`` to within half a grey level per pixel (colour management may
    round differently; a partial image is off by far more)."""
    if seen["sums"] is None:
        return False
    return bool(np.abs(np.asarray(seen["sums"]) - sums).max() <= 0.5 * seen["width"] * seen["height"])


def _png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
