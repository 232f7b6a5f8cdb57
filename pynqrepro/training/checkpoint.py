"""Checkpoints in the study's layout (``checkpoint.tar`` / ``model_best.pth.tar``) and loading.

A checkpoint holds the model state_dict, optimizer (``optim_dict``, the key Brevitas's trainer
reads), scheduler, epoch, best accuracies and the full TrainConfig, so a model can be rebuilt from
the file alone. Writes are atomic: a run killed while saving leaves the previous checkpoint intact.
"""

import hashlib
import io
import shutil
from pathlib import Path

import torch
from torch import hub

from pynqrepro.core.atomic import atomic_write_bytes
from pynqrepro.core.errors import UserError
from pynqrepro.core.logs import warn
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.models.cnv import CNV
from pynqrepro.training.config import TrainConfig

LAST = "checkpoint.tar"
BEST = "model_best.pth.tar"
PRETRAINED_NAMES = {(1, 1): "cnv_1w1a", (1, 2): "cnv_1w2a", (2, 2): "cnv_2w2a"}


def save_checkpoint(path: Path, payload: dict) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def torch_file(path: Path, what: str, fix: str):
    """``torch.load`` of a tensors-only file; anything else (text, truncated, foreign) is a UserError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a text file, a truncated zip, a pickle of code: each raises its own type
        raise UserError(f"{path} is not {what}: it is truncated, corrupt or another kind of file "
                        f"(torch.load: {type(exc).__name__}): {fix}") from None


def _not_a_file(path: Path) -> str:
    """What ``path`` is, that is not a regular file: missing, a directory or a device/pipe."""
    if path.is_dir():
        return "is a directory, not a checkpoint file"
    return "is not a regular file (a device, pipe or socket)" if path.exists() else "does not exist"


def read_checkpoint(path: Path) -> dict:
    """The checkpoint dict at ``path``; a missing or unreadable file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} {_not_a_file(path)}: pass the path of a {LAST} or {BEST} file")
    package = torch_file(path, "a readable checkpoint", f"pass a {LAST} or {BEST} written by pynqrepro train")
    if not isinstance(package, dict) or "state_dict" not in package:
        raise UserError(f"{path} is not a training checkpoint (no state_dict): pass a {LAST} or {BEST} file")
    return package


RESUME_KEYS = ("optim_dict", "scheduler", "progress")


def read_resumable(path: Path) -> dict:
    """The checkpoint dict at ``path``, with the optimizer, scheduler and progress a run continues
    from; a weights-only checkpoint (e.g. an exported or foreign model_best) is a UserError."""
    package = read_checkpoint(path)
    missing = [key for key in RESUME_KEYS if key not in package]
    if missing:
        raise UserError(f"{path} holds no {'/'.join(missing)} to continue a run from: resume from the {LAST} of "
                        f"a pynqrepro train run, or start a new run from its weights with --pretrained {path}")
    return package


