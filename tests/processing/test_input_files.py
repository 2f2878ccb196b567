"""The readers of input files (corpora, contexts, images; their shared checks live in
processing/input_files.py): every bad input gets a clear answer naming the file and line, nothing
degrades silently, nothing is read outside its folder. Each test feeds one bad input, written by
hand, and checks the answer."""

import io
import json
import logging
import struct
import zlib

import numpy as np
import pytest
from helpers import write_contexts, write_jmere, write_mnre, write_twitter
from PIL import Image

from processing.collator import ShapCADataCollator
from processing.context_store import ContextFormatError, ContextStore
from processing.corpora import CorpusFormatError, MissingImageError, load_corpus, log_image_coverage, open_corpus
from processing.images import ImageReadError, load_image

TWITTER_IMAGE_IDS = ["100.jpg", "101.jpg", "200.jpg", "300.jpg", "301.jpg"]


def replace_bytes(path, old: bytes, new: bytes):
    data = path.read_bytes()
    assert data.count(old) == 1, f"{old!r} must occur once in {path}"
    path.write_bytes(data.replace(old, new))


# -- case 8: non-UTF-8 bytes name the file and the line; a BOM is accepted -------------------


def write_jmere_one_item_per_line(folder):
    """The JMERE fixture with one item per line, so that a bad byte has a line number other than 1."""
    write_jmere(folder)
    for name in ("train.json", "val.json", "test.json"):
        items = json.loads((folder / name).read_text(encoding="utf-8"))
        (folder / name).write_text("[\n" + ",\n".join(json.dumps(item) for item in items) + "\n]\n", encoding="utf-8")
    return folder


LATIN1_CASES = {  # corpus -> (writer, file, UTF-8 word, its Latin-1 bytes, line of that word)
    "twitter2017": (write_twitter, "train.txt", b"Barcelona", b"Barcel\xf3na", 5),
    "mnre": (write_mnre, "mnre_train.txt", b"'relation': 'None'", b"'relation': 'N\xf6ne'", 2),
    "jmere": (write_jmere_one_item_per_line, "train.json", b'"opens"', b'"\xf6pens"', 3),
}


@pytest.mark.parametrize("name", sorted(LATIN1_CASES))
def test_non_utf8_corpus_file_names_file_and_line(tmp_path, name):
    writer, file_name, word, latin1, line = LATIN1_CASES[name]
    data = writer(tmp_path / name)
    replace_bytes(data / file_name, word, latin1)
    with pytest.raises(CorpusFormatError, match=rf"{file_name}:{line}: byte 0x[0-9a-f]{{2}} .* is not UTF-8"):
        load_corpus(name, data, cache_dir=tmp_path / "cache")


def test_non_utf8_context_file_names_file_and_line(tmp_path):
    contexts = write_contexts(tmp_path / "ctx.jsonl", TWITTER_IMAGE_IDS)
    replace_bytes(contexts, b"a picture for 200.jpg", b"une image \xe0 200.jpg")
    with pytest.raises(ContextFormatError, match=r"ctx.jsonl:3: byte 0xe0 at byte \d+ of the line is not UTF-8"):
        ContextStore([contexts])
    with pytest.raises(ContextFormatError, match=r"ctx.jsonl:3: .* is not UTF-8"):
        load_corpus("twitter2017", write_twitter(tmp_path / "tw"), context_files=[contexts], cache_dir=tmp_path / "c")


BOM = "\ufeff".encode()


@pytest.mark.parametrize(
    "name, writer, file_name, split, first_words",
    [
        ("twitter2017", write_twitter, "train.txt", "train", ["Messi", "scores", "in", "Barcelona"]),
        ("mnre", write_mnre, "mnre_train.txt", "train", ["Anna", "joins", "Acme", "Corp"]),
        ("jmere", write_jmere, "train.json", "train", ["Anna", "Lee", "joins", "Acme", "in", "Oslo"]),
    ],
)
def test_byte_order_mark_is_accepted_in_corpus_files(tmp_path, name, writer, file_name, split, first_words):
    data = writer(tmp_path / name)
    (data / file_name).write_bytes(BOM + (data / file_name).read_bytes())
    corpus = load_corpus(name, data, cache_dir=tmp_path / "cache")
    assert corpus[split][0]["words"] == first_words


