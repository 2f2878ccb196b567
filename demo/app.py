"""A web page to try a Shap-CA checkpoint on a post and its picture (Gradio, ready for a Hugging Face Space).

    python demo/app.py --model runs/demo [--context_store FILE] [--context_generator NAME]

serves the page on http://127.0.0.1:7860. A Space runs `app.py` without arguments: there the
checkpoint (and, optionally, the context store and generator) come from the variables
SHAPCA_MODEL, SHAPCA_CONTEXT_STORE and SHAPCA_CONTEXT_GENERATOR.

Everything the page shows comes from the library's pipeline (`pipeline("multimodal-ner")`):
the entities (and, for word-pair checkpoints, the relations), and where the context came from
(`resolve_context`). The clickable examples are drawn from the generated demo corpus.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd
import torch
from PIL import Image
from transformers import pipeline

import processing  # noqa: F401  (registers the multimodal-ner task)
from processing.corpora import load_corpus
from processing.images import ImageReadError, load_image
from processing.pipeline_shapca import split_words

ENTITY_COLUMNS = ["entity", "type", "score"]
RELATION_COLUMNS = ["head", "relation", "tail", "score"]
SOURCES = (
    "given: typed in the context box or set by an example; store: the context file, by the picture's file name; "
    "generator: described from the picture by the image-to-text model; none: the post was read without a context"
)
NUMBER_OF_EXAMPLES = 6
EXAMPLES_FOLDER = Path(tempfile.gettempdir()) / "shapca-demo-examples"


def open_picture(upload: dict | None) -> tuple[Image.Image | None, str | None]:
    """The picture of an upload and its file name (the key of a context store).

    The events below take their inputs unprocessed (``preprocess=False``): the picture comes as
    Gradio's record of the upload, ``{"path": <its copy in Gradio's upload folder>, "orig_name":
    <the file's name>, ...}``, and is opened here, so that a file that is not an image gets a
    message saying so rather than Gradio's bare "Error".
    """
    if upload is None:
        return None, None
    name = upload.get("orig_name") or Path(upload["path"]).name
    try:
        return load_image(upload["path"]), name
    except ImageReadError:  # not an image, truncated, a decompression bomb...
        raise gr.Error(
            f"The picture {name!r} could not be opened: it is not an image file or it is damaged. "
            "Upload a PNG, JPEG or WebP picture, or remove the picture to read the post alone."
        ) from None


def demo_examples(task: str) -> list[list[str]]:
    """Rows (post, picture path, context) from the test split of the generated demo corpus: its
    images are drawn at the first start and kept in the system's temporary folder."""
    corpus = load_corpus(
        "demo",
        cache_dir=EXAMPLES_FOLDER / "datasets",
        image_dir=EXAMPLES_FOLDER / "images",
        flavour="word_pair" if task == "word_pair" else "ner",
        train_size=1,
        validation_size=1,
        test_size=NUMBER_OF_EXAMPLES,
    )
    return [[" ".join(row["words"]), row["image"], row["context"]] for row in corpus["test"]]


class Extractor:
    """The page's two actions on one pipeline: suggest a context for a picture, extract from a post."""

    def __init__(self, nlp):
        self.nlp = nlp

    def suggest_context(self, upload, typed, suggestion):
        """The context of the store or the generator for an uploaded picture, to prefill the box;
        remembered with its source, so that the box left as it is still reads as that source.
        Without one, what the visitor typed stays and what was suggested for another picture goes."""
        image, image_id = open_picture(upload)
        context, source = self.nlp.resolve_context(None, image, image_id)
        if context is None:
            return ("" if suggestion is not None and typed == suggestion["context"] else typed), None
        return context, {"context": context, "source": source}

    def extract(self, text, upload, context, suggestion):
        if not text or not text.strip():
            raise gr.Error("The post is empty: type or paste the text of a post, or click one of the examples.")
        image, image_id = open_picture(upload)
        context = (context or "").strip()
        if not context:
            context, source = self.nlp.resolve_context(None, image, image_id)
        elif suggestion is not None and context == suggestion["context"].strip():
            source = suggestion["source"]
        else:
            source = "given"

        words, _ = split_words(text)
        windows = len(self.nlp.processor(words, context=context, return_overflowing_tokens=True)["word_offset"])
        if windows > 1:
            gr.Warning(
                f"The post is longer than the encoder's window ({self.nlp.processor.max_length} tokens, with the "
                f"context): it was read in {windows} overlapping windows, each word where it has the most "
                "context around it. Shorten the post or the context to read it at once."
            )

        result = self.nlp(text, image=image, context=context)
        # CRF checkpoints give a list of entities; word-pair checkpoints {"entities", "relations"}.
        entities, relations = (result["entities"], result["relations"]) if isinstance(result, dict) else (result, [])
        entity_rows = [[e["word"], e["entity_group"], round(e["score"], 3)] for e in entities]
        relation_rows = [[r["head"]["word"], r["relation"], r["tail"]["word"], round(r["score"], 3)] for r in relations]
        return (
            {"text": text, "entities": entities},  # gr.HighlightedText reads entity_group, start and end
            pd.DataFrame(entity_rows, columns=ENTITY_COLUMNS),
            pd.DataFrame(relation_rows, columns=RELATION_COLUMNS),
            context or "",
            source,
        )


def build_page(nlp, model_name: str, examples: list[list[str]]) -> gr.Blocks:
    extractor = Extractor(nlp)
    word_pair = nlp.model.config.task == "word_pair"
    finds = "entities and the relations between them" if word_pair else "named entities"
    suggests = nlp.context_store is not None or nlp.context_generator is not None
    with gr.Blocks(title="Shap-CA demo") as page:
        gr.Markdown(
            f"# Shap-CA: {finds} in a post and its picture\n"
            f"Model: `{model_name}`. Type a post, add its picture and, if you like, a context: a sentence that "
            "describes the picture, as an image-to-text model would. Then press **Extract**."
            + (" Uploading a picture fills the context box from the configured context source." if suggests else "")
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
                preprocess=False,
            )
        extract.click(
            extractor.extract,
            inputs=[post, picture, context, suggestion],
            outputs=[highlighted, entity_table, relation_table, context_used, context_source],
            api_name="extract",
            preprocess=False,  # see open_picture
        )
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
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("give the checkpoint: --model runs/demo (or set the SHAPCA_MODEL variable)")
    nlp = pipeline(
        "multimodal-ner",
        model=args.model,
        context_store=args.context_store,
        context_generator=args.context_generator,
        device=0 if torch.cuda.is_available() else -1,
    )
    page = build_page(nlp, args.model, demo_examples(nlp.model.config.task))
    page.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
