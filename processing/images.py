"""The one image loader of the library: any image source -> an 8-bit RGB `PIL.Image.Image`.

    >>> from processing.images import load_image
    >>> load_image("photo.jpg").mode
    'RGB'

`load_image` takes a path, a PIL image, a numpy array or the bytes of an image file (not a
URL: that is refused with a message). Images
with more than 8 bits per pixel (16-bit PNGs, 32-bit integer or float TIFFs) are scaled to
8 bits from their full range, not clipped. A photo's EXIF orientation is applied (a phone
photo stored sideways is read upright), as transformers' own `load_image` does. A file that
cannot be read (missing, truncated, not an image, larger than PIL's decompression-bomb limit,
longer than `MAX_ASPECT_RATIO` times its width or the other way round) raises `ImageReadError`,
which names the file and how to fix it. Given the image processor the image is for,
`load_image` also refuses an image that its resize would make larger than `MAX_RESIZED_PIXELS`,
before the resize: the size is checked on the file's header, before its pixels are decoded.

This module imports only the standard library, numpy and PIL: it is copied into checkpoints
with the processor's code.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageOps

MISSING_IMAGE_POLICIES = ("error", "skip")

# White (the value that becomes 255) in 16-bit and in float images.
SIXTEEN_BIT_WHITE = 65535
FLOAT_WHITE = 1.0
# White of the PIL modes with more than 8 bits per pixel. "I" is 32-bit integer, but PIL opens
# 16-bit grayscale PNGs as "I;16" or "I", so its white is the 16-bit one.
WHITE_OF_MODE = {
    "I;16": SIXTEEN_BIT_WHITE,
    "I;16B": SIXTEEN_BIT_WHITE,
    "I;16L": SIXTEEN_BIT_WHITE,
    "I;16N": SIXTEEN_BIT_WHITE,
    "I": SIXTEEN_BIT_WHITE,
    "F": FLOAT_WHITE,
}


# The longest side of an image over its shortest side. Image processors resize the short side to the
# model's input (and crop the middle), so a thin strip becomes a huge image first: a 1 x 400,000
# pixel PNG of 856 bytes, resized to a short side of 224 pixels, would be 224 x 89,600,000 pixels
# (60 GB). Phone panoramas are about 4:1 to 10:1, the long screenshots of a thread posted on social
# media up to about 20:1. The limit leaves room above those (a corpus's odd banner should not stop
# a training run) while a resize to 224 pixels stays at most 224 x 11,200 (2.5 M pixels).
MAX_ASPECT_RATIO = 50
# Pixels an image may have once resized by its image processor, before the crop (75 MB in 8-bit RGB).
# Within MAX_ASPECT_RATIO, only an image processor with a short side over 700 pixels reaches it.
MAX_RESIZED_PIXELS = 5000 * 5000
# The short side most image processors resize to (ViT, ResNet, CLIP): the size named in a refusal
# when the image processor is not known.
USUAL_SHORT_SIDE = 224
EXIF_ORIENTATION = 0x0112  # the EXIF tag of the orientation, ExifTags.Base.Orientation


def check_missing_image_policy(missing_image: str) -> None:
    """Raise a ValueError unless ``missing_image`` is one of `MISSING_IMAGE_POLICIES`."""
    if missing_image not in MISSING_IMAGE_POLICIES:
        raise ValueError(f"missing_image must be one of {MISSING_IMAGE_POLICIES}, got {missing_image!r}.")


class ImageReadError(OSError):
    """An image that cannot be read (missing, truncated, not an image, too large, values out of range).

    The message names the file (or says ``image bytes``, ``array``) and how to fix it.
    """


class ImageSizeError(ImageReadError):
    """An image of a size the model cannot read (see `check_image_size`); ``reason`` is the message
    without the image's name, for a caller that names it its own way."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"Cannot read image {name}: {reason}")
        self.reason = reason


