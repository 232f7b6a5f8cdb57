"""Tiny CNV trainings for the SLURM tests, and the session that ``test_slurm.py`` runs twice at once.

The point of those tests is the mechanism (jobs, claims, requeues), so the CNV is small (16-32
channels) and trains on sklearn digits for a few short epochs. Not collected by ``./run test``
(no ``test_`` prefix); ``test_slurm.py`` starts it as its own pytest sessions.
"""

from pynqrepro.core.boards import get_board
from pynqrepro.finnflow.hw_build import hw_model_artifact
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.recipes import train_artifact


def tiny_config(seed: int, epochs: int = 2, dataset: str = "digits") -> TrainConfig:
    return TrainConfig(2, 2, dataset=dataset, epochs=epochs, lr=0.02, batch_size=64, lr_step=2, augment="none",
                       seed=seed, conv_channels=(16, 16, 32, 32, 32, 32), fc_features=(64, 64))


SESSION_SEED = 21  # the concurrent sessions' training, distinct from every other test's


def test_session_artifacts(store):
    """A training and its FINN HW model, which two concurrent sessions must each get from one job."""
    checkpoint = train_artifact(store, tiny_config(SESSION_SEED))
    hw_model = hw_model_artifact(store, checkpoint, get_board("pynq-z1"))
    print(f"artifacts: {checkpoint.key} {hw_model.key}")
