"""The training application behind ``run_mie.py``, and the experiments run with it.

``run_mie.py`` (at the repository root) is the recipe; each job it orchestrates has one module here:

- `shapca_training.arguments`: the flags (one per setting of the Shap-CA config, the data's, the
  Trainer's), config files, and the checks of a command line before anything is loaded.
- `shapca_training.data`: which data a run reads, its labels, and the splits prepared for the Trainer.
- `shapca_training.build`: the processor and the model a run trains or loads.
- `shapca_training.trainer`: `MIETrainer`, the `Trainer` subclass (evaluation, prediction
  records, the checkpoint's model card and pipeline code).
- `shapca_training.scoring`: ``compute_metrics`` and the prediction records.
- `shapca_training.records`: results files, the run's environment, the output folder's lock.
- `shapca_training.experiments`: grids of runs on Ray, their statistics, reports and figures,
  and the stock references of the benchmark (used by ``scripts/`` and ``bench/``).

Nothing is imported here: ``run_mie.py --help`` answers before torch's heavier neighbours load.
"""
