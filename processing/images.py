"""Placeholder until the hardening branch lands its image loader."""
from PIL import Image


def load_image(source):
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    with Image.open(source) as opened:
        return opened.convert("RGB")