def test_byte_order_mark_is_accepted_in_context_files(tmp_path):
    contexts = write_contexts(tmp_path / "ctx.jsonl", TWITTER_IMAGE_IDS)
    contexts.write_bytes(BOM + contexts.read_bytes())
    assert ContextStore([contexts]).get("100.jpg") == "a picture for 100.jpg"


# -- case 11: image ids stay inside the image folder --------------------------------------


@pytest.fixture
def image_folders(tmp_path):
    """An image folder, and beside it a file that a corpus must not reach."""
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.jpg").write_bytes(b"not for the corpus")
    return images


@pytest.mark.parametrize(
    "name, writer, file_name, old, new, where, image_id",
    [
        ("twitter2017", write_twitter, "valid.txt", b"IMGID:200", b"IMGID:../outside/secret", "valid.txt:1", "../outside/secret.jpg"),
        ("mnre", write_mnre, "mnre_test.txt", b"'c1.jpg'", b"'/etc/passwd'", "mnre_test.txt:1", "/etc/passwd"),
        ("jmere", write_jmere, "val.json", b'"j3.jpg"', b'"../../../../etc/passwd"', "val.json item:1", "../../../../etc/passwd"),
    ],
)  # fmt: skip
def test_image_ids_outside_the_image_folder_are_format_errors(
    tmp_path, image_folders, name, writer, file_name, old, new, where, image_id
):
    data = writer(tmp_path / name)
    replace_bytes(data / file_name, old, new)
    with pytest.raises(CorpusFormatError, match=rf"{where}: image id {image_id!r} is not a plain file name"):
        load_corpus(name, data, image_dir=image_folders, missing_image="skip", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("image_id", ["../outside/secret.jpg", "sub/1.jpg", "..", "C:\\images\\1.jpg"])
def test_context_image_ids_with_a_folder_are_format_errors(tmp_path, image_id):
    contexts = write_contexts(tmp_path / "ctx.jsonl", ["1.jpg", image_id])
    with pytest.raises(ContextFormatError, match=r"ctx.jsonl:2: image id .* is not a plain file name"):
        ContextStore([contexts])


# -- case 4: duplicate and non-string contexts ----------------------------------------------


def context_line(image_id, context) -> str:
    return json.dumps({"image_id": image_id, "context": context, "generator": "hand", "source": "test"}) + "\n"


def test_conflicting_duplicate_contexts_warn_with_file_and_both_lines(tmp_path, caplog):
    path = tmp_path / "ctx.jsonl"
    lines = [context_line("1.jpg", "a dog"), context_line("2.jpg", "a cat"), context_line("1.jpg", "a wolf")]
    path.write_text("".join(lines), encoding="utf-8")
    with caplog.at_level("WARNING", logger="processing.context_store"):
        store = ContextStore([path])
    assert store.get("1.jpg") == "a wolf"
    assert f"{path}: image id '1.jpg' has different contexts on lines 1 and 3; using line 3." in caplog.text


def test_repeated_identical_context_does_not_warn(tmp_path, caplog):
    path = tmp_path / "ctx.jsonl"
    path.write_text(context_line("1.jpg", "a dog") * 2, encoding="utf-8")
    with caplog.at_level("WARNING", logger="processing.context_store"):
        assert ContextStore([path]).get("1.jpg") == "a dog"
    assert caplog.text == ""


@pytest.mark.parametrize("context, kind", [(["a", "dog"], "list"), (3, "int"), (None, "NoneType")])
def test_non_string_context_is_an_error_with_file_and_line(tmp_path, context, kind):
    path = tmp_path / "ctx.jsonl"
    path.write_text(context_line("1.jpg", "a dog") + context_line("2.jpg", context), encoding="utf-8")
    with pytest.raises(ContextFormatError, match=rf"ctx.jsonl:2: 'context' is a {kind} .*; expected a string"):
        ContextStore([path])


# -- cases 3, 7, 10: one image loader; high bit depths scaled, bombs and bad files named -----------

GRADIENT_16_BIT = np.array([[0, 4096, 16384], [32768, 49152, 65535]], dtype=np.uint16)
GRADIENT_8_BIT = [[0, 16, 64], [128, 191, 255]]  # GRADIENT_16_BIT * 255 / 65535, rounded


def red_channel(image: Image.Image) -> list:
    assert image.mode == "RGB"
    return np.asarray(image)[..., 0].tolist()


def test_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path):
    path = tmp_path / "depth.png"
    Image.fromarray(GRADIENT_16_BIT).save(path)
    assert Image.open(path).mode == "I;16"
    assert red_channel(load_image(path)) == GRADIENT_8_BIT


