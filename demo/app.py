"""A web page to try a Shap-CA checkpoint on a post and its picture (Gradio, ready for a Hugging Face Space).

    python demo/app.py --model runs/demo [--context_store FILE] [--context_generator NAME]

serves the page on http://127.0.0.1:7860. A Space runs `app.py` without arguments: there the
checkpoint (and, optionally, the context store and generator) come from the variables
SHAPCA_MODEL, SHAPCA_CONTEXT_STORE and SHAPCA_CONTEXT_GENERATOR.

Everything the page shows comes from the library's pipeline (`pipeline("multimodal-ner")`):
the entities (and, for word-pair checkpoints, the relations), and where the context came from
(`resolve_context`). The clickable examples are drawn from the generated demo corpus.

The page opens only pictures that were uploaded to it (Gradio's upload folder) and its own
example pictures, and only regular files; posts, contexts and uploads have size limits, every
request a time limit, and requests wait in a queue of limited length (see `Limits` and the flags).
An upload is deleted once a post has been read with it, and an upload left unread after
`UPLOADS_KEPT_SECONDS`.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import re
import stat
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import pandas as pd
import torch
from gradio.utils import get_upload_folder
from PIL import Image
from transformers import pipeline

import processing  # noqa: F401  (registers the multimodal-ner task)
from processing.corpora import load_corpus
from processing.images import ImageReadError, ImageSizeError, load_image
from processing.pipeline_shapca import examples_from_inputs, split_words
from processing.tasks import TASK_OF_HEAD, TASKS

ENTITY_COLUMNS = ["entity", "type", "score"]
RELATION_COLUMNS = ["head", "relation", "tail", "score"]
SOURCES = (
    "given: typed in the context box or set by an example; store: the context file, by the picture's file name; "
    "generator: described from the picture by the image-to-text model; none: the post was read without a context"
)
NUMBER_OF_EXAMPLES = 6
EXAMPLES_FOLDER = Path(tempfile.gettempdir()) / "shapca-demo-examples"
# An upload is deleted once a post has been read with it; one never read (a picture uploaded and
# left, or sent to the upload address alone) is deleted after this long, checked as often.
UPLOADS_KEPT_SECONDS = 3600


UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}  # as Gradio counts max_file_size


def file_size(text: str) -> int:
    """A size given on the command line (``10mb``, ``512kb``, ``2000000``) -> bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: write it as 10mb, 512kb or a number of bytes")
    return int(float(match.group(1)) * UNITS[match.group(2) or "b"])


def readable_size(size: int) -> str:
    """Bytes -> the largest unit that keeps the number at 1 or more (``10 MB``, ``2.5 KB``, ``1000 B``)."""
    unit = next(unit for unit in ("gb", "mb", "kb", "b") if size >= UNITS[unit] or unit == "b")
    return f"{size / UNITS[unit]:.1f}".removesuffix(".0") + f" {unit.upper()}"


class GivenUp(Exception):
    """Raised in the work of a request that was answered with the time limit's error (see
    `Extractor.within_time_limit`): it stops there, and nobody reads it."""


def stop_if_given_up(stop: threading.Event) -> None:
    """End the work of a request between two of its steps once its request has been given up."""
    if stop.is_set():
        raise GivenUp


LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if os.name == "posix" else None


