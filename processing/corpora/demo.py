"""The demo corpus: small, generated, and built so that only the image (or its context) settles the labels.

Each example is a tweet-like sentence, an image drawn with PIL and a context sentence that
describes the image the way an image-to-text model would. The same sentence occurs with
different labels; what tells them apart is the picture:

- ``ner`` flavour: one name per sentence ("Jordan", "Madison Park", ...) whose type (PER, LOC,
  ORG) is shown by the image: a face-like red disc, a blue landscape with a horizon, a
  green logo-like triangle;
- ``word_pair`` flavour (joint extraction): two people per sentence whose relation (couple,
  peer, siblings) is shown by the image, the entities typed PER; some sentences name the tail
  first;
- ``mre`` flavour (relation of a given pair): the same sentences, the two people given as the
  head and the tail, the relation to find.

Deterministic for a given seed; images are written once under a cache folder.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import datasets
from datasets.builder import Key
from PIL import Image, ImageDraw

from ..tasks import Task
from ..wordpair import MRE_NO_RELATION
from .base import COMMON_FEATURES, SPLITS, CorpusLabels, NamedCorpus, task_features

NER_TYPES = ("PER", "LOC", "ORG")
PAIR_RELATIONS = ("couple", "peer", "siblings")
# The demo's flavours: the task of each and its labels.
FLAVOURS = {
    "ner": (Task.NER, CorpusLabels(entity_types=NER_TYPES)),
    "word_pair": (Task.MJERE, CorpusLabels(entity_types=("PER",), relation_types=PAIR_RELATIONS)),
    "mre": (Task.MRE, CorpusLabels(relation_types=(MRE_NO_RELATION, *PAIR_RELATIONS))),
}
IMAGE_SIZE = 64

FIRST_NAMES = (
    "Jordan", "Austin", "Madison", "Dallas", "Sydney", "Phoenix", "Georgia", "Chelsea", "Florence",
    "Victoria", "Orlando", "Camden", "Savannah", "Aurora", "Brooklyn", "Denver", "Eden", "Hudson",
)  # fmt: skip
SECOND_NAMES = ("Park", "Hill", "Grant", "Rivers", "Brooks", "Lane", "Stone", "Woods")
NER_TEMPLATES = (
    "RT @news24 : {e} is trending again today",
    "can't believe what happened at {e} last night #wow",
    "{e} , what a day !",
    "so proud of {e} right now",
    "new pics from {e} :",
    "everyone is talking about {e} this morning",
    "throwback to {e} , miss it already",
    "@fan_page look at {e} here",
)
PAIR_TEMPLATES = (  # (template, whether the head is named first)
    ("{h} and {t} spotted together today", True),
    ("{h} with {t} at the party last night", True),
    ("so happy for {h} and {t} !", True),
    ("RT @celebs : {h} finally meets {t}", True),
    ("with {t} by her side , {h} smiles", False),
    ("together with {t} , {h} celebrates #friday", False),
)
CONTEXTS = {
    "PER": (
        "a close-up photo of a smiling person",
        "a portrait of a man with short hair",
        "a woman waving at the camera on stage",
    ),
    "LOC": (
        "an aerial view of a city skyline by the sea",
        "a wide landscape with hills under a blue sky",
        "a map of a town with a river and roads",
    ),
    "ORG": (
        "a company logo printed on a white sign",
        "the green emblem of a brand above a store entrance",
        "a product box showing a corporate logo",
    ),
    "couple": (
        "two people holding hands at a wedding",
        "a man and a woman kissing under a pink heart",
        "a romantic dinner for two with roses",
    ),
    "peer": (
        "two colleagues shaking hands at a conference",
        "a group of coworkers around an office table",
        "two players in the same team jerseys",
    ),
    "siblings": (
        "two young children playing together in a garden",
        "a family photo of a brother and a sister",
        "two kids in matching yellow shirts",
    ),
}


def draw_image(label: str, rng: random.Random) -> Image.Image:
    """A small picture whose colours and shape give away ``label`` (with jitter and noise)."""
    jitter = lambda value: max(0, min(255, value + rng.randint(-30, 30)))
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), tuple(jitter(v) for v in (200, 200, 200)))
    draw = ImageDraw.Draw(image)
    x, y, r = rng.randint(16, 48), rng.randint(16, 48), rng.randint(9, 15)
    if label in ("PER", "couple"):
        colour = (220, 50, 60) if label == "PER" else (240, 120, 180)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(jitter(v) for v in colour))
    elif label in ("LOC", "peer"):
        horizon = rng.randint(24, 40)
        sky, ground = ((90, 140, 230), (60, 150, 80)) if label == "LOC" else ((40, 60, 160), (120, 120, 140))
        draw.rectangle((0, 0, IMAGE_SIZE, horizon), fill=tuple(jitter(v) for v in sky))
        draw.rectangle((0, horizon, IMAGE_SIZE, IMAGE_SIZE), fill=tuple(jitter(v) for v in ground))
    else:  # ORG, siblings
        colour = (40, 170, 70) if label == "ORG" else (230, 200, 40)
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=tuple(jitter(v) for v in colour))
    for _ in range(40):  # speckle noise
        px, py = rng.randrange(IMAGE_SIZE), rng.randrange(IMAGE_SIZE)
        draw.point((px, py), fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


def entity_name(rng: random.Random) -> list[str]:
    name = [rng.choice(FIRST_NAMES)]
    if rng.random() < 0.35:
        name.append(rng.choice(SECOND_NAMES))
    return name


def fill(template: str, slots: dict[str, list[str]]) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Split a template into words, replacing ``{slot}`` words by names; return the slot spans."""
    words, spans = [], {}
    for token in template.split():
        if token.startswith("{") and token.endswith("}"):
            name = slots[token[1:-1]]
            spans[token[1:-1]] = (len(words), len(words) + len(name))
            words.extend(name)
        else:
            words.append(token)
    return words, spans