@pytest.mark.parametrize("mode", ["I;16B", "I", "F"])
def test_high_bit_depth_and_float_modes_are_scaled(mode):
    values = GRADIENT_16_BIT / 65535.0 if mode == "F" else GRADIENT_16_BIT
    image = Image.fromarray(values.astype({"I;16B": ">u2", "I": np.int32, "F": np.float32}[mode]))
    assert image.mode == mode
    assert red_channel(load_image(image)) == GRADIENT_8_BIT


def test_arrays_of_each_accepted_kind():
    assert red_channel(load_image(GRADIENT_16_BIT)) == GRADIENT_8_BIT
    assert red_channel(load_image(GRADIENT_16_BIT / 65535.0)) == GRADIENT_8_BIT
    assert red_channel(load_image(np.stack([GRADIENT_16_BIT] * 3, axis=-1))) == GRADIENT_8_BIT
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = np.array(GRADIENT_8_BIT), 255
    assert red_channel(load_image(rgba)) == GRADIENT_8_BIT
    with pytest.raises(ImageReadError, match=r"image array: its values span \[0.0, 2.0\], outside \[0, 1.0\]"):
        load_image(np.array([[0.0, 2.0]]))
    with pytest.raises(ImageReadError, match=r"image array of shape \(2, 3, 5\)"):
        load_image(np.zeros((2, 3, 5), dtype=np.uint8))


def test_bytes_and_pil_images_are_accepted_and_other_types_are_type_errors():
    encoded = io.BytesIO()
    Image.new("L", (3, 2), 128).save(encoded, format="PNG")
    assert load_image(encoded.getvalue()).size == (3, 2)
    assert load_image(Image.new("P", (3, 2))).mode == "RGB"
    with pytest.raises(ImageReadError, match=r"Cannot read image image bytes \(.*\)\. Replace it"):
        load_image(b"not an image")
    with pytest.raises(TypeError, match=r"image of a list; expected a path .*, a PIL.Image.Image, a numpy array"):
        load_image([[0, 1]])


