"""Experiment scales: how big a reproduction run is, as data.

A scale holds every setting that differs between a quick run and the study's: the dataset, the
training recipe, the pruning sweeps' length, how many images verification uses and the accuracy
the experiments must reach. Stages and experiments read these fields; none of them asks for a
scale by name. Adding a scale is one more entry in ``SCALES``.
"""

from dataclasses import dataclass, field, replace

from pynqrepro.core.errors import UserError

GPU_DATASETS = ("cifar10",)  # trained for hours: GPU work, and cluster jobs ask for GPUs


def gpu_work(dataset: str, max_steps: int | None) -> bool:
    """Whether training on ``dataset`` is GPU work: a GPU dataset, unless a dry run cuts it short."""
    return dataset in GPU_DATASETS and max_steps is None


@dataclass(frozen=True)
class TrainingRecipe:
    """How CNV is trained at a scale. TrainConfig fields not named here keep their defaults (the
    study's: Adam, lr halved every ``lr_step`` epochs, a 10% validation split, the seed)."""

    epochs: int
    lr: float
    batch_size: int
    lr_step: int  # epochs between lr halvings
    augment: str  # "crop_flip" (the study's), "crop" or "none"
    epochs_by_bits: dict = field(default_factory=dict)  # (weight bits, act bits) -> epochs, where they differ

    def settings(self, weight_bits: int, act_bits: int) -> dict:
        """TrainConfig keyword arguments for CNV at these bit widths."""
        return dict(epochs=self.epochs_by_bits.get((weight_bits, act_bits), self.epochs), lr=self.lr,
                    batch_size=self.batch_size, lr_step=self.lr_step, augment=self.augment)


@dataclass(frozen=True)
class AccuracyDropLimit:
    """The pruning experiment's check: the ``bits``-bit sweep step nearest ``sparsity`` loses at most
    ``points`` of test accuracy against the dense network; ``points`` None: the drop the study
    published at that sparsity (``references.STUDY_PRUNING_SWEEP``, resolved by ``study.pruning``)
    plus ``above_published``."""

    bits: int
    sparsity: float
    points: float | None = None
    above_published: float = 0.0


# The paper scale's pruning checks: the study's published sweep (2- and 4-bit, the three steps before
# its accuracy collapses), each drop allowed 2 points more, the paper scale's training tolerance.
PUBLISHED_DROP_LIMITS = tuple(AccuracyDropLimit(bits, sparsity, above_published=2.0)
                              for bits in (2, 4) for sparsity in (0.15, 0.30, 0.45))


@dataclass(frozen=True)
class Scale:
    name: str
    description: str
    dataset: str  # "digits" (offline, scikit-learn) or "cifar10"
    training: TrainingRecipe
    prune_epochs: int  # fine-tuning epochs per pruning sweep step
    prune_max_sparsity: float  # a sweep stops once its conv sparsity exceeds this
    verify_images: int | None  # test images run through every FINN stage of each trained CNV (None: all)
    min_test_acc: dict  # (weight bits, act bits) -> the test accuracy (%) training must reach
    pruning_drop_limits: tuple[AccuracyDropLimit, ...] = ()
    max_steps: int | None = None  # every training run (and fine-tuning) stops after this many optimizer steps
    prune_increment: float = 0.15  # a sweep step prunes the current sparsity + this (the study's)

    @property
    def needs_gpu(self) -> bool:
        """Training at this scale is GPU work (experiments that train carry the gpu marker): the
        rule its training configs follow (``TrainConfig.wants_gpu``)."""
        return gpu_work(self.dataset, self.max_steps)

    def dry_run(self, max_steps: int) -> "Scale":
        """This scale's code paths (dataset, recipe, sweeps, FINN flow) with every training run cut
        to ``max_steps`` optimizer steps and each pruning sweep reaching its sparsity limit in two
        steps: CPU work of minutes, so no GPU is needed and no accuracy is asserted. Its own name
        keeps its rows and checkpoints apart from the real scale's."""
        if not isinstance(max_steps, int) or max_steps <= 0:
            raise UserError(f"--max-steps must be a positive integer, got {max_steps!r}")
        return replace(self, name=f"{self.name}-dry", max_steps=max_steps,
                       description=f"dry run of {self.name}: every training cut to {max_steps} steps",
                       min_test_acc={bits: 0.0 for bits in self.min_test_acc}, pruning_drop_limits=(),
                       prune_increment=self.prune_max_sparsity / 2)


SCALES = {
    # Digits on 1-2 CPU cores. Four epochs with the lr halved every two clear 90% (1w1a, 1w2a) and
    # 95% (2w2a and wider) test accuracy; no augmentation (a flipped digit is another digit). Short
    # sweeps: a few steps of two-epoch fine-tuning. Verification on the whole test set (360 images).
    "smoke": Scale(
        "smoke", "offline sklearn digits, CPU, minutes", dataset="digits",
        training=TrainingRecipe(epochs=4, lr=0.02, batch_size=64, lr_step=2, augment="none"),
        prune_epochs=2, prune_max_sparsity=0.45, verify_images=None,
        min_test_acc={(1, 1): 90.0, (1, 2): 90.0, (2, 2): 95.0, (4, 4): 95.0, (8, 8): 95.0},
        pruning_drop_limits=(AccuracyDropLimit(bits=4, sparsity=0.30, points=2.0),)),
    # The study's recipe on CIFAR-10: epochs as Brevitas's published CNVs (1000 for 1w1a, 500 else),
    # the study's pruning scripts (50 fine-tuning epochs per step, up to 90% sparsity). Accuracy
    # within about 2 points of the published CIFAR-10 figures (8w8a: as 4w4a). Bit-exact
    # verification on a sample of 1,000 of the 10,000 test images (FINN's Python execution takes
    # ~0.2-0.6 s per image and stage set on one core).
    "paper": Scale(
        "paper", "CIFAR-10 with the study's epochs (GPU)", dataset="cifar10",
        training=TrainingRecipe(epochs=500, lr=0.02, batch_size=128, lr_step=40, augment="crop_flip",
                                epochs_by_bits={(1, 1): 1000}),
        prune_epochs=50, prune_max_sparsity=0.9, verify_images=1000,
        min_test_acc={(1, 1): 82.0, (1, 2): 86.0, (2, 2): 87.0, (4, 4): 88.0, (8, 8): 88.0},
        pruning_drop_limits=PUBLISHED_DROP_LIMITS),
}
DEFAULT_SCALE = "smoke"


def get_scale(name: str, max_steps: int | None = None) -> Scale:
    """The scale ``name``; with ``max_steps``, its dry run (``Scale.dry_run``)."""
    scale = SCALES.get(name)
    if scale is None:
        raise UserError(f"unknown scale {name!r}: choose one of {', '.join(SCALES)}")
    return scale if max_steps is None else scale.dry_run(max_steps)
