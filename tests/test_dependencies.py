"""setup.cfg declares every third-party module the library and its scripts import, and nothing else."""

import ast
import configparser
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ["modeling_shapca", "processing", "shapca_metrics", "model_cards", "scripts", "run_mie.py", "arguments_mie.py", "trainer_mie.py",
           "build_mie.py", "data_mie.py", "metrics_mie.py", "records_mie.py"]  # fmt: skip
PROJECT = {
    "modeling_shapca",
    "processing",
    "shapca_metrics",
    "model_cards",
    "run_mie",
    "arguments_mie",
    "trainer_mie",
    "build_mie",
    "data_mie",
    "metrics_mie",
    "records_mie",
}
# Import name -> distribution name, where they differ.
DISTRIBUTION = {"PIL": "pillow", "torchcrf": "pytorch-crf", "yaml": "pyyaml"}
# Needed at run time without being imported: jinja2 renders ModelCard.from_template.
RUNTIME_ONLY = {"jinja2"}


def imported_modules() -> set[str]:
    names = set()
    files = [
        path
        for entry in LIBRARY
        for path in ((ROOT / entry).rglob("*.py") if (ROOT / entry).is_dir() else [ROOT / entry])
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name not in PROJECT}


def declared() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].split()
    return {re.split(r"[<>=!~\[]", line)[0].lower() for line in lines if line}


def test_every_import_is_declared_and_every_declaration_imported():
    used = {DISTRIBUTION.get(name, name).lower() for name in imported_modules()}
    assert used - declared() == set(), "imported but not declared in setup.cfg"
    assert declared() - used - RUNTIME_ONLY == set(), "declared in setup.cfg but never imported"


# The project's modules, each with the project modules it may import: the imports run one way,
# from the scripts down to the models; no library module imports a script.
SCRIPTS = {"run_mie", "run_grid", "report_mie", "shapley_heatmap"}
MAY_IMPORT = {
    "modeling_shapca": set(),
    "shapca_metrics": set(),
    "processing": {"modeling_shapca"},
    "model_cards": {"modeling_shapca", "processing"},
    "experiments": {"modeling_shapca", "processing", "shapca_metrics", "arguments_mie", "records_mie"},
    "arguments_mie": {"modeling_shapca"},
    "records_mie": set(),
    "data_mie": {"modeling_shapca", "processing"},
    "build_mie": {"modeling_shapca", "processing"},
    "metrics_mie": {"modeling_shapca", "processing", "shapca_metrics"},
    "trainer_mie": {"modeling_shapca", "processing", "model_cards", "records_mie"},
}


def project_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & (set(MAY_IMPORT) | SCRIPTS)


def test_imports_run_one_way_and_no_library_module_imports_a_script():
    for module, allowed in MAY_IMPORT.items():
        files = sorted((ROOT / module).rglob("*.py")) if (ROOT / module).is_dir() else [ROOT / f"{module}.py"]
        for path in files:
            wrong = project_imports(path) - allowed - {module}
            assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"
