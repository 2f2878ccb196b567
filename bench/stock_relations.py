"""The stock recipe for relations, to compare Shap-CA against on MNRE and JMERE: what a plain
`transformers` user would write. Text + LLaVA-NeXT context as the second segment, the `Trainer`
scoring dev after each epoch, the best dev epoch tested; each stage trains in its own subfolder.

* ``--corpus mnre``: the given (head, tail) pair marked in the text with [E1] [/E1] and [E2] [/E2]
  (matching-the-blanks markers), `AutoModelForSequenceClassification` over the 23 MNRE labels.
* ``--corpus jmere``: a pipeline. `AutoModelForTokenClassification` tags entities (BIO on the first
  sub-token of each word; an entity overlapping an earlier one cannot be tagged and is left out),
  then the same marker classifier, trained on every ordered pair of gold entities ("None" where
  the pair holds no relation), labels every ordered pair of predicted entities.

    python bench/stock_relations.py --corpus mnre --encoder PATH --data ../shared/data --output_dir runs/stock_mnre
    python bench/stock_relations.py ... --resume_from_checkpoint   # a stopped run goes on from its last epoch

Writes ``all_results.json`` (``test_f1``, ``eval_f1``, ``train_runtime``, the dev curves...) in output_dir;
``train_runtime`` is the last part's of a resumed stage, ``train_runtime_total`` every part's.
"""

from __future__ import annotations

import argparse
import json
from itertools import permutations, repeat
from pathlib import Path

import numpy as np
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    set_seed,
)

from modeling_shapca.heads import IGNORE_INDEX
from processing.corpora import JMERE_ENTITY_TYPES, JMERE_RELATIONS, MNRE_RELATIONS, load_corpus
from processing.decoding import bio_entities
from shapca_metrics import load_metric
from shapca_training.experiments.stock import encode_tagged, stock_training_arguments
from shapca_training.records import last_complete_checkpoint
from shapca_training.trainer import TrainingClock, add_total_training_time

STAGE_RESULTS = "stage_results.json"  # a stage's results, written when its training ends
MARKERS = ("[E1]", "[/E1]", "[E2]", "[/E2]")
PAIR_LABELS = ("None", *JMERE_RELATIONS)
NER_LABELS = ("O", *(f"{prefix}-{kind}" for kind in JMERE_ENTITY_TYPES for prefix in "BI"))


def make_trainer(args, model_class, labels, folder: Path, train, dev, encode, collator, compute_metrics) -> Trainer:
    """One stage: the encoder with a new head over ``labels``, the `Trainer` on the ``encode``d splits
    with the same schedule for every stage, dev scored each epoch, the best dev epoch kept."""
    model = model_class.from_pretrained(
        args.encoder, id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}
    )
    model.resize_token_embeddings(len(collator.tokenizer))  # room for the entity markers, if any
    training_args = stock_training_arguments(
        args, folder, save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="f1"
    )
    return Trainer(
        model=model,
        args=training_args,
        train_dataset=encoded(train, encode),
        eval_dataset=encoded(dev, encode),
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=[TrainingClock()],
    )


def train_stage(trainer: Trainer, resume: bool) -> dict:
    """Train one stage; its metrics, best dev F1 (``best_metric``) and dev curve are also written to
    the stage's ``stage_results.json``. With ``resume``, a finished stage (it has that file) takes
    its best checkpoint and trains no further step; an interrupted one goes on from its last
    checkpoint (``train_runtime`` is then that of the last part, ``train_runtime_total`` of all)."""
    folder = Path(trainer.args.output_dir)
    record = folder / STAGE_RESULTS
    if not resume:
        record.unlink(missing_ok=True)  # an earlier run's: this one trains the stage again
    elif record.is_file():
        finished = json.loads(record.read_text())
        trainer.model = trainer.model_wrapped = type(trainer.model).from_pretrained(finished["best_checkpoint"])
        print(f"{folder} finished before: its best checkpoint, {finished['best_checkpoint']}.")
        return finished
    checkpoint = last_complete_checkpoint(folder) if resume else None
    if checkpoint:
        print(f"Going on from {checkpoint}.")
    trained = trainer.train(resume_from_checkpoint=checkpoint).metrics
    add_total_training_time(trainer, trained)
    curve = [log["eval_f1"] for log in trainer.state.log_history if "eval_f1" in log]
    finished = {**trained, "best_checkpoint": trainer.state.best_model_checkpoint,
                "best_metric": trainer.state.best_metric, "dev_curve": curve}  # fmt: skip
    record.write_text(json.dumps(finished, indent=2) + "\n")
    return finished