def give_memory_back() -> None:
    """Hand the memory freed by a request back to the system. The C allocator (glibc's) keeps what
    a thread freed for its next use, so the memory of a large picture, decoded and resized in a
    worker thread, stayed with the server after the answer (tens of MB per picture); malloc_trim
    returns it. A no-op where the C library has no malloc_trim (macOS, Windows, musl)."""
    trim = getattr(LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


def forget_frames(error: BaseException) -> None:
    """Drop the local variables of the frames of ``error`` and the errors it was raised from,
    keeping their lines: the traceback of a failed request would otherwise hold its picture."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__


class Limits(NamedTuple):
    """What one request may ask of the server. Each has a flag of the same name, described in `LIMIT_HELP`."""

    max_post_words: int = 1000
    max_post_characters: int = 10_000
    max_context_characters: int = 2000
    max_upload_size: int = 10 * UNITS["mb"]
    time_limit: float = 60.0
    concurrency: int = 2
    queue_size: int = 20


LIMIT_HELP = {
    "max_post_words": "Words of a post",
    "max_post_characters": "Characters of a post (a long run without spaces is one word)",
    "max_context_characters": "Characters of a context typed in the box",
    "max_upload_size": "Size of an uploaded picture, checked on upload and on opening: 10mb, 512kb or bytes",
    "time_limit": "Seconds a request may take before it is answered with an error",
    "concurrency": "Requests read at the same time",
    "queue_size": "Requests that may wait for their turn; more are turned away",
}


DEFAULT_LIMITS = Limits()


def read_picture_file(path: str, name: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    Opened without blocking (a named pipe or a device would otherwise stall the worker until
    someone writes to it), then refused unless it is a regular file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        raise gr.Error(f"The picture {name!r} could not be opened: upload it again.") from None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise gr.Error(f"The picture {name!r} is not a file: upload a PNG, JPEG or WebP picture.")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise gr.Error(
            f"The picture {name!r} is larger than the limit of {readable_size(max_bytes)} (--max_upload_size): "
            f"it has {readable_size(max(len(data), status.st_size))}. Upload a smaller picture."
        )
    return data


def demo_examples(head: str) -> list[list[str]]:
    """Rows (post, picture path, context) from the test split of the generated demo corpus, in the
    flavour of a checkpoint's ``head``: its images are drawn at the first start and kept in the
    system's temporary folder."""
    corpus = load_corpus(
        "demo",
        cache_dir=EXAMPLES_FOLDER / "datasets",
        image_dir=EXAMPLES_FOLDER / "images",
        flavour="word_pair" if head == "word_pair" else "ner",
        train_size=1,
        validation_size=1,
        test_size=NUMBER_OF_EXAMPLES,
    )
    return [[" ".join(row["words"]), row["image"], row["context"]] for row in corpus["test"]]


class Extractor:
    """The page's two actions on one pipeline: suggest a context for a picture, extract from a post.

    Both take their inputs unprocessed (``preprocess=False``): the picture comes as Gradio's record
    of the upload, ``{"path": <its copy in Gradio's upload folder>, "orig_name": <the file's name>,
    ...}``, and is opened here, so that a file that is not an image gets a message saying so rather
    than Gradio's bare "Error". Unprocessed also means unchecked: a client can send any path, with
    or without Gradio's file marker. So a picture is opened only from ``picture_folders`` (by
    default Gradio's upload folder, where uploads and the examples' cached copies are kept) or when
    it is one of ``example_pictures``, wherever a link leads; everything else gets the same refusal,
    which tells nothing of whether the file exists.

    An upload is deleted once a post has been read with it (`extract`; the context suggested on
    upload leaves it for the post); the example pictures and their copies are kept. The work of a
    request runs on a thread of its own, at most ``limits.concurrency`` at a time, and is given up
    after ``limits.time_limit`` seconds (see `within_time_limit`).
    """

    def __init__(self, nlp, limits: Limits = DEFAULT_LIMITS, picture_folders=None, example_pictures=()):
        self.nlp = nlp
        self.limits = limits
        folders = [get_upload_folder()] if picture_folders is None else picture_folders
        self.picture_folders = [Path(os.path.realpath(folder)) for folder in folders]
        self.example_pictures = {Path(os.path.realpath(picture)) for picture in example_pictures}
        # Places for the work of requests: `concurrency` for work within its time limit, and as many
        # again for threads whose work was given up but has not stopped yet (see `within_time_limit`).
        self.running = threading.BoundedSemaphore(limits.concurrency)
        self.threads = threading.BoundedSemaphore(2 * limits.concurrency)

    def may_open(self, path) -> bool:
        """Whether ``path`` leads (links followed) into a picture folder or to an example picture."""
        try:
            real = Path(os.path.realpath(path))
        except (TypeError, ValueError, OSError):  # not a path, a NUL byte, a loop of links...
            return False
        return real in self.example_pictures or any(real.is_relative_to(folder) for folder in self.picture_folders)

    def keep(self, pictures) -> None:
        """Never delete ``pictures`` (the examples' copies in the upload folder): add them to the example pictures."""
        self.example_pictures.update(Path(os.path.realpath(picture)) for picture in pictures)

    def open_picture(self, upload, delete: bool = False) -> tuple[Image.Image | None, str | None]:
        """The picture of an upload and its file name (the key of a context store); with ``delete``,
        the uploaded file is deleted once read (see `delete_upload`)."""
        if upload is None:
            return None, None
        path = upload.get("path") if isinstance(upload, dict) else None
        if not isinstance(path, str) or not self.may_open(path):
            raise gr.Error(
                "The picture was not uploaded to this page: only pictures uploaded here and the examples' "
                "pictures are read. Upload the picture again."
            )
        name = upload.get("orig_name")
        name = name if isinstance(name, str) and name else Path(path).name
        data = read_picture_file(path, name, self.limits.max_upload_size)
        if delete:
            self.delete_upload(path)
        try:
            return load_image(data), name
        except ImageSizeError as error:  # a strip that the model's resize would make huge
            raise gr.Error(f"The picture {name!r} cannot be read: {error.reason}") from None
        except ImageReadError:  # not an image, truncated, a decompression bomb...
            raise gr.Error(
                f"The picture {name!r} could not be opened: it is not an image file or it is damaged. "
                "Upload a PNG, JPEG or WebP picture, or remove the picture to read the post alone."
            ) from None

    def delete_upload(self, path: str) -> None:
        """Delete the uploaded file at ``path`` (its bytes have been read), and Gradio's folder of it
        when that is left empty. Only a file in a picture folder is deleted, never an example
        picture or an example's copy, which the next visitor's click on the example reads."""
        real = Path(os.path.realpath(path))
        if real in self.example_pictures or not any(real.is_relative_to(folder) for folder in self.picture_folders):
            return
        try:
            real.unlink()
            if real.parent not in self.picture_folders:
                real.parent.rmdir()  # fails, and is left, when another upload is in it
        except OSError:  # deleted already (the same picture read twice at once), or not empty
            pass

    def within_time_limit(self, work, *args):
        """``work(stop, *args)`` on a thread of its own, given up after ``limits.time_limit`` seconds
        (the wait for a place included); ``stop``, a `threading.Event`, is set when it is given up.

        Why a thread per request, and not a process that could be killed: a process would need its
        own copy of the model (a model on the GPU cannot be handed to a forked process), loaded
        again after each kill. A thread cannot be stopped from outside, so work that is given up is
        told to stop, and does at its next step (`stop_if_given_up`: after the picture is opened,
        the context found, the model's input made), and its place among the ``concurrency`` goes
        to the next request at once. (With a pool of ``concurrency`` threads, given-up work held its
        thread to the end, and a trickle of slow requests kept every other request waiting.) Its
        thread runs on until the current step ends: at most ``concurrency`` such threads are left
        at a time, and past that a request waits for one of them to end.
        """
        deadline = time.monotonic() + self.limits.time_limit
        if not self.threads.acquire(timeout=self.limits.time_limit):
            raise self.past_time_limit()
        if not self.running.acquire(timeout=max(0.0, deadline - time.monotonic())):
            self.threads.release()
            raise self.past_time_limit()
        stop, done, outcome = threading.Event(), threading.Event(), {}

        def run():
            try:
                outcome["value"] = work(stop, *args)
            except BaseException as error:  # noqa: BLE001  (raised again on the request's thread)
                forget_frames(error)
                outcome["error"] = error
            finally:
                give_memory_back()  # the picture is freed with the work's frames: before the answer
                self.threads.release()
                done.set()

        try:
            try:
                threading.Thread(target=run, name="shapca-demo", daemon=True).start()
            except RuntimeError:  # no thread to be had: the place was never used
                self.threads.release()
                raise
            if not done.wait(max(0.0, deadline - time.monotonic())):
                stop.set()
                raise self.past_time_limit()
        finally:
            self.running.release()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def past_time_limit(self) -> gr.Error:
        return gr.Error(
            f"The request took longer than the limit of {self.limits.time_limit:g} s (--time_limit) and was "
            "given up: the server is busy or the input is too large. Try again with a shorter post or later."
        )

    def check_text(self, text, context) -> tuple[str, str]:
        """The post and the context box, refused when empty, not text or over their limits."""
        if not isinstance(text, (str, type(None))) or not isinstance(context, (str, type(None))):
            raise gr.Error("The post and the context must be text.")
        if not text or not text.strip():
            raise gr.Error("The post is empty: type or paste the text of a post, or click one of the examples.")
        limits = self.limits
        if len(text) > limits.max_post_characters:
            raise gr.Error(
                f"The post has {len(text)} characters, over the limit of {limits.max_post_characters} "
                "(--max_post_characters). Shorten the post."
            )
        words = len(split_words(text)[0])
        if words > limits.max_post_words:
            raise gr.Error(
                f"The post has {words} words, over the limit of {limits.max_post_words} (--max_post_words). Shorten the post."
            )
        return text, (context or "").strip()

    def suggest_context(self, upload, typed, suggestion):
        """The context of the store or the generator for an uploaded picture, to prefill the box;
        remembered with its source, so that the box left as it is still reads as that source.
        Without one, what the visitor typed stays and what was suggested for another picture goes."""
        return self.within_time_limit(self._suggest_context, upload, typed, suggestion)

    def _suggest_context(self, stop, upload, typed, suggestion):
        image, image_id = self.open_picture(upload)
        stop_if_given_up(stop)
        context, source = self.nlp.resolve_context(None, image, image_id)
        if context is None:
            return ("" if suggestion is not None and typed == suggestion["context"] else typed), None
        return context, {"context": context, "source": source}

    def extract(self, text, upload, context, suggestion):
        text, context = self.check_text(text, context)
        # The box left as the store or the generator filled it reads as that source; else as given.
        suggested = bool(context) and suggestion is not None and context == suggestion["context"].strip()
        if context and not suggested and len(context) > self.limits.max_context_characters:
            raise gr.Error(
                f"The context has {len(context)} characters, over the limit of {self.limits.max_context_characters} "
                "(--max_context_characters). Shorten the context or leave it empty."
            )
        outputs, notice = self.within_time_limit(
            self._extract, text, upload, context, suggestion if suggested else None
        )
        if notice:
            gr.Warning(notice)  # here, on the request's thread, which Gradio knows
        return outputs

    def _extract(self, stop, text, upload, context, suggestion):
        image, image_id = self.open_picture(upload, delete=True)  # read: the upload is done with
        stop_if_given_up(stop)
        if not context:
            context, source = self.nlp.resolve_context(None, image, image_id)
            stop_if_given_up(stop)
        else:
            source = "given" if suggestion is None else suggestion["source"]

        # What `self.nlp(text, image=image, context=context)` does (a `ChunkPipeline`'s `run_single`),
        # a window at a time: the windows are counted as they go through the model, from the
        # processor's one run, and work given up stops before the next window.
        (example,), _ = examples_from_inputs(text, image, context)
        read = []
        for window in self.nlp.preprocess(example):
            stop_if_given_up(stop)
            read.append(self.nlp.forward(window))
        result, windows = self.nlp.postprocess(read), len(read)
        notice = None
        if windows > 1:
            notice = (
                f"The post is longer than the encoder's window ({self.nlp.processor.max_length} tokens, with the "
                f"context): it was read in {windows} overlapping windows, each word where it has the most "
                "context around it. Shorten the post or the context to read it at once."
            )

        # CRF checkpoints give a list of entities; word-pair checkpoints {"entities", "relations"}.
        entities, relations = (result["entities"], result["relations"]) if isinstance(result, dict) else (result, [])
        entity_rows = [[e["word"], e["entity_group"], round(e["score"], 3)] for e in entities]
        relation_rows = [[r["head"]["word"], r["relation"], r["tail"]["word"], round(r["score"], 3)] for r in relations]
        outputs = (
            {"text": text, "entities": entities},  # gr.HighlightedText reads entity_group, start and end
            pd.DataFrame(entity_rows, columns=ENTITY_COLUMNS),
            pd.DataFrame(relation_rows, columns=RELATION_COLUMNS),
            context or "",
            source,
        )
        return outputs, notice


def build_page(nlp, model_name: str, examples: list[list[str]], limits: Limits = DEFAULT_LIMITS) -> gr.Blocks:
    """The page, with its queue set up; launch it with ``max_file_size=limits.max_upload_size``."""
    extractor = Extractor(nlp, limits, example_pictures=[row[1] for row in examples if row[1]])
    word_pair = nlp.model.config.head == "word_pair"
    task_title = TASKS[TASK_OF_HEAD[nlp.model.config.head]].title
    suggests = nlp.context_store is not None or nlp.context_generator is not None
    # Uploads never read with a post are deleted after UPLOADS_KEPT_SECONDS (Gradio keeps the examples' copies).
    with gr.Blocks(title="Shap-CA demo", delete_cache=(UPLOADS_KEPT_SECONDS, UPLOADS_KEPT_SECONDS)) as page:
        gr.Markdown(
            f"# Shap-CA: {task_title} in a post and its picture\n"
            f"Model: `{model_name}`. Type a post, add its picture and, if you like, a context: a sentence that "
            "describes the picture, as an image-to-text model would. Then press **Extract**."
            + (" Uploading a picture fills the context box from the configured context source." if suggests else "")
            + f"\n\nUp to {limits.max_post_words} words ({limits.max_post_characters} characters) in a post, "
            f"{limits.max_context_characters} characters in a context and {readable_size(limits.max_upload_size)} "
            "in a picture."
        )
        suggestion = gr.State(None)
        with gr.Row():
            with gr.Column():
                post = gr.Textbox(label="Post", lines=3, placeholder="so proud of Jordan right now", elem_id="post")
                picture = gr.Image(label="Picture", sources=["upload", "clipboard"], height=256, elem_id="picture")
                context = gr.Textbox(
                    label="Context (optional)",
                    lines=2,
                    placeholder="a portrait of a man with short hair",
                    info="Left empty, the context comes from the context store or generator, if one is set up.",
                    elem_id="context",
                )
                extract = gr.Button("Extract", variant="primary", elem_id="extract")
            with gr.Column():
                highlighted = gr.HighlightedText(label="Entities in the post", elem_id="entities")
                entity_table = gr.Dataframe(
                    headers=ENTITY_COLUMNS, label="Entities with their scores", elem_id="entity-table"
                )
                relation_table = gr.Dataframe(
                    headers=RELATION_COLUMNS, label="Relations", visible=word_pair, elem_id="relations"
                )
                context_used = gr.Textbox(label="Context used", interactive=False, elem_id="context-used")
                context_source = gr.Textbox(
                    label="Context source", info=SOURCES, interactive=False, elem_id="context-source"
                )
        gr.Examples(examples, inputs=[post, picture, context], label="Examples from the generated demo corpus")

        if suggests:
            picture.upload(
                extractor.suggest_context,
                inputs=[picture, context, suggestion],
                outputs=[context, suggestion],
                preprocess=False,  # see Extractor
                concurrency_limit=limits.concurrency,
                concurrency_id="model",
            )
        extract.click(
            extractor.extract,
            inputs=[post, picture, context, suggestion],
            outputs=[highlighted, entity_table, relation_table, context_used, context_source],
            api_name="extract",
            preprocess=False,  # see Extractor
            concurrency_limit=limits.concurrency,
            concurrency_id="model",  # the two events share the model's workers
        )
    # The examples' pictures were copied into the upload folder, where a click on an example reads them:
    # Gradio's list of the files it keeps.
    extractor.keep(path for block in page.blocks.values() for path in getattr(block, "keep_in_cache", ()))
    page.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    return page


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve a web page to try a Shap-CA checkpoint.")
    parser.add_argument(
        "--model",
        default=os.environ.get("SHAPCA_MODEL"),
        help="Checkpoint folder or Hub id (default: the SHAPCA_MODEL variable).",
    )
    parser.add_argument(
        "--context_store",
        default=os.environ.get("SHAPCA_CONTEXT_STORE"),
        help="Context JSONL file, looked up by the picture's file name (default: SHAPCA_CONTEXT_STORE).",
    )
    parser.add_argument(
        "--context_generator",
        default=os.environ.get("SHAPCA_CONTEXT_GENERATOR"),
        help="Image-text-to-text model that describes pictures without a stored context (default: SHAPCA_CONTEXT_GENERATOR).",
    )
    # A Space sets GRADIO_SERVER_NAME=0.0.0.0; run by hand, the page is only served to this machine.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    limits = parser.add_argument_group("limits on what one request may ask")
    for name, description in LIMIT_HELP.items():
        default = getattr(DEFAULT_LIMITS, name)
        if name == "max_upload_size":  # given as a size with its unit
            kind, default = file_size, f"{default // UNITS['mb']}mb"
        else:
            kind = type(default)
        limits.add_argument(f"--{name}", type=kind, default=default, help=f"{description} (default: %(default)s).")
    return parser


def limits_of(args: argparse.Namespace) -> Limits:
    """The limits given on the command line (the flags are named as the fields)."""
    return Limits(**{name: getattr(args, name) for name in Limits._fields})


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("give the checkpoint: --model runs/demo (or set the SHAPCA_MODEL variable)")
    limits = limits_of(args)
    for name, value in limits._asdict().items():
        if value <= 0:
            parser.error(f"--{name} must be above 0, not {value:g}")
    nlp = pipeline(
        "multimodal-ner",
        model=args.model,
        context_store=args.context_store,
        context_generator=args.context_generator,
        device=0 if torch.cuda.is_available() else -1,
    )
    page = build_page(nlp, args.model, demo_examples(nlp.model.config.head), limits)
    page.launch(server_name=args.host, server_port=args.port, max_file_size=limits.max_upload_size)


if __name__ == "__main__":
    main()
