"""MIETrainer on the Trainer's extension points: evaluation in dataset order and in windows,
checkpoints that carry the pipeline's code, and the private Trainer methods it still depends on."""

import collections
import inspect
import json

import pytest
from datasets import Dataset
from helpers import build_model, tiny_config
from transformers import Trainer

from processing import ShapCADataCollator
from shapca_training.arguments import MIETrainingArguments
from shapca_training.trainer import MIETrainer

DiskUsage = collections.namedtuple("DiskUsage", "total used free")  # what shutil.disk_usage gives

# The private Trainer methods MIETrainer overrides or calls, with the parameters it relies on.
# Each has no public counterpart (see trainer.py); a release that renames one or changes its
# parameters fails here, by name, instead of silently bypassing the override.
PRIVATE_TRAINER_METHODS = {
    "_get_eval_sampler": ["self", "eval_dataset"],  # overridden: evaluation keeps the dataset's order
    "_prepare_inputs": ["self", "inputs"],  # called by prediction_step, as Trainer.prediction_step does
    "_save_rng_state": ["self", "output_dir"],  # overridden: the alignment orders' generator saved beside
    "_load_callback_state": ["self"],  # overridden: a checkpoint without one of this run's callbacks resumes
}


@pytest.mark.parametrize("name", PRIVATE_TRAINER_METHODS)
def test_the_private_trainer_methods_we_rely_on_are_still_there(name):
    method = getattr(Trainer, name, None)
    assert method is not None, f"transformers no longer has Trainer.{name}: update MIETrainer"
    assert list(inspect.signature(method).parameters) == PRIVATE_TRAINER_METHODS[name], name


def make_trainer(tmp_path, processor, **settings):
    model = build_model(tiny_config("crf", use_image=False))
    settings = {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False, **settings}
    arguments = MIETrainingArguments(
        output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True, per_device_eval_batch_size=2,
        train_sampling_strategy="group_by_length", disable_tqdm=True, **settings,
    )  # fmt: skip
    collator = ShapCADataCollator(processor, use_images=False)
    return MIETrainer(
        model=model, args=arguments, data_collator=collator, processing_class=processor, prediction_width=32
    )


def test_evaluation_keeps_the_dataset_order_and_reads_long_texts_in_windows(tmp_path, processor):
    # Lengths that grouping by length would reorder, and one text over the processor's 24 tokens.
    lengths = [2, 30, 3, 1, 5]
    rows = [{"words": ["hi"] * n, "context": None, "image": None, "length": n} for n in lengths]
    trainer = make_trainer(tmp_path, processor)
    ids, _ = trainer.predict(Dataset.from_list(rows)).predictions
    assert [int((row >= 0).sum()) for row in ids] == lengths  # every word of every row, in order
    assert trainer.data_collator.return_overflowing_tokens is False  # training still reads each text once


def test_a_saved_checkpoint_carries_the_pipeline_code(tmp_path, processor):
    trainer = make_trainer(tmp_path, processor)
    trainer.save_model(str(tmp_path / "saved"))
    assert (tmp_path / "saved" / "pipeline_shapca.py").is_file()
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert "multimodal-information-extraction" in config["custom_pipelines"]


def test_a_full_disk_while_saving_a_checkpoint_is_said_with_the_folder(tmp_path, processor, monkeypatch):
    # Before: "basic_ios::clear: iostream error" or "unexpected pos", from torch's checkpoint writer.
    import shapca_training.trainer as trainer_module

    rows = [{"words": ["hi", "there"], "context": None, "image": None, "labels": [0, 0], "length": 4}] * 4
    trainer = make_trainer(tmp_path, processor, max_steps=1, save_strategy="steps", save_steps=1)
    trainer.train_dataset = Dataset.from_list(rows)

    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setattr("torch.save", full_disk)
    monkeypatch.setattr(trainer_module.shutil, "disk_usage", lambda path: DiskUsage(100, 100, 0))
    with pytest.raises(OSError, match=r"No space left on device while writing under .*out.*resume_from_checkpoint"):
        trainer.train()
    monkeypatch.setattr(trainer_module.shutil, "disk_usage", lambda path: DiskUsage(100, 0, 2**40))
    with pytest.raises(RuntimeError, match="unexpected pos"):  # with room left, the error is not disguised
        trainer.train()