def png_header(width: int, height: int) -> bytes:
    """The start of a PNG file: enough for PIL to read the size, no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    size = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", size) + chunk(b"IDAT", b"")


def test_decompression_bomb_is_an_unreadable_image_that_names_the_file(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20000, 20000))
    with pytest.raises(ImageReadError, match=rf"Cannot read image {bomb}: Image size \(400000000 pixels\) exceeds"):
        load_image(bomb)


def test_collator_skips_a_decompression_bomb_under_skip(tmp_path, processor, caplog):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20000, 20000))
    rows = [{"words": ["hi"], "context": "x", "image": str(bomb)}]
    with pytest.raises(ImageReadError, match=rf"{bomb}: .* Or pass missing_image='skip'"):
        ShapCADataCollator(processor)(rows)
    with caplog.at_level(logging.WARNING, logger="processing.collator"):
        batch = ShapCADataCollator(processor, missing_image="skip")(rows)
    assert batch["image_mask"].tolist() == [0] and str(bomb) in caplog.text


def test_collator_reads_16_bit_images_through_the_loader(tmp_path, processor):
    path = tmp_path / "depth.png"
    Image.fromarray(np.full((64, 64), 20000, dtype=np.uint16)).save(path)
    batch = ShapCADataCollator(processor)([{"words": ["hi"], "context": "x", "image": str(path)}])
    assert batch["image_mask"].tolist() == [1]
    pixels = batch["pixel_values"][0]
    assert float(pixels.max() - pixels.min()) < 1e-6  # one grey, not clipped white
    white = Image.new("RGB", (64, 64), "white")
    white_pixels = ShapCADataCollator(processor)([{"words": ["hi"], "context": "x", "image": white}])["pixel_values"]
    assert float(pixels.max()) < float(white_pixels.max())


# -- case 1: a missing image folder is an error; missing images follow missing_image; coverage is logged


def twitter_images(folder, image_ids=TWITTER_IMAGE_IDS):
    folder.mkdir()
    for image_id in image_ids:
        Image.new("RGB", (4, 4)).save(folder / image_id)
    return folder


def test_image_dir_that_does_not_exist_is_an_error_naming_folder_and_flag(tmp_path):
    data = write_twitter(tmp_path / "tw")
    nowhere = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=rf"image folder {nowhere} \(image_dir, --image_dir\) does not exist"):
        load_corpus("twitter2017", data, image_dir=nowhere, cache_dir=tmp_path / "cache")


def test_missing_image_files_are_an_error_by_default_and_none_under_skip(tmp_path, caplog):
    data = write_twitter(tmp_path / "tw")
    images = twitter_images(tmp_path / "images", ["100.jpg", "200.jpg", "300.jpg"])
    message = rf"1 images named in .*train.txt are not in {images}; first ones: \['101.jpg'\]. .* missing_image='skip'"
    with pytest.raises(MissingImageError, match=message):
        load_corpus("twitter2017", data, image_dir=images, cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="processing.corpora"):
        corpus = load_corpus("twitter2017", data, image_dir=images, missing_image="skip", cache_dir=tmp_path / "cache")
    assert corpus["train"]["image"] == [str(images / "100.jpg"), None]
    assert "train: 1 of 2 examples have no image." in caplog.text
    assert "validation: 0 of 1 examples have no image." in caplog.text
    assert "test: 1 of 2 examples have no image." in caplog.text
    with pytest.raises(ValueError, match=r"missing_image must be one of \('error', 'skip'\), got 'ignore'"):
        load_corpus("twitter2017", data, image_dir=images, missing_image="ignore", cache_dir=tmp_path / "cache")


def test_images_added_later_rebuild_the_cache(tmp_path):
    data = write_twitter(tmp_path / "tw")
    images = twitter_images(tmp_path / "images", ["100.jpg"])
    first = load_corpus("twitter2017", data, image_dir=images, missing_image="skip", cache_dir=tmp_path / "cache")
    Image.new("RGB", (4, 4)).save(images / "101.jpg")
    second = load_corpus("twitter2017", data, image_dir=images, missing_image="skip", cache_dir=tmp_path / "cache")
    assert first["train"]["image"][1] is None and second["train"]["image"][1] == str(images / "101.jpg")


def test_log_image_coverage_counts_examples_without_an_image_per_split(tmp_path, caplog):
    data = write_twitter(tmp_path / "tw")
    corpus = load_corpus("twitter2017", data, cache_dir=tmp_path / "cache")  # no image_dir: no images
    with caplog.at_level(logging.WARNING, logger="processing.corpora"):
        assert log_image_coverage(corpus) == {"train": 2, "validation": 1, "test": 2}
    assert "train: 2 of 2 examples have no image." in caplog.text


# -- case 9: an unknown corpus name lists the valid ones ----------------------------------------

VALID_NAMES = r"\['demo', 'jmere', 'mnre', 'twitter2015', 'twitter2017'\]"


def test_unknown_corpus_name_is_a_value_error_listing_the_valid_names(tmp_path):
    with pytest.raises(ValueError, match=rf"Unknown corpus 'twitter2019'; choose one of {VALID_NAMES}"):
        open_corpus("twitter2019")
    with pytest.raises(ValueError, match=rf"Unknown corpus 'twitter2019'; choose one of {VALID_NAMES}"):
        load_corpus("twitter2019", tmp_path)


# -- issue 18, second round: images and inputs that crashed or misled -------------------------


@pytest.mark.parametrize("source", [np.zeros((0, 0, 3), dtype=np.uint8), np.zeros((0, 5), dtype=np.uint8)])
def test_an_image_without_pixels_is_refused_by_the_loader_and_the_processor(processor, source):
    with pytest.raises(ImageReadError, match="has no pixels"):
        load_image(source)
    with pytest.raises(ImageReadError, match="has no pixels"):  # not a ZeroDivisionError in the image processor
        processor([["hi"]], context=["x"], images=[source])


def test_a_16_bit_pil_image_given_to_the_processor_goes_through_the_loader(processor):
    grey = Image.fromarray(np.full((64, 64), 20000, dtype=np.uint16))
    assert grey.mode.startswith("I")
    pixels = processor([["hi"]], context=["x"], images=[grey])["pixel_values"][0]
    white = processor([["hi"]], context=["x"], images=[Image.new("RGB", (64, 64), "white")])["pixel_values"][0]
    assert float(pixels.max() - pixels.min()) < 1e-6 and float(pixels.max()) < float(white.max())


def test_an_image_url_is_refused_plainly():
    with pytest.raises(ImageReadError, match="images are read from files, not URLs"):
        load_image("https://example.com/photo.jpg")