def total_training_time(*stages: dict) -> dict:
    """``train_runtime_total`` of the stages together (every part of each), when each one's is known."""
    if not all("train_runtime_total" in stage for stage in stages):
        return {}
    return {"train_runtime_total": sum(stage["train_runtime_total"] for stage in stages)}


def encoded(part: Dataset, encode) -> Dataset:
    return part.map(encode, batched=True, remove_columns=part.column_names)


def mark_pair(words: list[str], head: dict, tail: dict) -> list[str]:
    """The words with [E1] [/E1] around the head span and [E2] [/E2] around the tail span."""
    edges = (head["start"], head["end"], tail["start"], tail["end"])
    marked = list(words)
    # Right to left, so earlier positions stay valid; at one position an opening marker (1) goes in
    # first, so a closing one (0) lands before it.
    for position, _, marker in sorted(zip(edges, (1, 0, 1, 0), MARKERS), reverse=True):
        marked.insert(position, marker)
    return marked


def pair_classifier(args, labels: tuple[str, ...], train: Dataset, dev: Dataset, folder: Path):
    """The marker classifier over ``labels`` on pair rows (words, head, tail, context, relation id),
    untrained, and the function that encodes such rows."""
    tokenizer = AutoTokenizer.from_pretrained(args.encoder)
    tokenizer.add_special_tokens({"additional_special_tokens": list(MARKERS)})

    def encode(batch):
        marked = [mark_pair(*pair) for pair in zip(batch["words"], batch["head"], batch["tail"])]
        contexts = [(context or "").split() for context in batch["context"]]
        encoding = tokenizer(marked, contexts, is_split_into_words=True, truncation="only_second", max_length=128)
        encoding["labels"] = batch["relation"]
        return encoding

    names = np.array(labels)
    metric = load_metric("mre")

    def compute_metrics(prediction):
        predicted = names[prediction.predictions.argmax(-1)].tolist()
        return metric.compute(predictions=predicted, references=names[prediction.label_ids].tolist())

    model_class, collator = AutoModelForSequenceClassification, DataCollatorWithPadding(tokenizer)
    return make_trainer(args, model_class, labels, folder, train, dev, encode, collator, compute_metrics), encode


def run_mnre(args, corpus) -> dict:
    trainer, encode = pair_classifier(args, MNRE_RELATIONS, corpus["train"], corpus["validation"], args.output_dir)
    trained = train_stage(trainer, args.resume_from_checkpoint)
    test = trainer.predict(encoded(corpus["test"], encode), metric_key_prefix="test").metrics
    return {
        **{f"test_{key}": test[f"test_{key}"] for key in ("precision", "recall", "f1")},
        "eval_f1": trained["best_metric"],
        "train_runtime": trained["train_runtime"],
        "train_samples_per_second": trained["train_samples_per_second"],
        "eval_samples_per_second": test["test_samples_per_second"],
        "dev_curve": trained["dev_curve"],
        **total_training_time(trained),
    }


def kept_entities(entities: list[dict]) -> list[dict]:
    """The entities (sorted by start) that overlap no earlier kept one: those BIO tags can hold."""
    kept = []
    for entity in entities:
        if not kept or entity["start"] >= kept[-1]["end"]:
            kept.append(entity)
    return kept


def bio_tags(length: int, entities: list[dict]) -> list[int]:
    tags = [0] * length
    for entity in kept_entities(entities):
        start, end, kind = entity["start"], entity["end"], entity["type"]
        tags[start:end] = [NER_LABELS.index(f"B-{kind}")] + [NER_LABELS.index(f"I-{kind}")] * (end - start - 1)
    return tags


def entity_tagger(args, train: Dataset, dev: Dataset, folder: Path):
    """The BIO token classifier, untrained, and the function that encodes JMERE rows for it."""
    tokenizer = AutoTokenizer.from_pretrained(args.encoder)

    def encode(batch):
        tags = [bio_tags(len(words), entities) for words, entities in zip(batch["words"], batch["entities"])]
        return encode_tagged(tokenizer, batch["words"], batch["context"], tags)

    names = np.array(NER_LABELS)
    metric = load_metric("mner")

    def compute_metrics(prediction):
        first = prediction.label_ids != IGNORE_INDEX
        predicted = prediction.predictions.argmax(-1)
        gold = [names[labels[mask]].tolist() for labels, mask in zip(prediction.label_ids, first)]
        pred = [names[tags[mask]].tolist() for tags, mask in zip(predicted, first)]
        return metric.compute(predictions=pred, references=gold)

    model_class, collator = AutoModelForTokenClassification, DataCollatorForTokenClassification(tokenizer)
    return make_trainer(args, model_class, NER_LABELS, folder, train, dev, encode, collator, compute_metrics), encode


