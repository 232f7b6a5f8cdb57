"""Trainer: checkpoints, exact resume after SIGKILL, DDP (gloo, 2 processes), CLI errors, recipes."""

import csv
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
from pynqrepro.data.splits import load_splits
from pynqrepro.training.checkpoint import LAST, load_model, load_pretrained, read_checkpoint, save_checkpoint
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.distributed import DistSpec, _run_rank, resolve
from pynqrepro.training.recipes import recipe
from pynqrepro.training.trainer import RunOptions, make_loader

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
    (["train", "--bit-width", "2", "-b", "0"], "batch size must be a positive"),
    (["train", "--bit-width", "2", "--world-size", "2", "--rank", "2"], "--rank 2 is outside"),
    (["train", "--bit-width", "2", "--world-size", "0"], "--world-size must be at least 1"),
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
    model = cfg.build_model()
    train_set = load_splits(cfg.dataset, None, cfg.val_fraction, cfg.augment, cfg.seed).train
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        loaders = [make_loader(train_set, cfg.batch_size // world_size, cfg.seed, epoch, r, world_size)
                   for r in range(world_size)]
        for shards in zip(*loaders):
            loss = sum(criterion(model(x), y) for x, y in shards) / world_size
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
