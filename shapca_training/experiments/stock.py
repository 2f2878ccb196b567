"""The stock references of the benchmark: transformers' own models trained the plain way on the
same data as a Shap-CA run (``bench/stock_ner.py``, ``bench/stock_relations.py``)."""

from __future__ import annotations

from transformers import TrainingArguments

from modeling_shapca.heads import IGNORE_INDEX


def encode_tagged(tokenizer, words: list[list[str]], contexts: list[str | None], tags: list[list[int]]):
    """Words, then their context as the second segment (cut first when too long), with each word's tag
    on its first sub-token and IGNORE_INDEX elsewhere: the stock recipe's input."""
    encoded = tokenizer(
        words,
        [(context or "").split() for context in contexts],
        is_split_into_words=True,
        truncation="only_second",
        max_length=128,
    )
    encoded["labels"] = []
    for row, row_tags in enumerate(tags):
        seen, labels = set(), []
        for word, segment in zip(encoded.word_ids(row), encoded.sequence_ids(row)):
            labels.append(row_tags[word] if segment == 0 and word is not None and word not in seen else IGNORE_INDEX)
            seen.add(word)
        encoded["labels"].append(labels)
    return encoded


def stock_training_arguments(args, output_dir, **changes) -> TrainingArguments:
    """The stock recipe's Trainer settings (``args``: batch size, epochs, learning rate, seed): cosine
    schedule with 5% warmup, dev scored every epoch, on CPU; ``changes`` on top."""
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=32,
        num_train_epochs=args.epochs,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        eval_strategy="epoch",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=args.seed,
        restore_callback_states_from_checkpoint=True,  # a resumed stage's clock goes on (TrainingClock)
        **changes,
    )
