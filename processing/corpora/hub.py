"""A corpus on the Hub: Parquet files per split, with the images' bytes in them, and a dataset
card that `datasets.load_dataset` reads back and ``run_mie.py --dataset_name`` trains from.

    >>> from processing.corpora import load_files, load_named
    >>> from processing.corpora.hub import export_corpus
    >>> export_corpus(load_named("twitter2017", "data/twitter2017"), "exports/twitter2017")
    >>> export_corpus(load_files({"train": "mine/train.jsonl"}), "exports/mine", name="mine",
    ...               source="posts we annotated in 2026", licence="CC BY 4.0")
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import datasets
from datasets.info import DatasetInfosDict
from datasets.table import embed_table_storage
from huggingface_hub import DatasetCard, DatasetCardData

from .base import UNKNOWN_LICENCE, MIEData

logger = logging.getLogger(__name__)

# The README that export_corpus writes (Jinja); huggingface_hub renders {{ card_data }} as the YAML header.
DATASET_CARD = """\
---
{{ card_data }}
---
# {{ name }}

Source: {{ source }}.

Licence: {{ licence }}.

| split | examples |
|---|---|
{% for split, part in dataset.items() -%}
| {{ split }} | {{ part | length }} |
{% endfor %}
Columns: {{ columns }}.{% if task %} Task: `{{ task }}`; labels: {{ labels }}.{% endif %}
Exported with `processing.corpora.hub.export_corpus` of the Shap-CA library; `run_mie.py --dataset_name`
trains from it.
"""


def with_image_bytes(part: datasets.Dataset) -> datasets.Dataset:
    """The split with its ``image`` column as images whose bytes are in the data (paths are read)."""
    if not isinstance(part.features["image"], datasets.Image):
        part = part.cast_column("image", datasets.Image())
    return part.with_format("arrow").map(embed_table_storage, batched=True, desc="Embedding images").with_format(None)


def export_corpus(
    data: MIEData | datasets.DatasetDict,
    out_dir: str | os.PathLike,
    *,
    name: str | None = None,
    source: str | None = None,
    licence: str | None = None,
) -> Path:
    """Write one Parquet file per split and a dataset card, ready for `huggingface_hub.upload_folder`.

    Args:
        data: a corpus with what it is (`MIEData`: `load_named`, `load_files`...) or its splits alone.
        out_dir: the folder; split files of an earlier export there are replaced.
        name, source, licence: for the card; by default what ``data`` declares, else "unknown".

    The ``image`` column becomes a `datasets.Image` whose bytes travel in the Parquet files. The
    card's YAML names the features, the splits with their sizes and their files (so
    `datasets.load_dataset(<that repo>)` reads it back) and, under ``shapca``, the task, the labels,
    the source and the licence (so ``run_mie.py --dataset_name`` trains with the same labels).
    Empty splits are left out (with a warning): a split file with no rows does not load back.
    """
    splits = data.splits if isinstance(data, MIEData) else data
    name = name or (data.name if isinstance(data, MIEData) else "corpus")
    source = source or (data.source if isinstance(data, MIEData) else "unknown")
    licence = licence or (data.licence if isinstance(data, MIEData) else UNKNOWN_LICENCE)
    out_dir = Path(out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    for old in (out_dir / "data").glob("*.parquet"):
        old.unlink()
    empty = [split for split, part in splits.items() if len(part) == 0]
    if empty:
        logger.warning("Export of %s: the splits %s have no examples and are left out.", name, empty)
    splits = datasets.DatasetDict(
        {split: with_image_bytes(part) for split, part in splits.items() if split not in empty}
    )
    infos = datasets.SplitDict()
    for split, part in splits.items():
        part.to_parquet(out_dir / "data" / f"{split}.parquet")
        infos.add(datasets.SplitInfo(name=split, num_bytes=part.data.nbytes, num_examples=len(part)))
    features = next(iter(splits.values())).features
    recorded = {"source": source, "licence": licence}
    if isinstance(data, MIEData):
        recorded.update(task=str(data.task), labels=data.labels.as_dict())
    card_data = DatasetCardData(
        pretty_name=name,
        language=["en"],
        license="unknown" if licence == UNKNOWN_LICENCE else "other",
        task_categories=["token-classification"],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}.parquet"} for split in splits],
            }
        ],
        shapca=recorded,
    )
    DatasetInfosDict({"default": datasets.DatasetInfo(features=features, splits=infos)}).to_dataset_card_data(
        card_data
    )  # dataset_info: features and splits, as load_dataset reads them
    card = DatasetCard.from_template(
        card_data,
        template_str=DATASET_CARD,
        name=name,
        source=source,
        licence=licence,
        dataset=splits,
        columns=", ".join(f"`{column}`" for column in features),
        task=recorded.get("task"),
        labels=recorded.get("labels"),
    )
    card.save(out_dir / "README.md")
    return out_dir


__all__ = ["export_corpus"]
