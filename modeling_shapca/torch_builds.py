"""torch and torchvision must come from one build: checked when the library is imported."""


def check_torchvision() -> None:
    """Raise an ImportError that says what to do when torchvision is installed but does not go with
    torch (a CUDA torchvision beside a CPU-only torch, say): transformers imports it, and its error
    ("Could not import module 'PreTrainedModel'") names neither package. Nothing is imported that
    transformers would not import anyway."""
    import importlib.util
    import re
    from pathlib import Path

    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        return
    import torch

    cause = None
    try:
        import torchvision

        torchvision_version = str(torchvision.__version__)
    # A torchvision of another build fails as it registers its operators ("operator torchvision::nms
    # does not exist"), or as it compares CUDA versions; any failure here is reported the same way.
    except Exception as error:  # noqa: BLE001
        cause, torchvision_version = error, "unknown"
        version_file = Path(spec.origin or "").with_name("version.py")  # its version, read without importing it
        found = re.search(r"__version__ = ['\"]([^'\"]+)", version_file.read_text()) if version_file.is_file() else None
        if found:
            torchvision_version = found.group(1)
    torch_version = str(torch.__version__)
    torch_build, torchvision_build = torch_version.partition("+")[2], torchvision_version.partition("+")[2]
    if cause is not None:
        problem = f"torchvision does not import ({type(cause).__name__}: {cause})"
    elif torch_build == "cpu" and torchvision_build not in ("", "cpu"):
        problem = f"a CPU-only torch cannot run a torchvision built for {torchvision_build}"
    else:
        return
    index = f"https://download.pytorch.org/whl/{torch_build or 'cpu'}"
    raise ImportError(
        f"torch {torch_version} and torchvision {torchvision_version} are installed from different builds: "
        f"{problem}. Install both from the same index: `pip install --force-reinstall torch torchvision "
        f"--index-url {index}`"
        + ("" if index.endswith("/cpu") else " (.../whl/cpu on a machine without a GPU)")
        + ", then import modeling_shapca again."
    ) from cause