def load_image(source, image_processor=None) -> Image.Image:
    """An 8-bit RGB copy of an image, turned upright by its EXIF orientation.

    Args:
        source: a path (``str`` or ``os.PathLike``), a `PIL.Image.Image`, a numpy array
            (``H x W``, ``H x W x 3`` or ``H x W x 4``, or channels first; ``uint8``, ``uint16``, or float
            in ``[0, 1]``), a torch tensor of the same
            or the bytes of an image file. None is the caller's business (no image).
        image_processor: the image processor the image is for, if any: the size its resize
            would give the image is checked against `MAX_RESIZED_PIXELS` (see `check_image_size`).

    Raises:
        ImageReadError: a source that does not read as an image; `ImageSizeError`, one of a size the
            model cannot read.
        TypeError: any other kind of source.
    """
    if isinstance(source, Image.Image):
        check_image_size(upright_size(source), "PIL image", image_processor)
        return to_rgb(upright(source), "PIL image")
    if hasattr(source, "detach") and hasattr(source, "numpy"):  # a torch tensor, as image processors take
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        image = image_from_array(source)
        check_image_size(image.size, "array", image_processor)
        return to_rgb(image, "array")
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        raise ImageReadError(
            f"Cannot read image {source}: images are read from files, not URLs. Download it first, or pass its "
            "bytes or a PIL image."
        )
    if isinstance(source, (str, os.PathLike)):
        return read_image_file(source, str(source), image_processor)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return read_image_file(io.BytesIO(source), "image bytes", image_processor)
    raise TypeError(
        f"Cannot make an image of a {type(source).__name__}; expected a path (str or os.PathLike), "
        "a PIL.Image.Image, a numpy array or the bytes of an image file."
    )


def read_image_file(file, name: str, image_processor=None) -> Image.Image:
    """Open, check, decode and convert one image file (a path or a binary file object named ``name``).
    Its size is checked on the header, before the pixels are decoded."""
    try:
        with Image.open(file) as image:
            check_image_size(upright_size(image), name, image_processor)
            image.load()
            image = upright(image)
    except FileNotFoundError:
        raise ImageReadError(f"Cannot read image {name}: no such file. Check the path (and image_dir).") from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(
            f"Cannot read image {name}: {error} Shrink the image, or raise PIL.Image.MAX_IMAGE_PIXELS "
            "if you trust the file."
        ) from error
    except (OSError, ValueError, EOFError) as error:
        if isinstance(error, ImageReadError):  # refused by check_image_size
            raise
        raise ImageReadError(
            f"Cannot read image {name} ({error}). Replace it with a readable image file (JPEG, PNG, ...)."
        ) from error
    return to_rgb(image, name)


