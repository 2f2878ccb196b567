"""The one image loader of the library: any image source -> an 8-bit RGB `PIL.Image.Image`.

    >>> from processing.images import load_image
    >>> load_image("photo.jpg").mode
    'RGB'

`load_image` takes a path, a PIL image, a numpy array or the bytes of an image file (not a
URL: that is refused with a message). Images
with more than 8 bits per pixel (16-bit PNGs, 32-bit integer or float TIFFs) are scaled to
8 bits from their full range, not clipped. A file that cannot be read (missing, truncated,
not an image, larger than PIL's decompression-bomb limit) raises `ImageReadError`, which
names the file and how to fix it.

This module imports only the standard library, numpy and PIL: it is copied into checkpoints
with the processor's code.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

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


def check_missing_image_policy(missing_image: str) -> None:
    """Raise a ValueError unless ``missing_image`` is one of `MISSING_IMAGE_POLICIES`."""
    if missing_image not in MISSING_IMAGE_POLICIES:
        raise ValueError(f"missing_image must be one of {MISSING_IMAGE_POLICIES}, got {missing_image!r}.")


class ImageReadError(OSError):
    """An image that cannot be read (missing, truncated, not an image, too large, values out of range).

    The message names the file (or says ``image bytes``, ``array``) and how to fix it.
    """


def load_image(source) -> Image.Image:
    """An 8-bit RGB copy of an image.

    Args:
        source: a path (``str`` or ``os.PathLike``), a `PIL.Image.Image`, a numpy array
            (``H x W``, ``H x W x 3`` or ``H x W x 4``, or channels first; ``uint8``, ``uint16``, or float
            in ``[0, 1]``), a torch tensor of the same
            or the bytes of an image file. None is the caller's business (no image).

    Raises:
        ImageReadError: a source that does not read as an image.
        TypeError: any other kind of source.
    """
    if isinstance(source, Image.Image):
        return to_rgb(source, "PIL image")
    if hasattr(source, "detach") and hasattr(source, "numpy"):  # a torch tensor, as image processors take
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        return to_rgb(image_from_array(source), "array")
    if isinstance(source, str) and source.lower().startswith(("http://", "https://")):
        raise ImageReadError(
            f"Cannot read image {source}: images are read from files, not URLs. Download it first, or pass its "
            "bytes or a PIL image."
        )
    if isinstance(source, (str, os.PathLike)):
        return read_image_file(source, str(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return read_image_file(io.BytesIO(source), "image bytes")
    raise TypeError(
        f"Cannot make an image of a {type(source).__name__}; expected a path (str or os.PathLike), "
        "a PIL.Image.Image, a numpy array or the bytes of an image file."
    )


def read_image_file(file, name: str) -> Image.Image:
    """Open, decode and convert one image file (a path or a binary file object named ``name``)."""
    try:
        with Image.open(file) as image:
            image.load()
    except FileNotFoundError:
        raise ImageReadError(f"Cannot read image {name}: no such file. Check the path (and image_dir).") from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(
            f"Cannot read image {name}: {error} Shrink the image, or raise PIL.Image.MAX_IMAGE_PIXELS "
            "if you trust the file."
        ) from error
    except (OSError, ValueError, EOFError) as error:
        raise ImageReadError(
            f"Cannot read image {name} ({error}). Replace it with a readable image file (JPEG, PNG, ...)."
        ) from error
    return to_rgb(image, name)


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
