"""setup.cfg declares every third-party module the library and its scripts import, and nothing else."""

import ast
import configparser
import re
import sys
from pathlib import Path

from helpers import ROOT

# What install_requires must cover: the installed packages and the scripts (the experiments'
# plotting and Ray are the sweep extra's business).
LIBRARY = ["modeling_shapca", "processing", "shapca_metrics", "model_cards", "shapca_training", "scripts", "run_mie.py"]
PROJECT = {"modeling_shapca", "processing", "shapca_metrics", "model_cards", "shapca_training", "run_mie"}
EXTRAS_ONLY = {"ray", "matplotlib"}  # imported lazily, by the experiments, from the sweep extra
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
    return {name for name in names if name not in sys.stdlib_module_names and name not in PROJECT | EXTRAS_ONLY}


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
# from the scripts down to the models; no library module imports a script. A name stands for the
# module or package and everything under it.
SCRIPTS = {"run_mie", "run_grid", "report_mie", "shapley_heatmap", "generate_contexts"}
MAY_IMPORT = {
    "modeling_shapca": set(),
    "shapca_metrics": set(),
    "processing": {"modeling_shapca"},
    "model_cards": {"modeling_shapca", "processing"},
    "shapca_training.errors": {"processing"},  # the readers' error classes, imported when asked
    "shapca_training.arguments": {"modeling_shapca", "shapca_training.errors"},
    "shapca_training.records": set(),
    "shapca_training.data": {"modeling_shapca", "processing", "shapca_training.errors"},
    "shapca_training.build": {"modeling_shapca", "processing", "shapca_training.errors"},
    "shapca_training.scoring": {"modeling_shapca", "processing", "shapca_metrics"},
    "shapca_training.trainer": {"modeling_shapca", "processing", "model_cards", "shapca_training.records"},
    "shapca_training.experiments": {
        "modeling_shapca",
        "processing",
        "shapca_metrics",
        "shapca_training.arguments",
        "shapca_training.errors",
        "shapca_training.records",
    },
}


def project_imports(path: Path, package: str) -> set[str]:
    """The project modules ``path`` imports (relative imports resolved against ``package``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            names.add(f"{base}.{node.module}".strip(".") if node.level else node.module)
    return {name for name in names if name.split(".")[0] in {*PROJECT, *SCRIPTS}}


def covers(allowed: set[str], name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in allowed)


def test_imports_run_one_way_and_no_library_module_imports_a_script():
    for module, allowed in MAY_IMPORT.items():
        folder = ROOT / module.replace(".", "/")
        files = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
        for path in files:
            package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
            wrong = {name for name in project_imports(path, package) if not covers(allowed | {module}, name)}
            assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_every_library_module_has_its_rule():
    for path in [*ROOT.glob("shapca_training/*.py"), *ROOT.glob("*/__init__.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if name.split(".")[0] in PROJECT and name != "shapca_training":
            assert covers(set(MAY_IMPORT), name), f"{name} has no entry in MAY_IMPORT"


def test_every_library_module_imports():
    # A module no test imports (the stock references' helpers, say) still has to import.
    import importlib
    import pkgutil

    for package in ("modeling_shapca", "processing", "shapca_training", "model_cards"):
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            importlib.import_module(module.name)
