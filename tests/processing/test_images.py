"""The image loader (processing/images.py): sizes refused before they are resized, and EXIF
orientation. Every image is drawn here, a few pixels large (or a thin strip that compresses to
a few hundred bytes)."""

from __future__ import annotations

import io
import time

import pytest
from helpers import make_image_processor
from PIL import Image

from processing import images
from processing.images import MAX_ASPECT_RATIO, ImageReadError, load_image, resized_size

ORIENTATION = 0x0112  # the EXIF tag
BLUE, RED = (0, 0, 255), (255, 0, 0)


def strip_png(width: int, height: int) -> bytes:
    """A black grayscale PNG of ``width x height`` pixels: a 1 x 400,000 strip is under 1 KB."""
    encoded = io.BytesIO()
    Image.new("L", (width, height)).save(encoded, format="PNG")
    return encoded.getvalue()


@pytest.fixture(scope="module")
def image_processor():
    """The tiny test model's image processor: it resizes the short side to 67 pixels, then crops 64 x 64."""
    return make_image_processor()


# -- a thin strip that the resize would make huge -----------------------------------------------


def test_a_thin_strip_is_refused_before_it_is_resized(tmp_path, image_processor):
    path = tmp_path / "strip.png"
    path.write_bytes(strip_png(1, 400_000))
    assert path.stat().st_size < 1024
    # Without the image processor (the pipeline, the web page), the size a usual 224-pixel resize would give.
    with pytest.raises(ImageReadError, match=r"1 x 400000 pixels, .* it would be 224 x 89600000 pixels"):
        load_image(path)
    start = time.monotonic()
    with pytest.raises(
        ImageReadError,
        match=rf"Cannot read image {path}: it is 1 x 400000 pixels, an aspect ratio of 400000:1, over the limit "
        r"of 50:1 \(processing.images.MAX_ASPECT_RATIO\); resized by its image processor to a short side of 67 "
        r"pixels, it would be 67 x 26800000 pixels\. Crop it",
    ):
        load_image(path, image_processor)
    assert time.monotonic() - start < 5
    assert resized_size((1, 400_000), image_processor) == (67, 26_800_000)  # 5.4 GB in RGB: never made
    for source in (Image.new("L", (400_000, 1)), bytes(strip_png(400_000, 1))):  # lying down, from memory
        with pytest.raises(ImageReadError, match=r"400000 x 1 pixels, an aspect ratio of 400000:1"):
            load_image(source, image_processor)


def test_the_processor_refuses_a_thin_strip_with_a_message(processor):
    with pytest.raises(ImageReadError, match=r"it is 1 x 400000 pixels, an aspect ratio of 400000:1"):
        processor([["hi"]], context=["x"], images=[strip_png(1, 400_000)])


def test_images_up_to_the_aspect_ratio_limit_are_read(image_processor, processor):
    panorama = Image.new("RGB", (MAX_ASPECT_RATIO * 10, 10), RED)  # 500 x 10: at the limit
    assert load_image(panorama, image_processor).size == (500, 10)
    pixels = processor([["hi"]], context=["x"], images=[panorama])["pixel_values"]
    assert tuple(pixels.shape) == (1, 3, 64, 64)
    with pytest.raises(ImageReadError, match=r"51 x 1 pixels, an aspect ratio of 51:1, over the limit of 50:1"):
        load_image(Image.new("RGB", (51, 1)))


def test_an_image_that_the_resize_would_make_too_large_is_refused(image_processor, monkeypatch):
    """Within the aspect ratio, the resize can still be too large for an image processor with a large
    input: the limit is lowered here rather than the input raised."""
    monkeypatch.setattr(images, "MAX_RESIZED_PIXELS", 100 * 67)
    assert load_image(Image.new("RGB", (30, 20)), image_processor).size == (30, 20)  # 100 x 67 once resized
    with pytest.raises(
        ImageReadError,
        match=r"Cannot read image PIL image: it is 40 x 20 pixels; resized by its image processor to a short side "
        r"of 67 pixels, it would be 134 x 67 pixels, 8978 pixels, over the limit of 6700 "
        r"\(processing.images.MAX_RESIZED_PIXELS\)",
    ):
        load_image(Image.new("RGB", (40, 20)), image_processor)
    assert load_image(Image.new("RGB", (40, 20))).size == (40, 20)  # no image processor: no resize to check


def test_resized_size_reads_timm_and_transformers_image_processors(image_processor):
    from transformers import CLIPImageProcessor

    assert resized_size((100, 50), image_processor) == (134, 67)
    assert resized_size((50, 100), CLIPImageProcessor(size={"shortest_edge": 224})) == (224, 448)
    fixed = CLIPImageProcessor(size={"height": 224, "width": 224})  # squashed to a fixed size: nothing grows
    assert resized_size((1, 100), fixed) is None


# -- EXIF orientation ---------------------------------------------------------------------------


def sideways_photo(path, orientation: int = 6) -> None:
    """A 40 x 20 JPEG, blue on the left and red on the right, tagged to be turned a quarter clockwise
    (EXIF orientation 6, as a phone held upright stores it): upright, it is 20 x 40, blue above red."""
    photo = Image.new("RGB", (40, 20), RED)
    photo.paste(BLUE, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    photo.save(path, format="JPEG", quality=95, exif=exif.tobytes())


def near(pixel, colour) -> bool:
    return all(abs(a - b) <= 8 for a, b in zip(pixel, colour))  # JPEG changes colours a little


def test_a_photo_is_turned_by_its_exif_orientation(tmp_path):
    path = tmp_path / "phone.jpg"
    sideways_photo(path)
    with Image.open(path) as stored:
        assert stored.size == (40, 20)
    for source in (path, path.read_bytes(), Image.open(path)):
        upright = load_image(source)
        assert upright.size == (20, 40)
        assert near(upright.getpixel((10, 5)), BLUE) and near(upright.getpixel((10, 35)), RED)
        again = load_image(upright)  # the pipeline loads it once, the processor once more: turned once
        assert again.size == (20, 40) and near(again.getpixel((10, 5)), BLUE)


def test_the_size_is_checked_as_the_photo_will_be_read(tmp_path, image_processor, monkeypatch):
    path = tmp_path / "phone.jpg"
    sideways_photo(path)
    monkeypatch.setattr(images, "MAX_RESIZED_PIXELS", 8000)
    with pytest.raises(ImageReadError, match=r"it is 20 x 40 pixels; .* it would be 67 x 134 pixels"):
        load_image(path, image_processor)


def test_the_collator_checks_the_resize_on_the_file_under_its_policy(tmp_path, processor, monkeypatch, caplog):
    """A training image too large once resized is named by its path, and `missing_image="skip"`
    reads its example without it, as for any image that cannot be read."""
    from processing import ShapCADataCollator

    monkeypatch.setattr(images, "MAX_RESIZED_PIXELS", 100 * 67)
    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 20)).save(path)
    rows = [{"words": ["hi"], "context": None, "image": str(path)}]
    with pytest.raises(
        ImageReadError, match=rf"Cannot read image {path}: it is 40 x 20 pixels; .* missing_image='skip'"
    ):
        ShapCADataCollator(processor)(rows)
    with caplog.at_level("WARNING"):
        batch = ShapCADataCollator(processor, missing_image="skip")(rows)
    assert batch["image_mask"].tolist() == [0] and str(path) in caplog.text
