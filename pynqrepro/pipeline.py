"""The facade the experiments, ``pynqrepro report`` and users' scripts share: the study's pipeline
as a few calls, so none of them reaches into a stage's files.

- ``Setup``: what one session measures with (scale, board, store, data, board login).
- ``trained_network(setup, w, a)``: the CNV trained at the setup's scale (through the store) and
  its FINN HW-layer model for a board (cached), as a ``Network``; ``network.published_folding()``
  is FINN's published folding as that model names its nodes, ``network.estimate(folding)`` FINN's
  estimate at a folding.
- ``synthesis_build(setup, network, folding)``: FINN's full Vivado build at a folding (cached),
  with its deployment folder and parsed synthesis reports.
- ``holdout_images(setup, count)``: the scale's test images as the accelerator receives them.
"""

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from pynqrepro.board.remote import BoardLogin
from pynqrepro.core.boards import Board
from pynqrepro.core.scale import Scale
from pynqrepro.core.store import Artifact, ArtifactStore
from pynqrepro.data.splits import uint8_test_set
from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
from pynqrepro.finnflow.estimate import NetworkEstimate, estimate
from pynqrepro.finnflow.export import load_cnv
from pynqrepro.finnflow.foldconfig import apply_folding, published_folding
from pynqrepro.models.cnv import CNV
from pynqrepro.synthesis.vivado_build import SynthesisBuild, finished_build
from pynqrepro.training.recipes import trained_checkpoint


@dataclass(frozen=True)
class Setup:
    """What every measurement of one session shares."""

    scale: Scale
    board: Board
    store: ArtifactStore
    data_dir: Path | None = None
    board_login: BoardLogin | None = None  # the board stage's; None where no board is reachable
    reports_dir: Path | None = None  # where the reports a measurement reads live (e.g. design_space.json)


@dataclass(frozen=True)
class Network:
    """A trained CNV checkpoint and its FINN HW-layer model for one board (both store artifacts)."""

    weight_bits: int
    act_bits: int
    checkpoint: Artifact
    hw: Artifact
    board: Board

    @cached_property
    def hw_model(self) -> ModelWrapper:
        """The specialised HW-layer model (read once; foldings are applied to copies)."""
        return load_hw_model(self.hw)

    def model(self) -> CNV:
        """The trained Brevitas CNV, in eval mode."""
        return load_cnv(self.checkpoint.path)

    def published_folding(self) -> dict:
        """FINN's published folding of CNV at these bit widths, as this HW model names its nodes."""
        return published_folding(self.hw_model, self.weight_bits, self.act_bits)

    def estimate(self, folding: dict | None) -> NetworkEstimate:
        """FINN's estimate at ``folding`` (None: PE = SIMD = 1) at the board's default clock."""
        return estimate(apply_folding(self.hw_model, folding), self.board.part, self.board.clock_ns)


def trained_network(setup: Setup, weight_bits: int, act_bits: int, board: Board | None = None) -> Network:
    """CNV trained at the setup's scale and its HW model for ``board`` (default: the setup's)."""
    board = board or setup.board
    checkpoint = trained_checkpoint(setup.store, setup.scale, weight_bits, act_bits, setup.data_dir)
    return Network(weight_bits, act_bits, checkpoint, hw_model_artifact(setup.store, checkpoint, board), board)


def synthesis_build(setup: Setup, network: Network, folding: dict) -> SynthesisBuild:
    """FINN's full build of ``network`` at ``folding`` on its board's default clock (needs Vivado
    unless cached)."""
    return finished_build(setup.store, network.hw, network.board, folding)


def holdout_images(setup: Setup, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` (default: all) test images of the scale's dataset, uint8 N x 3 x 32 x 32
    as the accelerator receives them, and their labels."""
    return uint8_test_set(setup.scale.dataset, setup.data_dir, count)
