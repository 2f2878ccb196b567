"""`import modeling_shapca` with a torchvision that does not go with torch says which packages and how
to fix it, instead of transformers' "Could not import module 'PreTrainedModel'". The mismatched
packages are fakes on the PYTHONPATH of a fresh process: the environment is left as it is."""

import os
import subprocess
import sys

import torch
from helpers import ROOT

FIX = "pip install --force-reinstall torch torchvision --index-url https://download.pytorch.org/whl/"


def import_with(fakes: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    """``import modeling_shapca`` in a fresh process that finds the given files (path -> text) first."""
    for name, text in fakes.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", "import modeling_shapca"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_torchvision_that_fails_to_import_is_named_with_the_fix(tmp_path):
    """What a CUDA torchvision raises beside a CPU-only torch: its operators do not register."""
    result = import_with(
        {
            "torchvision/__init__.py": 'import torch\nraise RuntimeError("operator torchvision::nms does not exist")\n',
            "torchvision/version.py": "__version__ = '0.99.0+cu999'\n",
        },
        tmp_path,
    )
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"ImportError: torch {torch.__version__} and torchvision 0.99.0+cu999 ")
    assert "RuntimeError: operator torchvision::nms does not exist" in message and FIX in message


def test_a_cuda_torchvision_beside_a_cpu_only_torch_is_named_with_the_fix(tmp_path):
    result = import_with(
        {
            "torch/__init__.py": "__version__ = '2.5.1+cpu'\n",
            "torchvision/__init__.py": "__version__ = '0.20.1+cu124'\n",
        },
        tmp_path,
    )
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: torch 2.5.1+cpu and torchvision 0.20.1+cu124 are installed from different")
    assert "a CPU-only torch cannot run a torchvision built for cu124" in message
    assert f"`{FIX}cpu`" in message
