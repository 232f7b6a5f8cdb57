"""A design-space candidate grown from a trained parent: the parent's weights at the candidate's
per-layer bit widths (a CNV's parameters do not depend on its bit widths, so they load as they
are), its conv channels pruned to the candidate's level (L1 channel scores, as the channel sweep),
then fine-tuned for some epochs with the widths held.

Each fidelity is one store artifact keyed by what it does and the artifact it starts from:
0 epochs (the starting point, what the hardware side folds before any training is spent), then a
short fine-tune continuing from it, then the rest of the full fine-tune continuing from that. So
successive fidelities continue one another, and a search resumes and is shared like any stage.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core.atomic import atomic_write_json
from pynqrepro.core.executor import JobSpec
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.pruning.channels import channel_granules, prune_channels
from pynqrepro.pruning.config import CHANNEL_STEPS, STUDY_PRESETS
from pynqrepro.training.checkpoint import BEST, find_checkpoint, last_checkpoint, load_model, save_checkpoint
from pynqrepro.training.trainer import RunOptions, train

RESULT = "candidate.json"
FINETUNE_LR = STUDY_PRESETS[4].lr  # the study's fine-tuning learning rate (its 4- and 8-bit pruning runs)


@dataclass(frozen=True)
class CandidateResult:
    """What a candidate artifact reached: ``test_acc`` None for the 0-epoch starting point."""

    epochs: int  # fine-tuning epochs from the parent, in all
    test_acc: float | None
    val_acc: float | None
    conv_channels: tuple[int, ...]
    train_seconds: float

    @classmethod
    def read(cls, artifact: Artifact) -> "CandidateResult":
        data = json.loads(artifact.file(RESULT).read_text())
        return cls(**{**data, "conv_channels": tuple(data["conv_channels"])})


def candidate_artifact(store: ArtifactStore, start: Artifact, layer_bits: str, sparsity: float, epochs: int,
                       run: RunOptions, gpu: bool = False, lr: float = FINETUNE_LR,
                       channel_steps: int = CHANNEL_STEPS) -> Artifact:
    """The candidate fine-tuned ``epochs`` more from ``start``: a trained parent (requantised to
    ``layer_bits`` and channel-pruned to ``sparsity`` first; 0 epochs keeps just that) or a candidate
    artifact of the same candidate (continued). ``gpu``: fine-tuning is GPU work (a cluster job asks
    for one)."""
    continued = start.file(RESULT).is_file()
    before = CandidateResult.read(start).epochs if continued else 0

    def build(out: Path) -> None:
        model, config = load_model(find_checkpoint(start.path))
        config = dataclasses.replace(config, layer_bits=layer_bits)
        if not continued:
            requantised = config.build_model()
            requantised.load_state_dict(model.state_dict())
            model = requantised
            if sparsity > 0:
                dense = tuple(config.conv_channels)
                model = prune_channels(model, dense, channel_granules(dense, channel_steps), sparsity)
        config = dataclasses.replace(config, conv_channels=tuple(model.conv_channels), pretrained=None)
        if epochs == 0:
            save_checkpoint(out / "checkpoints" / BEST, {"state_dict": model.state_dict(), "config": config.to_dict()})
            record = CandidateResult(before, None, None, tuple(model.conv_channels), 0.0)
        else:
            state = {k: v.clone() for k, v in model.state_dict().items()}
            tune = dataclasses.replace(config, epochs=epochs, lr=lr)
            result = train(tune, dataclasses.replace(run, experiments=out, run_dir=out, progress=False,
                                                     init_model=lambda net: net.load_state_dict(state),
                                                     resume=last_checkpoint(out)))
            record = CandidateResult(before + epochs, result.test_acc, result.val_acc, tuple(model.conv_channels),
                                     result.train_seconds)
        atomic_write_json(out / RESULT, dataclasses.asdict(record))

    key = {"layer_bits": layer_bits, "sparsity": sparsity, "channel_steps": channel_steps, "epochs": epochs,
           "lr": lr if epochs else None}
    job = JobSpec("train", gpu=gpu, resumable=True) if epochs else None
    return store.get_or_build("explore_candidate", key, build, inputs={"start": start}, job=job)