def orientation(image: Image.Image) -> int:
    """The EXIF orientation of ``image``: 1 (upright, also without a tag) to 8."""
    return image.getexif().get(EXIF_ORIENTATION, 1)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """The size (width, height) of ``image`` once turned by its EXIF orientation: 5 to 8 turn it a quarter."""
    return image.size[::-1] if orientation(image) in (5, 6, 7, 8) else image.size


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says (a copy without the tag, so that it is not
    turned twice), or ``image`` itself when it is upright."""
    if orientation(image) == 1:
        return image
    return ImageOps.exif_transpose(image)


def check_image_size(size: tuple[int, int], name: str, image_processor=None) -> None:
    """Refuse an image of ``size`` (width, height) that is longer than `MAX_ASPECT_RATIO` times its
    width (or the other way round), or that ``image_processor``'s resize would make larger than
    `MAX_RESIZED_PIXELS` pixels. Called before the image is decoded and before it is resized."""
    width, height = size
    if not width or not height:
        return  # an empty image, refused by to_rgb with its own message
    resized = resized_size(size, image_processor)
    known = resized is not None
    if not known:  # no image processor, or one that does not keep the aspect ratio: say what a usual one does
        resize = f"resized to a short side of {USUAL_SHORT_SIDE} pixels, as image processors of most models do"
        resized = resized_size(size, USUAL_SHORT_SIDE)
    else:
        resize = f"resized by its image processor to a short side of {min(resized)} pixels"
    after = f"{resize}, it would be {resized[0]} x {resized[1]} pixels"
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        shown = f"{ratio:.1f}".removesuffix(".0")
        raise ImageSizeError(
            name,
            f"it is {width} x {height} pixels, an aspect ratio of {shown}:1, over the limit of {MAX_ASPECT_RATIO}:1 "
            f"(processing.images.MAX_ASPECT_RATIO); {after}. Crop it to at most {MAX_ASPECT_RATIO} times as long "
            "as it is wide.",
        )
    if known and resized[0] * resized[1] > MAX_RESIZED_PIXELS:
        raise ImageSizeError(
            name,
            f"it is {width} x {height} pixels; {after}, {resized[0] * resized[1]} pixels, over the limit of "
            f"{MAX_RESIZED_PIXELS} (processing.images.MAX_RESIZED_PIXELS). Shrink or crop the image.",
        )


def resized_size(size: tuple[int, int], image_processor) -> tuple[int, int] | None:
    """The size (width, height) that ``image_processor`` (or a resize to a short side of that many
    pixels) gives an image of ``size`` before its crop, when it resizes the short side and keeps the
    aspect ratio, the resize that grows with the aspect ratio (as torchvision and transformers compute
    it); None when it resizes to a fixed size, or when there is no image processor or its resize is not known."""
    short = image_processor if isinstance(image_processor, int) else short_side(image_processor)
    if short is None:
        return None
    width, height = size
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def short_side(image_processor) -> int | None:
    """The length to which ``image_processor`` resizes the short side of an image, keeping its aspect
    ratio; None when it resizes otherwise. Reads timm image processors (transformers'
    `TimmWrapperImageProcessor`: a torchvision ``Resize`` to one length in its ``val_transforms``) and
    transformers' image processors (``size={"shortest_edge": ...}``), without importing either."""
    transforms = getattr(getattr(image_processor, "val_transforms", None), "transforms", None)
    if transforms is not None:
        for transform in transforms:
            if type(transform).__name__ == "Resize":
                length = getattr(transform, "size", None)
                length = length[0] if isinstance(length, (list, tuple)) and len(length) == 1 else length
                return length if isinstance(length, int) else None  # (height, width): a fixed size
        return None
    size = getattr(image_processor, "size", None)
    short = size.get("shortest_edge") if isinstance(size, Mapping) else getattr(size, "shortest_edge", None)
    return short if isinstance(short, int) else None


def to_rgb(image: Image.Image, name: str) -> Image.Image:
    """``image`` in 8-bit RGB; modes with more than 8 bits per pixel are scaled, not clipped."""
    if not image.width or not image.height:
        raise ImageReadError(f"Cannot read image {name}: it is {image.width} x {image.height} pixels, empty.")
    if image.mode in WHITE_OF_MODE:
        image = Image.fromarray(to_8_bits(np.asarray(image), WHITE_OF_MODE[image.mode], name))
    return image.convert("RGB")


def image_from_array(array: np.ndarray) -> Image.Image:
    """A PIL image (L, RGB or RGBA) of an ``H x W``, ``H x W x 3`` or ``H x W x 4`` array (channels
    first, ``1|3|4 x H x W`` as torchvision and image processors use, are moved last)."""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (3, 4):
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageReadError(f"Cannot read image array of shape {array.shape}; expected H x W, H x W x 3 or H x W x 4.")
    if not array.shape[0] or not array.shape[1]:
        raise ImageReadError(f"Cannot read image array of shape {array.shape}: it has no pixels.")
    if array.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.dtype == np.uint16:
        return Image.fromarray(to_8_bits(array, SIXTEEN_BIT_WHITE, "array"))
    if np.issubdtype(array.dtype, np.floating):
        return Image.fromarray(to_8_bits(array, FLOAT_WHITE, "array"))
    raise ImageReadError(f"Cannot read image array of dtype {array.dtype}; expected uint8, uint16, or float in [0, 1].")


def to_8_bits(values: np.ndarray, white: float, name: str) -> np.ndarray:
    """``values`` in ``[0, white]`` scaled to ``uint8`` ``[0, 255]``; values outside are an error, not clipped."""
    values = values.astype(np.float64)
    if values.size and not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= white):
        raise ImageReadError(
            f"Cannot read image {name}: its values span [{values.min()}, {values.max()}], outside [0, {white}] "
            f"(black to white). Scale the image to [0, {white}] first."
        )
    return np.round(values * (255 / white)).astype(np.uint8)
