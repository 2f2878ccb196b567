"""shapca_training.build: the model of a run, new or from a checkpoint."""

from helpers import build_model, load_script, tiny_config

from shapca_training.build import build_model as build_run_model

run_mie = load_script("run_mie.py")


def test_decision_flags_replace_a_checkpoints_and_nothing_else(tmp_path):
    build_model(tiny_config("word_pair", mre_none_weight=0.7)).save_pretrained(tmp_path)
    flags = ["--model_name_or_path", str(tmp_path), "--mre_decision_cells", "first_words", "--alpha", "0.9"]
    model_args, _, _ = run_mie.parse_arguments(flags)
    config = build_run_model(model_args, None, "mre", None).config
    assert config.mre_decision_cells == "first_words"  # a decision setting given: it replaces the checkpoint's
    assert config.mre_none_weight == 0.7  # left at its default: the checkpoint's stays
    assert config.alpha == tiny_config("word_pair").alpha  # what the model learnt with is the checkpoint's