def strip_ddp_prefix(state_dict: dict) -> dict:
    """State dicts saved from a DistributedDataParallel wrapper carry a ``module.`` prefix."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def find_checkpoint(path: Path) -> Path:
    """A checkpoint file, or the best (else last) one inside a run or artifact directory."""
    path = Path(path)
    if path.is_dir():
        for directory in (path, path / "checkpoints"):
            for name in (BEST, LAST):
                if (directory / name).is_file():
                    return directory / name
        raise UserError(f"no {BEST} or {LAST} in {path}: pass a checkpoint file or a run directory")
    return path


def last_checkpoint(run_dir: Path) -> Path | None:
    """The ``checkpoint.tar`` an interrupted run left in ``run_dir`` (resume from it), else None."""
    path = Path(run_dir) / "checkpoints" / LAST
    return path if path.is_file() else None


def load_model(path: Path) -> tuple[CNV, TrainConfig]:
    """Rebuild the trained CNV and its TrainConfig from a checkpoint file or run directory."""
    path = find_checkpoint(path)
    package = read_checkpoint(path)
    if "config" not in package:
        raise UserError(f"{path} has no training config (a bare Brevitas checkpoint?): "
                        f"load it with --pretrained instead")
    config = TrainConfig.from_dict(package["config"])
    model = config.build_model()
    load_state(model, package["state_dict"], f"checkpoint {path}", "pass a checkpoint written by pynqrepro's trainer")
    model.eval()
    return model, config


def import_checkpoint(store: ArtifactStore, path: Path) -> Artifact:
    """A checkpoint file (or run directory) a user names, as a store artifact keyed by its content
    and holding it as ``model_best.pth.tar``: every command that takes a checkpoint (estimate, fold,
    build, prune) finds the same artifact, and so the HW models already built from it. The file must
    load as a pynqrepro checkpoint before anything is stored."""
    path = find_checkpoint(path)
    load_model(path)
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()

    # expect: an entry of the older layout (the file under the user's name) is rebuilt in place
    return store.get_or_build("checkpoint", {"sha256": digest}, lambda out: shutil.copyfile(path, out / BEST),
                              expect=(BEST,))


def pretrained_url(weight_bits: int, act_bits: int) -> str:
    """URL of Brevitas's published CNV weights for these bit widths (from brevitas_examples' cfg)."""
    from brevitas_examples.bnn_pynq.models import get_model_cfg

    name = PRETRAINED_NAMES.get((weight_bits, act_bits))
    if name is None:
        known = ", ".join(f"{w}w{a}a" for w, a in PRETRAINED_NAMES)
        raise UserError(f"Brevitas publishes no CNV {weight_bits}w{act_bits}a weights: "
                        f"use one of {known} or pass a state_dict file to --pretrained")
    return get_model_cfg(name).get("MODEL", "PRETRAINED_URL")


def load_pretrained(model: CNV, source: str) -> None:
    """Load ``source`` ("brevitas" = the published weights, else a local file) into ``model``."""
    if source == "brevitas":
        url = pretrained_url(model.weight_bits, model.act_bits)
        try:
            state_dict = hub.load_state_dict_from_url(url, map_location="cpu", progress=False)
        except OSError as exc:
            target = Path(hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
            raise UserError(f"cannot download {url} ({exc}): put the file at {target} "
                            f"or pass its local path to --pretrained") from None
    else:
        file = Path(source)
        if not file.is_file():
            what = "do not exist" if not file.exists() else _not_a_file(file).replace("checkpoint", "state_dict")
            raise UserError(f"pretrained weights {file} {what}: pass a state_dict file or 'brevitas'")
        state_dict = torch_file(file, "a state_dict file", "download the weights again or pass 'brevitas'")
        if not isinstance(state_dict, dict):
            raise UserError(f"pretrained weights {file} hold no state_dict: pass a state_dict file or 'brevitas'")
        if "state_dict" in state_dict:
            _note_other_bits(file, state_dict.get("config"), model)
            state_dict = state_dict["state_dict"]
    load_state(model, state_dict, f"pretrained weights {source}", "pick matching bit widths/widths")


def _note_other_bits(file: Path, config, model: CNV) -> None:
    """A pynqrepro checkpoint of other bit widths loads (CNV's state_dict has one layout for all
    of them), but its weights were quantised for those: say so, once."""
    if not isinstance(config, dict):
        return
    bits = (config.get("weight_bits"), config.get("act_bits"))
    if bits != (model.weight_bits, model.act_bits):
        warn(f"--pretrained {file} was trained as CNV {bits[0]}W{bits[1]}A: its weights start this "
             f"{model.weight_bits}W{model.act_bits}A run, re-quantised (fine-tuning from other bit widths)")


def load_state(model: CNV, state_dict: dict, what: str, fix: str) -> None:
    """Strict load; a state_dict of another architecture is a UserError naming the first mismatch."""
    try:
        model.load_state_dict(strip_ddp_prefix(state_dict), strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise UserError(f"{what} does not fit CNV {model.weight_bits}w{model.act_bits}a "
                        f"with channels {model.conv_channels} ({first}): {fix}") from None