def make_ner_example(rng: random.Random) -> tuple[dict, str]:
    entity_type = rng.choice(NER_TYPES)
    words, spans = fill(rng.choice(NER_TEMPLATES), {"e": entity_name(rng)})
    start, end = spans["e"]
    tags = ["O"] * len(words)
    tags[start] = f"B-{entity_type}"
    for i in range(start + 1, end):
        tags[i] = f"I-{entity_type}"
    return {"words": words, "ner_tags": tags}, entity_type


def make_pair_example(rng: random.Random) -> tuple[dict, str]:
    relation = rng.choice(PAIR_RELATIONS)
    head = entity_name(rng)
    tail = entity_name(rng)
    while tail[0] == head[0]:
        tail = entity_name(rng)
    template, head_first = rng.choice(PAIR_TEMPLATES)
    words, spans = fill(template, {"h": head, "t": tail})
    order = sorted(("h", "t"), key=lambda slot: spans[slot][0])
    entities = [{"start": spans[slot][0], "end": spans[slot][1], "type": "PER"} for slot in order]
    head_index, tail_index = (0, 1) if head_first else (1, 0)
    relations = [{"head": head_index, "tail": tail_index, "type": relation}]
    return {"words": words, "entities": entities, "relations": relations}, relation


def make_given_pair_example(rng: random.Random) -> tuple[dict, str]:
    """A word-pair example as a given pair: the head, the tail and their relation."""
    example, relation = make_pair_example(rng)
    head, tail = (example["entities"][example["relations"][0][role]] for role in ("head", "tail"))
    span = lambda entity: {"start": entity["start"], "end": entity["end"]}
    return {"words": example["words"], "head": span(head), "tail": span(tail), "relation": relation}, relation


MAKERS = {"ner": make_ner_example, "word_pair": make_pair_example, "mre": make_given_pair_example}


@dataclass
class DemoConfig(datasets.BuilderConfig):
    """Attributes: ``flavour`` (``"ner"``, ``"word_pair"`` or ``"mre"``), ``seed``, split sizes, and ``image_dir``
    (where the images are written; defaults to a folder in the datasets cache)."""

    flavour: str = "ner"
    seed: int = 0
    train_size: int = 1400
    validation_size: int = 300
    test_size: int = 300
    image_dir: str | None = None


class Demo(NamedCorpus, datasets.GeneratorBasedBuilder):
    """The generated demo corpus (see the module docstring)."""

    NAME = "demo"
    SOURCE = "generated by processing/corpora/demo.py of the Shap-CA library"
    LICENCE = "Apache-2.0, as the library that generates it"
    BUILDER_CONFIG_CLASS = DemoConfig

    @classmethod
    def create(cls, *, cache_dir, image_dir=None, **options) -> Demo:
        """Options: ``flavour``, ``seed``, ``train_size``, ``validation_size``, ``test_size``."""
        unknown = set(options) - {"flavour", "seed", "train_size", "validation_size", "test_size"}
        if unknown:
            raise TypeError(f"Unexpected options for demo: {sorted(unknown)}.")
        return cls(cache_dir=cache_dir, image_dir=str(image_dir) if image_dir else None, **options)

    @property
    def task(self) -> Task:
        return FLAVOURS[self.config.flavour][0]

    def corpus_labels(self) -> CorpusLabels:
        return FLAVOURS[self.config.flavour][1]

    def _info(self) -> datasets.DatasetInfo:
        if self.config.flavour not in FLAVOURS:
            raise ValueError(f"Demo flavour must be one of {sorted(FLAVOURS)}, got {self.config.flavour!r}.")
        return datasets.DatasetInfo(
            description="Generated demo corpus for Shap-CA: the image and its context decide the labels.",
            license=self.LICENCE,
            features=datasets.Features({**COMMON_FEATURES, **task_features(self.task, self.corpus_labels())}),
        )

    def _split_generators(self, dl_manager):
        image_dir = Path(self.config.image_dir or Path(self._cache_dir_root) / "shapca_demo_images")
        image_dir = image_dir / f"{self.config.flavour}-seed{self.config.seed}"
        image_dir.mkdir(parents=True, exist_ok=True)
        sizes = {
            "train": self.config.train_size,
            "validation": self.config.validation_size,
            "test": self.config.test_size,
        }
        return [
            datasets.SplitGenerator(
                name=SPLITS[split],
                gen_kwargs={"split": split, "size": sizes[split], "image_dir": image_dir},
            )
            for split in SPLITS
        ]

    def _generate_examples(self, split: str, size: int, image_dir: Path):
        rng = random.Random(f"{self.config.seed}-{self.config.flavour}-{split}")
        make = MAKERS[self.config.flavour]
        for index in range(size):
            example, label = make(rng)
            image_id = f"{split}-{index}.png"
            image_path = image_dir / image_id
            image = draw_image(label, rng)
            if not image_path.exists():
                image.save(image_path)
            example.update(
                id=f"{split}-{index}",
                image_id=image_id,
                image=str(image_path),
                context=rng.choice(CONTEXTS[label]),
            )
            yield Key(0, index), example
