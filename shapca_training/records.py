"""What a run leaves on disk and what it depends on: results files written whole, the run's
environment (device, threads, versions), the lock of an output folder and the summary of seeds."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import time
from pathlib import Path

import torch

logger = logging.getLogger(__name__)
# The libraries whose version is recorded with every result (see `run_environment`).
ENVIRONMENT_PACKAGES = ("torch", "transformers", "datasets", "accelerate", "timm", "numpy", "tokenizers")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the whole new one, never a
    part: write a temporary file beside it, flush it to disk, then rename it over ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_jsonl(path: Path, records) -> None:
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))


def run_environment(training_args) -> dict:
    """What a run's numbers depend on besides its config and seed: the device, torch's CPU threads
    (they set the order of floating-point sums), the library versions and this library's commit. Saved in
    ``all_results.json`` under ``"environment"``."""
    device = training_args.device
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "processes": training_args.world_size,
        "torch_num_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: package_version(name) for name in ENVIRONMENT_PACKAGES},
        "code": code_version(),
    }


LIBRARY_CHECKOUT = Path(__file__).resolve().parents[1]
CHANGED_FILES_KEPT = 50  # a checkout full of untracked data would fill every results file


def code_version(root: Path = LIBRARY_CHECKOUT) -> dict | None:
    """The git commit of this library's checkout, whether its files were changed since and which:
    ``{"commit": ..., "modified": bool, "changed_files": [...], "changed_files_total": int}``, the
    paths as ``git status`` finds them (new files count, ignored ones do not, a new folder is one
    entry, a renamed file its new name), the first `CHANGED_FILES_KEPT` of them. None outside a git
    checkout (an installed wheel). A resumed run records the commit of its last start. ``root``:
    the checkout, this library's by default."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=True, timeout=10)
        return done.stdout.decode("utf-8", errors="replace")

    try:
        commit = git("rev-parse", "HEAD").strip()
        # -z: paths as they are (no quotes, no escapes), each entry ended by NUL; a rename or copy
        # ("R", "C") is followed by its old path, an entry of its own.
        entries = iter(git("status", "--porcelain=v1", "-z").split("\0"))
    except (OSError, subprocess.SubprocessError):
        return None
    changed = []
    for entry in entries:
        if entry:
            changed.append(entry[3:])
            if entry[0] in "RC":
                next(entries, None)
    return {"commit": commit, "modified": bool(changed), "changed_files": changed[:CHANGED_FILES_KEPT],
            "changed_files_total": len(changed)}  # fmt: skip


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def last_complete_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The ``checkpoint-<step>`` of ``folder`` with the highest step among those a save finished
    (they have ``trainer_state.json``; one a kill tore while saving has not), or None."""
    complete = [
        path for path in Path(folder).glob("checkpoint-*")
        if path.name.split("-")[-1].isdigit() and (path / "trainer_state.json").is_file()
    ]  # fmt: skip
    return max(complete, key=lambda path: int(path.name.split("-")[-1]), default=None)


def checkpoint_state(checkpoint: str | os.PathLike) -> dict:
    """A checkpoint's ``trainer_state.json`` ({} when it has none)."""
    state_file = Path(checkpoint) / "trainer_state.json"
    return json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {}


def stored_callback_state(state: dict, name: str) -> dict | None:
    """The state (``{"args": ..., "attributes": ...}``) a checkpoint's ``state`` (`checkpoint_state`)
    holds for the Trainer's callback of class ``name`` (e.g. ``EarlyStoppingCallback``), or None."""
    stored = state.get("stateful_callbacks", {}).get(name)
    return stored[0] if isinstance(stored, list) else stored  # a list when a run has several of that class


def read_results(path: str | os.PathLike) -> dict | None:
    """The results JSON at ``path``, or None when it is missing or not a whole JSON object."""
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


class OutputDirLock:
    """Holds ``output_dir/.run_mie.lock`` (the owner's process id and host) while a run writes into
    the folder, so that a second run on the same folder is refused instead of mixing two models'
    files. A lock whose process is gone (a killed run), or that stays without an owner (a run
    killed between making the file and writing it), is taken over with a warning."""

    FILE = ".run_mie.lock"

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / self.FILE
        self.owner = f"{os.getpid()} {socket.gethostname()}"

    @staticmethod
    def _alive(owner: str) -> bool:
        pid, _, host = owner.partition(" ")
        if host.strip() != socket.gethostname() or not pid.isdigit():
            return True  # another machine's process (or an unknown format): cannot tell, so in use
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @staticmethod
    def _read_owner(path: Path) -> str | None:
        """The process and host written in the lock file at ``path`` ("" while its run is writing
        them), or None when there is no such file."""
        try:
            return path.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            return None

    @classmethod
    def live_owner(cls, folder: str | os.PathLike) -> str | None:
        """The process and host of the run writing into ``folder`` now, or None (no lock, or the lock
        of a run that is gone)."""
        owner = cls._read_owner(Path(folder) / cls.FILE)
        return owner if owner and cls._alive(owner) else None

    def __enter__(self):
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(
                f"--output_dir {folder} is a file, not a folder: give a folder to write the run into."
            )
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"--output_dir {folder} cannot be written: give a folder you may write into.")
        blank_looks = 0
        while True:
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self._read_owner(self.path)
                if owner is None:  # its run ended between our two looks: try again
                    continue
                if not owner and blank_looks < 20:  # a run that has just made the file writes its owner next
                    blank_looks += 1
                    time.sleep(0.05)
                    continue
                if owner and self._alive(owner):
                    raise RuntimeError(
                        f"{folder} is in use by another run_mie.py (process and host: {owner}, see {self.path}). "
                        "Wait for it to finish or give another --output_dir; if no such run is going on, "
                        f"delete {self.path}."
                    ) from None
                logger.warning(
                    "Taking over the lock of %s left by a run that is gone (%s).", folder, owner or "no owner"
                )
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(self.owner + "\n")
            return self

    def __exit__(self, *exc_info):
        try:
            if self.path.read_text(encoding="utf-8").strip() == self.owner:
                self.path.unlink()
        except FileNotFoundError:
            pass


def summarise_seeds(runs: dict[int, dict]) -> dict:
    """Mean and standard deviation over seeds of every numeric result."""
    summary = {"seeds": sorted(runs)}
    keys = set.intersection(*(set(r) for r in runs.values()))
    for key in sorted(keys):
        values = [runs[seed][key] for seed in sorted(runs)]
        if all(isinstance(v, (int, float)) for v in values):
            summary[f"{key}_mean"] = statistics.fmean(values)
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary
