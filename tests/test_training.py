"""Trainer: checkpoints, exact resume after SIGKILL, DDP (gloo, 2 processes), CLI errors, recipes,
the speed-ups (GPU-path batches, fast kernels, torch.compile fallback) and their artifact keys."""

import csv
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from pynqrepro.cli import main
from pynqrepro.core.errors import UserError
from pynqrepro.core.scale import get_scale
from pynqrepro.core.store import ArtifactStore
from pynqrepro.data.splits import load_splits
from pynqrepro.training import recipes
from pynqrepro.training.checkpoint import LAST, load_model, load_pretrained, read_checkpoint, save_checkpoint
from pynqrepro.training.config import EARLIER_KERNELS, TrainConfig
from pynqrepro.training.distributed import DistSpec, _run_rank, resolve
from pynqrepro.training.recipes import recipe, trained_checkpoint
from pynqrepro.training.trainer import (RunOptions, TrainResult, build_optimizer, make_loader, restore, run_epoch,
                                        same_run, train)

TINY = dict(dataset="digits", conv_channels=(4, 4, 8, 8, 8, 8), fc_features=(16, 16), batch_size=64)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    cfg = TrainConfig(2, 2, **TINY)
    model = cfg.build_model().eval()
    save_checkpoint(tmp_path / "run" / "checkpoints" / LAST, {"state_dict": model.state_dict(), "config": cfg.to_dict()})
    loaded, loaded_cfg = load_model(tmp_path / "run")
    x = torch.rand(4, 3, 32, 32)
    assert loaded_cfg == cfg and torch.equal(loaded(x), model(x))


def test_bad_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.tar")
    (tmp_path / "bad.tar").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="corrupt"):
        read_checkpoint(tmp_path / "bad.tar")
    torch.save({"state_dict": {}}, tmp_path / "bare.tar")
    with pytest.raises(UserError, match="no training config"):
        load_model(tmp_path / "bare.tar")


def test_pretrained_state_dict_loads_and_mismatch_is_explained(tmp_path):
    source = TrainConfig(1, 2).build_model()
    torch.save(source.state_dict(), tmp_path / "cnv_1w2a.pth")  # Brevitas publishes bare state_dicts
    target = TrainConfig(1, 2).build_model()
    load_pretrained(target, str(tmp_path / "cnv_1w2a.pth"))
    assert torch.equal(target.conv_features[1].weight, source.conv_features[1].weight)
    with pytest.raises(UserError, match="does not fit CNV"):
        load_pretrained(TrainConfig(1, 2, conv_channels=(8,) * 6).build_model(), str(tmp_path / "cnv_1w2a.pth"))
    with pytest.raises(UserError, match="publishes no CNV 4w4a"):
        load_pretrained(TrainConfig(4, 4).build_model(), "brevitas")


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": 0}, "learning rate must be positive"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"batch_size": -1}, "batch size must be a positive integer"),
    ({"weight_bits": 3}, "weight bit width 3"),
    ({"val_fraction": 1.0}, "validation fraction"),
])
def test_bad_config_is_a_user_error(kwargs, match):
    with pytest.raises(UserError, match=match):
        TrainConfig(**{"weight_bits": 2, "act_bits": 2, **kwargs})


@pytest.mark.parametrize("argv,match", [
    (["train", "--bit-width", "3"], "weight bit width 3"),
    (["train", "--bit-width", "2", "-b", "0"], "--batch-size: 0 is not allowed: it must be at least 1"),
    (["train", "--bit-width", "2", "--world-size", "2", "--rank", "2"], "--rank 2 is outside"),
    (["train", "--bit-width", "2", "--world-size", "0"], "--world-size: 0 is not allowed"),
    (["train", "--resume", "nope/checkpoint.tar"], "does not exist"),
    (["train"], "no bit widths given"),
    (["train", "--bit-width", "2", "--conv-channels", "4,x"], "--conv-channels '4,x' is not a comma-separated list"),
    (["train", "--bit-width", "2", "--augment", "rotate"], "argument --augment: invalid choice: 'rotate'"),
])
def test_cli_bad_input_is_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pynqrepro: error: ") and "\n" not in err
    assert match in err


def test_progress_of_earlier_checkpoints_resumes():
    """Checkpoints saved before the selection score was named best_score still resume."""
    from pynqrepro.training.trainer import Progress

    saved = {"epoch": 3, "best_val_acc": 91.5, "best_epoch": 2, "test_acc_at_best": 90.0, "best_test_acc": 92.0,
             "train_seconds": 1.0, "wall_seconds": 2.0, "train_images": 640}
    assert Progress.saved(saved) == Progress(3, 91.5, 2, 90.0, 92.0, 1.0, 2.0, 640)


def test_nccl_without_cuda_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UserError, match="nccl needs CUDA"):
        resolve(backend="nccl")


def test_smoke_recipe_is_the_studys_cnv_on_digits():
    cfg = recipe(get_scale("smoke"), 2, 2)
    assert cfg.dataset == "digits" and cfg.conv_channels == (64, 64, 128, 128, 256, 256)
    paper = get_scale("paper")
    assert recipe(paper, 1, 1).epochs == 1000 and recipe(paper, 2, 2).epochs == 500
    assert recipe(paper, 2, 2).lr_step == 40 and recipe(paper, 2, 2).dataset == "cifar10"


def test_dry_run_of_the_paper_scale_keeps_its_recipe_and_cuts_training_to_max_steps():
    paper = get_scale("paper")
    dry = get_scale("paper", max_steps=3)
    assert (dry.name, dry.needs_gpu, dry.dataset, dry.training) == ("paper-dry", False, "cifar10", paper.training)
    assert (dry.prune_epochs, dry.prune_max_sparsity) == (paper.prune_epochs, paper.prune_max_sparsity)
    assert dry.prune_increment == paper.prune_max_sparsity / 2  # each sweep reaches its limit in two steps
    assert set(dry.min_test_acc.values()) == {0.0} and dry.pruning_drop_limits == ()
    cfg = recipe(dry, 1, 1)
    assert (cfg.epochs, cfg.augment, cfg.max_steps, cfg.wants_gpu) == (1000, "crop_flip", 3, False)
    assert "max_steps" not in recipe(paper, 1, 1).to_dict()  # keys of runs without a cap are unchanged
    with pytest.raises(UserError, match="--max-steps must be a positive integer"):
        get_scale("paper", max_steps=0)


def test_max_steps_stops_the_run_after_that_many_optimizer_steps(tmp_path):
    cfg = TrainConfig(2, 2, **{**TINY, "batch_size": 256}, epochs=50, val_fraction=0.0, max_steps=7)
    result = train(cfg, RunOptions(experiments=tmp_path, progress=False))
    assert result.epochs == 2  # digits' 1437 training images: 5 full batches, then the 2 steps left
    assert read_checkpoint(tmp_path / cfg.name / "checkpoints" / LAST)["progress"]["steps"] == 7
    assert [row["epoch"] for row in _log(tmp_path / cfg.name)] == ["1", "2"]


def _train_command(experiments, *extra):
    return [sys.executable, "-m", "pynqrepro.cli", "train", "--bit-width", "2", "--dataset", "digits",
            "--epochs", "6", "--lr-step", "2", "--augment", "crop", "-b", "64", "--conv-channels", "4,4,8,8,8,8",
            "--fc-features", "16,16", "--no-progress", "--experiments", str(experiments), *extra]


def _log(run_dir):
    with open(run_dir / "log.csv") as handle:
        return [{k: v for k, v in row.items() if k not in ("epoch_s", "images_per_s")} for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_resume_after_sigkill_ends_with_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_train_command(tmp_path / "straight"), env=env, check=True, capture_output=True)

    victim = subprocess.Popen(_train_command(tmp_path / "killed"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "CNV_2W2A" / "checkpoints" / LAST
    while not checkpoint.exists() and victim.poll() is None:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = read_checkpoint(checkpoint)["epoch"]
    assert killed_at < 6, "the run finished before it could be killed"
    subprocess.run(_train_command(tmp_path / "killed", "--resume", str(checkpoint)), env=env, check=True,
                   capture_output=True)

    straight = read_checkpoint(tmp_path / "straight" / "CNV_2W2A" / "checkpoints" / LAST)
    resumed = read_checkpoint(checkpoint)
    assert resumed["epoch"] == straight["epoch"] == 6
    for name, tensor in straight["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][name]), name
    assert _log(tmp_path / "killed" / "CNV_2W2A") == _log(tmp_path / "straight" / "CNV_2W2A")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_rank(local_rank, cfg, opts, spec, out):
    """One DDP process: train, then save this rank's weights (the model is trained in place)."""
    torch.set_num_threads(1)
    models = []
    _run_rank(local_rank, cfg, replace(opts, init_model=models.append), spec)
    torch.save(models[0].state_dict(), out / f"rank{local_rank}.pt")


def _single_process_same_global_batch(cfg: TrainConfig, world_size: int) -> nn.Module:
    """What DDP computes: one Adam step per global batch on the mean of the per-rank losses
    (BatchNorm statistics per rank's share, as DDP without SyncBatchNorm)."""
    torch.manual_seed(cfg.seed)
    fmt = cfg.torch_memory_format
    model = cfg.build_model().to(memory_format=fmt)
    train_set = load_splits(cfg.dataset, None, cfg.val_fraction, cfg.augment, cfg.seed).train
    optimizer = build_optimizer(cfg, model)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        loaders = [make_loader(train_set, cfg.batch_size // world_size, cfg.seed, epoch, r, world_size)
                   for r in range(world_size)]
        for shards in zip(*loaders):
            loss = sum(criterion(model(x.contiguous(memory_format=fmt)), y) for x, y in shards) / world_size
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.clip_weights(-1, 1)
    return model


def test_ddp_gloo_two_processes_match_single_process_on_the_global_batch(tmp_path):
    torch.set_num_threads(1)
    cfg = TrainConfig(2, 2, epochs=1, augment="none", **TINY)
    spec = DistSpec(world_size=2, rank=0, nprocs=2, dist_url=f"tcp://127.0.0.1:{_free_port()}", backend="gloo")
    opts = RunOptions(experiments=tmp_path, progress=False)
    mp.spawn(_ddp_rank, args=(cfg, opts, spec, tmp_path), nprocs=2, join=True)

    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    reference = dict(_single_process_same_global_batch(cfg, 2).named_parameters())
    for name, ref in reference.items():
        assert torch.equal(rank0[name], rank1[name]), name
        torch.testing.assert_close(rank0[name], ref.detach(), rtol=1e-4, atol=1e-5, msg=name)
    saved = read_checkpoint(tmp_path / cfg.name / "checkpoints" / LAST)
    assert torch.equal(saved["state_dict"]["linear_features.6.weight"], rank0["linear_features.6.weight"])


@pytest.mark.parametrize("world_size", [1, 2])
def test_resident_batches_are_the_dataloaders_batches(world_size):
    """The GPU path's loader, run on CPU tensors: the DataLoader's batches, in its order, every rank."""
    train_set = load_splits("digits", None, 0.1, "crop_flip", 5).train
    for epoch in (1, 2):
        for rank in range(world_size):
            loader = make_loader(train_set, 64 // world_size, 5, epoch, rank, world_size)
            resident = make_loader(train_set, 64 // world_size, 5, epoch, rank, world_size, resident=True)
            assert len(resident) == len(loader)
            for (x, y), (rx, ry) in zip(loader, resident, strict=True):
                assert torch.equal(x, rx) and torch.equal(y, ry)


def _trained_weights(tmp_path, cfg: TrainConfig, **options) -> dict:
    """Weights after training on the CPU (its arithmetic is deterministic), on a GPU host too."""
    models = []
    options = {"device": "cpu", **options}
    train(cfg, RunOptions(experiments=tmp_path, progress=False, init_model=models.append, **options))
    return models[0].state_dict()


def test_without_the_fast_kernels_the_trainer_is_bit_identical_to_before(tmp_path):
    """Contiguous tensors and per-tensor Adam (a checkpoint from before the fast kernels): the
    trainer, on either data path, ends with exactly the weights of the plain loop it replaced."""
    cfg = TrainConfig(2, 2, epochs=1, augment="crop_flip", **EARLIER_KERNELS, **TINY)
    before = _single_process_same_global_batch(cfg, 1).state_dict()
    for resident in (False, True):
        weights = _trained_weights(tmp_path / str(resident), cfg, resident_data=resident)
        for name, tensor in before.items():
            assert torch.equal(weights[name], tensor), (resident, name)


def test_gpu_path_data_trains_to_the_same_weights_as_the_dataloader(tmp_path):
    cfg = TrainConfig(2, 2, epochs=1, augment="crop_flip", **TINY)
    assert cfg.memory_format == "channels_last" and cfg.fused_adam
    loader = _trained_weights(tmp_path / "loader", cfg, resident_data=False)
    resident = _trained_weights(tmp_path / "resident", cfg, resident_data=True)
    for name, tensor in loader.items():
        assert torch.equal(resident[name], tensor), name


def test_a_failing_torch_compile_warns_and_trains_eagerly_to_the_same_weights(tmp_path, monkeypatch):
    cfg = TrainConfig(2, 2, epochs=1, augment="none", **TINY)
    eager = _trained_weights(tmp_path / "eager", cfg)

    def failing_compile(model):
        def forward(images):
            model(images)  # runs (BatchNorm statistics move), then fails as a compiler backend can
            raise RuntimeError("backend failed\nwith a long trace")
        return forward

    monkeypatch.setattr(torch, "compile", failing_compile)
    with pytest.warns(UserWarning, match="torch.compile failed, training eagerly: RuntimeError: backend failed$"):
        fallback = _trained_weights(tmp_path / "fallback", cfg, compile=True)
    for name, tensor in eager.items():
        assert torch.equal(fallback[name], tensor), name


def test_checkpoints_trained_with_the_earlier_kernels_keep_them_and_are_never_reused(tmp_path, monkeypatch):
    """The store keys a checkpoint by its config, not by code: a checkpoint cached before the fast
    kernels (its config has no kernel fields) is not taken for a new one, and resumes as it was trained."""
    scale = get_scale("smoke")
    cfg = recipe(scale, 2, 2)
    earlier = {k: v for k, v in cfg.to_dict().items() if k not in EARLIER_KERNELS}  # as main keyed it
    store = ArtifactStore(tmp_path)
    cached = store.get_or_build("train", earlier, build=lambda out: (out / "model_best.pth.tar").write_text("old"),
                                code=recipes.__name__)  # as the stage's own code keys it
    trained = []

    def fake_launch(config, opts, spec):  # records what would be trained instead of training
        trained.append(config)
        return TrainResult(opts.run_dir, 1, 1, None, 90.0, 90.0, 1.0, 1.0, 100.0)

    monkeypatch.setattr(recipes, "launch", fake_launch)
    artifact = trained_checkpoint(store, scale, 2, 2)
    assert trained == [cfg] and artifact.key != cached.key and not artifact.file("model_best.pth.tar").exists()
    assert TrainConfig.from_dict(earlier) == replace(cfg, memory_format="contiguous", fused_adam=False)
    assert same_run(earlier, TrainConfig.from_dict(earlier)) and not same_run(earlier, cfg)
    assert store.key("train", replace(cfg, memory_format="contiguous").to_dict(), code=recipes.__name__) != artifact.key


@pytest.mark.gpu
def test_on_cuda_the_batches_are_built_on_the_gpu_and_equal_the_cpu_paths():
    """On the GPU what test_resident_batches_are_the_dataloaders_batches shows on CPU tensors."""
    train_set = load_splits("digits", None, 0.1, "crop_flip", 5).train
    loader = make_loader(train_set, 64, 5, 3)
    on_gpu = make_loader(train_set.to("cuda"), 64, 5, 3, resident=True)
    for (x, y), (gx, gy) in zip(loader, on_gpu, strict=True):
        assert gx.is_cuda and torch.equal(gx.cpu(), x) and torch.equal(gy.cpu(), y)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_the_trainer_takes_the_gpu_path_on_cuda_and_where_asked(tmp_path, device):
    """By default on CUDA (on the CPU where asked, as the dry run of benchmarks/gpu_check.sh does):
    data resident on the device, channels_last weights, cuDNN autotuning on CUDA, a finite epoch."""
    opts = RunOptions(experiments=tmp_path, progress=False)
    if device == "cpu":
        opts = replace(opts, device="cpu", resident_data=True)
    run = restore(TrainConfig(2, 2, epochs=1, augment="crop", **TINY), opts)
    assert run.device.type == device and run.resident and run.splits.train.images.device.type == device
    assert run.net.conv_features[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.backends.cudnn.benchmark or device == "cpu"
    stats = run_epoch(run, 1)
    assert stats.images == len(run.splits.train) // 64 * 64 and math.isfinite(stats.loss)


def test_second_train_refuses_to_replace_the_first_unless_overwrite(tmp_path, capsys):
    """A second `pynqrepro train` into the same --experiments names --resume and --overwrite; with
    --overwrite the new run replaces the old checkpoints."""
    tiny = ["train", "--bit-width", "2", "--dataset", "digits", "--epochs", "1", "-b", "256", "--no-progress",
            "--conv-channels", "8,8,8,8,8,8", "--fc-features", "8,8", "--experiments", str(tmp_path)]
    best = tmp_path / "CNV_2W2A" / "checkpoints" / "model_best.pth.tar"
    assert main(tiny) == 0
    first = best.read_bytes()
    capsys.readouterr()
    assert main([*tiny, "--seed", "7"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "already holds a run: continue it with --resume" in err[0] and "--overwrite" in err[0]
    assert best.read_bytes() == first
    assert main([*tiny, "--seed", "7", "--overwrite"]) == 0
    assert best.read_bytes() != first