def ordered_pairs(words, contexts, entities, relations) -> dict[str, list]:
    """One pair row per ordered pair (a, b), a != b, of each sentence's entities, its relation the id
    in PAIR_LABELS of the type of a -> b among that sentence's relations, else of "None"."""
    rows = {"words": [], "context": [], "head": [], "tail": [], "relation": []}
    for sentence, context, spans, links in zip(words, contexts, entities, relations):
        types = {(link["head"], link["tail"]): link["type"] for link in links}
        for a, b in permutations(range(len(spans)), 2):
            rows["words"].append(sentence)
            rows["context"].append(context)
            rows["head"].append(spans[a])
            rows["tail"].append(spans[b])
            rows["relation"].append(PAIR_LABELS.index(types.get((a, b), "None")))
    return rows


def extract(tagger: Trainer, tag_encode, classifier: Trainer, pair_encode, part: Dataset) -> list[dict]:
    """The pipeline on a split: predicted entities, then the relation of every ordered pair of them."""
    prediction = tagger.predict(encoded(part, tag_encode))
    names = np.array(NER_LABELS)
    entities = []
    for tags, labels, words in zip(prediction.predictions.argmax(-1), prediction.label_ids, part["words"]):
        kept = names[tags[labels != IGNORE_INDEX]].tolist()  # words whose first sub-token was cut off are "O"
        entities.append(bio_entities(kept + ["O"] * (len(words) - len(kept))))
    rows = ordered_pairs(part["words"], part["context"], entities, repeat([]))
    found = iter([])
    if rows["words"]:
        pairs = encoded(Dataset.from_dict(rows), pair_encode).remove_columns("labels")
        found = iter(np.array(PAIR_LABELS)[classifier.predict(pairs).predictions.argmax(-1)].tolist())
    structures = []
    for spans in entities:
        labelled = [(a, b, next(found)) for a, b in permutations(range(len(spans)), 2)]
        relations = [{"head": a, "tail": b, "type": kind} for a, b, kind in labelled if kind != "None"]
        structures.append({"entities": spans, "relations": relations})
    return structures


def run_jmere(args, corpus) -> dict:
    train, dev, test = corpus["train"], corpus["validation"], corpus["test"]
    skipped = sum(len(entities) - len(kept_entities(entities)) for entities in train["entities"])
    print(f"{skipped} training entities overlap an earlier one and are left out of the BIO tags.")
    tagger, tag_encode = entity_tagger(args, train, dev, args.output_dir / "ner")
    tagged = train_stage(tagger, args.resume_from_checkpoint)

    train_pairs, dev_pairs = (
        Dataset.from_dict(ordered_pairs(part["words"], part["context"], part["entities"], part["relations"]))
        for part in (train, dev)
    )
    classifier, pair_encode = pair_classifier(args, PAIR_LABELS, train_pairs, dev_pairs, args.output_dir / "pairs")
    paired = train_stage(classifier, args.resume_from_checkpoint)
    results = {
        "train_runtime": tagged["train_runtime"] + paired["train_runtime"],
        "ner_train_samples_per_second": tagged["train_samples_per_second"],
        "pairs_train_samples_per_second": paired["train_samples_per_second"],
        "ner_dev_curve": tagged["dev_curve"],
        "pairs_dev_curve": paired["dev_curve"],
        **total_training_time(tagged, paired),
    }
    metric = load_metric("mjere")
    for prefix, part in (("eval", dev), ("test", test)):
        gold = [{"entities": e, "relations": r} for e, r in zip(part["entities"], part["relations"])]
        scores = metric.compute(predictions=extract(tagger, tag_encode, classifier, pair_encode, part), references=gold)
        results.update({f"{prefix}_{key}": value for key, value in scores.items()})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("mnre", "jmere"), required=True)
    parser.add_argument("--encoder", required=True, help="path of a BERT-family model")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max_train_samples", type=int, help="train on the first N examples (smoke runs)")
    parser.add_argument("--max_eval_samples", type=int, help="score the first N dev and test examples")
    parser.add_argument(
        "--resume_from_checkpoint", action="store_true", help="go on from each stage's last checkpoint (an epoch's end)"
    )
    args = parser.parse_args()
    set_seed(args.seed)

    contexts = [args.data / "contexts" / "mnre.llava-next.jsonl"]
    corpus = load_corpus(args.corpus, args.data / args.corpus, context_files=contexts)
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_eval_samples}
    for split, limit in limits.items():
        if limit is not None:
            corpus[split] = corpus[split].select(range(min(limit, len(corpus[split]))))
    results = run_mnre(args, corpus) if args.corpus == "mnre" else run_jmere(args, corpus)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "all_results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
