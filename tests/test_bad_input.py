"""Bad input as users type it, over every command and the pytest options: each case ends with the
documented exit code (2; pytest's usage errors: 4), one stderr line that names the fix, no output,
and every earlier file (checkpoints, an earlier training run, reports, store entries) unchanged.

The command line runs in-process (``pynqrepro.cli.main``) on tiny fixtures, and every error comes
before heavy work, so the cases take seconds; a subprocess runs only where the entry point itself is
under test (``python -m pynqrepro``, ``./run pynqrepro``, pytest's options).
"""

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pynqrepro.cli import main

REPO = Path(__file__).resolve().parent.parent
CKPT = "{F}/model_best.pth.tar"

# (category, command line, a fragment the error line must contain: the option or file and the fix)
# {F}: fixture files, {S}: a store holding the checkpoint, {R}: reports with a table, {E}: an
# experiments directory holding an earlier run, {A}: a regular file (paths "under" it cannot exist)
CASES = [
    # options argparse rejects: unknown, missing, a bad choice or type
    ("option", "", "required: COMMAND"),
    ("option", "bogus", "invalid choice: 'bogus'"),
    ("option", "--bogus train", "unrecognized arguments: --bogus"),
    ("option", "train --bogus", "unrecognized arguments: --bogus"),
    ("option", "fold", "required: --model"),
    ("option", "prune --bit-width 2", "required: --model"),
    ("option", f"prune --model {CKPT}", "required: --bit-width"),
    ("option", "estimate", "required: checkpoint"),
    ("option", "build", "required: checkpoint"),
    ("option", "deploy", "required: deploy_dir"),
    ("option", "report bogus", "argument table: invalid choice: 'bogus'"),
    ("option", "report training --bogus", "unrecognized arguments: --bogus"),
    ("option", "report training --weight-bits 7", "--weight-bits: invalid choice: 7"),
    ("option", "report folding --scale huge", "--scale: invalid choice: 'huge'"),
    ("option", f"estimate {CKPT} --board zedboard", "--board: invalid choice: 'zedboard'"),
    ("option", f"fold --model {CKPT} --board zedboard", "--board: invalid choice: 'zedboard'"),
    ("option", f"build {CKPT} --board zedboard", "--board: invalid choice: 'zedboard'"),
    ("option", f"estimate {CKPT} --executor cloud", "--executor: invalid choice: 'cloud'"),
    ("option", "train --bit-width 2 --dataset mnist", "--dataset: invalid choice: 'mnist'"),
    ("option", "train --bit-width 2 --augment rotate", "--augment: invalid choice: 'rotate'"),
    ("option", "train --bit-width 2 --dist-backend mpi", "--dist-backend: invalid choice: 'mpi'"),
    ("option", f"prune --model {CKPT} --bit-width 3", "--bit-width: invalid choice: 3"),
    ("option", f"prune --model {CKPT} --bit-width 2 --method magnitude", "--method: invalid choice"),
    ("option", "deploy {F} --scale huge", "--scale: invalid choice: 'huge'"),
    ("type", "train --bit-width two", "--bit-width: invalid int value: 'two'"),
    ("type", "train --bit-width 2 --epochs ten", "--epochs: 'ten' is not an integer"),
    ("type", "train --bit-width 2 --lr fast", "--lr: 'fast' is not a number"),
    ("type", "train --bit-width 2 -b 1.5", "--batch-size: '1.5' is not an integer"),
    ("type", "train --bit-width 2 --seed x", "--seed: invalid int value: 'x'"),
    ("type", f"estimate {CKPT} --clock-ns ten", "--clock-ns: 'ten' is not a number"),
    ("type", f"fold --model {CKPT} --lut-ratio most", "--lut-ratio: invalid float value: 'most'"),
    ("type", f"fold --model {CKPT} --mvau-wwidth-max wide", "--mvau-wwidth-max: 'wide' is not an integer"),
    ("type", f"prune --model {CKPT} --bit-width 2 --increment x", "--increment: invalid float value"),
    ("type", "deploy {F} --images all", "--images: 'all' is not an integer"),
    # numbers at their boundary
    ("number", f"estimate {CKPT} --clock-ns 0", "--clock-ns: 0 is not allowed"),
    ("number", f"estimate {CKPT} --clock-ns -1", "--clock-ns: -1 is not allowed"),
    ("number", f"estimate {CKPT} --clock-ns inf", "--clock-ns: inf is not allowed"),
    ("number", f"estimate {CKPT} --clock-ns nan", "--clock-ns: nan is not allowed"),
    ("number", f"build {CKPT} --clock-ns 0", "--clock-ns: 0 is not allowed"),
    ("number", f"fold --model {CKPT} --clock-ns -5", "--clock-ns: -5 is not allowed"),
    ("number", f"fold --model {CKPT} --mvau-wwidth-max 0", "--mvau-wwidth-max: 0 is not allowed"),
    ("number", f"fold --model {CKPT} --lut-ratio 0", "LUT ratio 0.0 is outside (0, 1]"),
    ("number", f"fold --model {CKPT} --lut-ratio 1.5", "LUT ratio 1.5 is outside (0, 1]"),
    ("number", f"fold --model {CKPT} --bram-ratio -1", "BRAM ratio -1.0 is outside (0, 1]"),
    ("number", f"fold --model {CKPT} --dsp-ratio 2", "DSP ratio 2.0 is outside (0, 1]"),
    ("number", "train --bit-width 3", "weight bit width 3 is not supported"),
    ("number", "train --weight-bits 2 --act-bits 16", "activation bit width 16 is not supported"),
    ("number", "train --weight-bits 2", "--act-bits is missing: pass it too, or --bit-width N for both"),
    ("number", "train --bit-width 2 --epochs 0", "--epochs: 0 is not allowed"),
    ("number", "train --bit-width 2 -b 0", "--batch-size: 0 is not allowed"),
    ("number", "train --bit-width 2 --lr 0", "--lr: 0 is not allowed"),
    ("number", "train --bit-width 2 --lr -0.1", "--lr: -0.1 is not allowed"),
    ("number", "train --bit-width 2 --lr-step 0", "--lr-step: 0 is not allowed"),
    ("number", "train --bit-width 2 --val-fraction 1", "validation fraction must be in [0, 1)"),
    ("number", "train --bit-width 2 --val-fraction -0.1", "validation fraction must be in [0, 1)"),
    ("number", "train --bit-width 2 --workers -1", "--workers must be 0 or more"),
    ("number", "train --bit-width 2 --world-size 0", "--world-size: 0 is not allowed"),
    ("number", "train --bit-width 2 --nproc-per-node 0", "--nproc-per-node: 0 is not allowed"),
    ("number", "train --bit-width 2 --world-size 2 --rank 5", "--rank 5 is outside --world-size 2"),
    ("number", f"prune --model {CKPT} --bit-width 2 --simd-list 9,16 --store-dir {{S}}", "SIMD list has 2 entries"),
    ("number", f"prune --model {CKPT} --bit-width 4 --store-dir {{S}}", "the checkpoint is CNV 2W2A, not 4-bit"),
    ("number", "train --bit-width 2 --conv-channels 0,64,128,128,256,256", "conv channels must be 6 positive"),
    ("number", "train --bit-width 2 --conv-channels 64,64", "conv channels must be 6 positive"),
    ("number", "train --bit-width 2 --conv-channels 64;64", "--conv-channels '64;64' is not a comma-separated"),
    ("number", "train --bit-width 2 --fc-features 512,-1", "fc features must be 2 positive"),
    ("number", "train --bit-width 2 --dataset digits -b 100000 --experiments {T}/exp",
     "use --batch-size 1293 or less"),
    ("number", f"prune --model {CKPT} --bit-width 2 --max-sparsity 1", "--max-sparsity 1.0 is outside [0, 1)"),
    ("number", f"prune --model {CKPT} --bit-width 2 --increment 0", "--increment 0.0 is outside (0, 1)"),
    ("number", f"prune --model {CKPT} --bit-width 2 --epochs 0", "--epochs: 0 is not allowed"),
    ("number", f"prune --model {CKPT} --bit-width 2 --lr 0", "--lr: 0 is not allowed"),
    ("number", f"prune --model {CKPT} --bit-width 2 --norm-order 0", "--norm-order: 0 is not allowed"),
    ("number", f"prune --model {CKPT} --bit-width 2 --channel-steps 0", "--channel-steps: 0 is not allowed"),
    ("number", f"prune --model {CKPT} --bit-width 2 --simd-list 9,x", "--simd-list '9,x' is not a comma-separated"),
    ("number", f"fold --model {CKPT} --pruning MVAU_hls_0=lots", "--pruning 'MVAU_hls_0=lots' is not NODE="),
    ("number", "deploy {F} --images 0", "--images: 0 is not allowed"),
    ("number", "deploy {F} --throughput-batch 0", "--throughput-batch: 0 is not allowed"),
    ("number", "deploy {F} --repeats -2", "--repeats: -2 is not allowed"),
    # files that are missing, not what they should be, or corrupt: named, never stored
    ("file", "estimate {F}/missing.tar", "missing.tar does not exist"),
    ("file", "estimate {F}/text.txt --store-dir {S}", "text.txt is not a readable checkpoint"),
    ("file", "estimate {F}/truncated.pth.tar --store-dir {S}", "truncated.pth.tar is not a readable checkpoint"),
    ("file", "estimate {F}/state_only.pth --store-dir {S}", "state_only.pth is not a training checkpoint"),
    ("file", "estimate {F}/empty_run --store-dir {S}", "no model_best.pth.tar or checkpoint.tar in"),
    ("file", "build {F}/text.txt --store-dir {S}", "text.txt is not a readable checkpoint"),
    ("file", "fold --model {F}/text.txt --store-dir {S}", "text.txt is not a readable checkpoint"),
    ("file", "fold --model {F}/truncated.pth.tar --store-dir {S}", "truncated.pth.tar is not a readable checkpoint"),
    ("file", "fold --model {F}/garbage.onnx --out {T}/f.json", "garbage.onnx is not an ONNX model"),
    ("file", "fold --model {F}/missing.onnx --out {T}/f.json", "missing.onnx does not exist"),
    ("file", "fold --model {F}/plain.onnx --out {T}/f.json", "the model has no FINN HW layers"),
    ("file", "prune --model {F}/text.txt --bit-width 2 --store-dir {S}", "text.txt is not a readable checkpoint"),
    ("file", "prune --model {F}/missing.tar --bit-width 2 --store-dir {S}", "missing.tar does not exist"),
    ("file", "train --resume {F}/text.txt", "text.txt is not a readable checkpoint"),
    ("file", "train --resume {F}/missing.tar", "missing.tar does not exist"),
    ("file", "train --resume {F}/state_only.pth", "state_only.pth is not a training checkpoint"),
    ("file", "train --evaluate", "--evaluate needs the checkpoint to evaluate"),
    ("file", "train --evaluate --resume {F}/text.txt", "text.txt is not a readable checkpoint"),
    ("file", "train --resume {F}/model_best.pth.tar --epochs 2",
     "model_best.pth.tar holds no optim_dict/scheduler/progress to continue a run from: resume from the "
     "checkpoint.tar of a pynqrepro train run, or start a new run from its weights with --pretrained"),
    ("file", "train --bit-width 2 --pretrained {F}/missing.pt --experiments {T}/exp", "missing.pt do not exist"),
    ("file", "train --bit-width 2 --dataset digits --pretrained {F}/text.txt --experiments {T}/exp",
     "text.txt is not a state_dict file"),
    ("file", "train --bit-width 2 --data-dir {F}/corrupt_cifar --experiments {T}/exp",
     "cifar-10-python.tar.gz is corrupt or not the CIFAR-10 python archive"),
    ("file", f"estimate {CKPT} --folding {{F}}/missing.json --store-dir {{S}}", "cannot read folding"),
    ("file", f"estimate {CKPT} --folding {{F}}/text.txt --store-dir {{S}}", "cannot read folding"),
    ("file", f"estimate {CKPT} --folding {{F}}/folding_list.json --store-dir {{S}}", "is not a FINN ApplyConfig JSON"),
    ("file", f"estimate {CKPT} --folding {{F}}/folding_pe0.json --store-dir {{S}}", "MVAU_hls_0 PE=0"),
    ("file", f"estimate {CKPT} --folding {{F}}/folding_simd_text.json --store-dir {{S}}", "SIMD='8'"),
    ("file", f"build {CKPT} --folding {{F}}/folding_pe0.json --store-dir {{S}}", "PE and SIMD must be integers >= 1"),
    ("file", f"estimate {CKPT} --folding finn:w9a9 --store-dir {{S}}", "FINN publishes CNV foldings only for"),
    ("file", f"estimate {CKPT} --folding finn:big --store-dir {{S}}", "bad folding 'finn:big'"),
    ("file", "deploy {F}/missing_deploy --board-host board.local", "is not a FINN deployment package"),
    ("file", "deploy {F} --board-host board.local", "is not a FINN deployment package"),
    ("file", "deploy {F}", "no board host: pass --board-host"),
    ("file", "deploy {F} --board-host board.local --board-key {F}/missing_key", "SSH key {F}/missing_key does not exist"),
    ("file", "deploy {F} --board-host 'pynq board'", "board host and user must be plain names"),
    ("file", "report training --board-host board.local --board-key {F}/missing_key",
     "SSH key {F}/missing_key does not exist"),
    ("file", f"estimate {CKPT} --executor slurm --cluster-config {{F}}/missing.toml",
     "--cluster-config {F}/missing.toml does not exist"),
    # outputs that cannot be written: refused before any work, earlier runs never overwritten
    ("output", f"fold --model {CKPT} --out {{A}}/folding.json --store-dir {{S}}", "--out {A}/folding.json cannot be created"),
    ("output", f"fold --model {CKPT} --out {{T}} --store-dir {{S}}", "is a directory, not a file"),
    ("output", f"fold --model {CKPT} --plot {{A}}/plot.png --store-dir {{S}}", "--plot {A}/plot.png cannot be created"),
    ("output", f"fold --model {CKPT} --store-dir {{A}}/store", "--store-dir {A}/store cannot be created"),
    ("output", f"estimate {CKPT} --store-dir {{A}}/store", "--store-dir {A}/store cannot be created"),
    ("output", f"estimate {CKPT} --store-dir {{A}}", "--store-dir {A} is a file, not a directory"),
    ("output", f"build {CKPT} --store-dir {{A}}/store", "--store-dir {A}/store cannot be created"),
    ("output", f"prune --model {CKPT} --bit-width 2 --store-dir {{A}}/store", "--store-dir {A}/store cannot be created"),
    ("output", "train --bit-width 2 --dataset digits --experiments {A}/exp", "--experiments {A}/exp cannot be created"),
    ("output", "train --bit-width 2 --dataset digits --executor slurm --store-dir {A}/s --cluster-config {F}/c.toml",
     "--store-dir {A}/s cannot be created"),
    ("output", "train --bit-width 2 --dataset digits --experiments {E}", "already holds a run: continue it with --resume"),
    ("output", "train --bit-width 2 --dataset digits --epochs 9 --experiments {E}", "or pass another --experiments"),
    ("output", "report --reports-dir {T}/typo", "--reports-dir {T}/typo is not a directory"),
    ("output", "report --reports-dir {A}", "--reports-dir {A} is not a directory"),
    ("output", "report training --reports-dir {A}/reports", "--reports-dir {A}/reports is not writable"),
    ("output", "report training --store-dir {A}/store --reports-dir {T}/r", "--store-dir {A}/store is not writable"),
    # issue 18, round 2. valid JSON of the wrong shape: the offending key named
    ("schema", f"fold --model {CKPT} --fifo-config {{F}}/fifo_list.json --store-dir {{S}}",
     "FIFO config {F}/fifo_list.json is a list, not a JSON object"),
    ("schema", f"fold --model {CKPT} --fifo-config {{F}}/fifo_depths_list.json --store-dir {{S}}",
     "'fifo_depths' is a list, not an object {FIFO name: value}"),
    ("schema", f"fold --model {CKPT} --fifo-config {{F}}/fifo_node_int.json --store-dir {{S}}",
     "entry 'MVAU_hls_0' is 5, not an object of node attributes"),
    ("schema", f"fold --model {CKPT} --fifo-config {{F}}/fifo_depths_empty.json --store-dir {{S}}",
     "MVAU_hls_0 inFIFODepths is a list, not a non-empty list of depths"),
    ("schema", f"fold --model {CKPT} --fifo-config {{F}}/text.txt --store-dir {{S}}", "cannot read FIFO config"),
    ("schema", f"estimate {CKPT} --folding {{F}}/fifo_node_int.json --store-dir {{S}}",
     "its entry 'MVAU_hls_0' is 5, not an object"),
    ("schema", "estimate {F}/model_best.pth.tar --executor slurm --cluster-config {F}/cluster_list.toml",
     "cluster_list.toml"),
    # numbers outside their domain
    ("domain", "train --bit-width 2 --dataset digits --seed -1 --experiments {T}/exp", "seed -1 is outside 0 .. 4294967295"),
    ("domain", "train --bit-width 2 --dataset digits --seed 4294967296 --experiments {T}/exp",
     "seed 4294967296 is outside 0 .. 4294967295"),
    ("domain", f"estimate {CKPT} --clock-ns 1e-300", "--clock-ns: 1e-300 is not allowed: a fabric clock period is 1 .."),
    ("domain", f"fold --model {CKPT} --clock-ns 1e300", "--clock-ns: 1e300 is not allowed"),
    ("domain", f"build {CKPT} --clock-ns 0.001", "--clock-ns: 0.001 is not allowed"),
    ("domain", "train --bit-width 2 --rank -1", "--rank: -1 is not allowed: it must be 0 or more"),
    ("domain", f"fold --model {CKPT} --lut-ratio nan", "LUT ratio nan is outside (0, 1]"),
    ("domain", "train --bit-width 2 --val-fraction nan", "validation fraction must be in [0, 1)"),
    # paths that cannot be created
    ("path", f"estimate {CKPT} --store-dir /proc/store", "--store-dir /proc/store cannot be created"),
    ("path", f"fold --model {CKPT} --store-dir /proc/store", "--store-dir /proc/store cannot be created"),
    ("path", f"fold --model {CKPT} --out /proc/folding.json --store-dir {{S}}", "--out /proc/folding.json cannot be created"),
    ("path", "train --bit-width 2 --dataset digits --experiments /proc/exp", "--experiments /proc/exp cannot be created"),
    ("path", "report training --store-dir /proc/store --reports-dir {T}/r", "--store-dir /proc/store"),
    # silent no-ops and loss, now refused
    ("silent", "train --resume {E}/CNV_2W2A/checkpoints/checkpoint.tar --experiments {T}/other",
     "--resume continues the run in {E}/CNV_2W2A and saves its checkpoints there"),
    ("silent", "train --bit-width 2 --dataset digits --executor slurm --experiments {T}/exp --cluster-config {F}/c.toml",
     "--experiments is for --executor local"),
    ("silent", "report training --weight-bits 8 --act-bits 1 --reports-dir {T}/r",
     "no training case matches --weight-bits 8 --act-bits 1: its cases are"),
    ("silent", f"fold --model {CKPT} --fifo-config {{F}}/fifo_empty.json --store-dir {{S}}", "sets no FIFO depth"),
    ("silent", f"fold --model {CKPT} --fifo-config {{F}}/folding_pe_only.json --store-dir {{S}}", "sets no FIFO depth"),
    # issue 18, round 3: an option another one makes meaningless is refused, not dropped
    ("silent", "train --evaluate --resume {E}/CNV_2W2A/checkpoints/checkpoint.tar --experiments {T}/exp",
     "--evaluate only evaluates the --resume checkpoint with its own config and writes nothing, so --experiments "
     "would be ignored: drop it"),
    ("silent", "train --evaluate --resume {E}/CNV_2W2A/checkpoints/checkpoint.tar --epochs 3 --dataset cifar10",
     "so --dataset, --epochs would be ignored: drop them"),
    ("silent", "train --evaluate --resume {E}/CNV_2W2A/checkpoints/checkpoint.tar --executor slurm", "so --executor"),
    ("silent", "train --overwrite --resume {E}/CNV_2W2A/checkpoints/checkpoint.tar",
     "--overwrite starts a new run over the earlier one, --resume continues it: drop --overwrite"),
    ("silent", "train --overwrite --resume {E}/CNV_2W2A/checkpoints/checkpoint.tar --executor slurm",
     "--overwrite starts a new run over the earlier one, --resume continues it"),
    ("silent", "train --bit-width 2 --dataset digits --executor slurm --overwrite --cluster-config {F}/c.toml",
     "--overwrite is for --executor local"),
    ("silent", "train --bit-width 2 --dataset digits --executor slurm --compile --cluster-config {F}/c.toml",
     "--compile is for --executor local"),
    ("silent", "train --bit-width 2 --dataset digits --executor slurm -j 4 --cluster-config {F}/c.toml",
     "--workers is for --executor local"),
    ("silent", "train --bit-width 2 --dataset digits --nproc-per-node 2 --experiments {T}/exp",
     "--nproc-per-node 2 sets the processes --multiprocessing-distributed spawns"),
    ("silent", "train --bit-width 2 --dataset digits --verify --experiments {T}/exp",
     "--verify checks store entries, and a local training uses none"),
    ("silent", "train --bit-width 2 --dataset digits --slurm-partition gpu --experiments {T}/exp",
     "--slurm-partition applies to SLURM jobs only: add --executor slurm"),
    ("silent", "train --bit-width 2 --dataset digits --cluster-config {F}/cluster_list.toml --experiments {T}/exp",
     "cluster_list.toml"),
    ("silent", f"estimate {CKPT} --slurm-account lab --store-dir {{S}}", "--slurm-account applies to SLURM jobs only"),
    ("silent", f"prune --model {CKPT} --bit-width 2 --method channels --simd-list 9,16,16,12,8,6 --store-dir {{S}}",
     "--simd-list is for --method simd_blocks, and --method channels ignores it: drop --simd-list"),
    ("silent", f"prune --model {CKPT} --bit-width 2 --method channels --norm-order 2 --store-dir {{S}}",
     "--norm-order is for --method simd_blocks"),
    ("silent", f"prune --model {CKPT} --bit-width 2 --channel-steps 4 --store-dir {{S}}",
     "--channel-steps is for --method channels, and --method simd_blocks ignores it"),
    ("silent", "calibrate --board kv260 --store-dir {S}", "--board names the board of the BUILD_DIRs being added"),
    ("silent", "calibrate --write-shipped --board kv260 --store-dir {S}", "or drop --board kv260"),
    # an empty value: Path('') is the current directory, which the command would silently use
    ("silent", "report --reports-dir ''", "argument --reports-dir: the value is empty: pass a value"),
    ("silent", "train --bit-width 2 --dataset digits --experiments ''", "argument --experiments: the value is empty"),
    ("silent", "estimate '' --store-dir {S}", "argument checkpoint: the value is empty: pass a value ('.' for the "
                                              "current directory) (see pynqrepro estimate --help)"),
    ("silent", f"estimate {CKPT} --folding ' ' --store-dir {{S}}", "argument --folding: the value is empty"),
    ("silent", f"fold --model {CKPT} --store-dir ''", "argument --store-dir: the value is empty"),
    # issue 18, round 3: tracebacks of torch, named before any work
    ("traceback", "train --bit-width 2 --dataset digits --world-size 2 --dist-url bogus --experiments {T}/exp",
     "--dist-url 'bogus' is not a rendezvous URL: use env://"),
    ("traceback", "train --bit-width 2 --dataset digits --multiprocessing-distributed --experiments {T}/exp",
     "--dist-url env:// reads the rendezvous from the environment, which lacks MASTER_ADDR and MASTER_PORT"),
    ("traceback", f"prune --model {CKPT} --bit-width 2 --device bogus --store-dir {{S}}",
     "--device 'bogus' is not a torch device: use cpu, cuda or cuda:N"),
    ("traceback", f"prune --model {CKPT} --bit-width 2 --device cuda:7 --store-dir {{S}}",
     "--device cuda:7 is not on this machine"),
    ("silent", "explore --target-board pynq-z1 pynq-z1 --reports-dir {T}/r --store-dir {S}",
     "--target-board names pynq-z1 more than once: give each board once"),
    ("misleading", "explore --target-board pynq-z1 --reports-dir {A} --store-dir {S}",
     "--reports-dir {A} is a file, not a directory: pass a directory path"),
    ("misleading", "report training --reports-dir {A}/r --store-dir {S}",
     "--reports-dir {A}/r is not writable: {A} is a file, not a directory"),
    ("traceback", "train --bit-width 2 --conv-channels 99999999999,64,128,128,256,256",
     "conv channels must be 6 positive integers up to 4096, got (99999999999, 64, 128"),
    ("traceback", "train --bit-width 2 --fc-features 512,1000000", "fc features must be 2 positive integers up to 4096"),
    ("number", "train --bit-width 2 --dataset digits -j 100000 --experiments {T}/exp",
     "--workers 100000 would start 100000 data loader processes"),
    ("echo", "train --bit-width 2 --conv-channels " + "64," * 3000 + "64", "64, 64, … (3,001 in all))"),
    ("silent", f"estimate {CKPT} --folding {{F}}/fifo_empty.json --store-dir {{S}}",
     "fifo_empty.json sets no node's attributes, so every PE and SIMD would stay 1: pass all-ones for that"),
    ("echo", f"estimate {CKPT} --folding {{F}}/folding_pe0_many.json --store-dir {{S}}",
     "MVAU_hls_4 PE=0 … and 2,995 more: PE and SIMD must be integers >= 1"),
    ("output", f"fold --model {CKPT} --out {{F}}/pipe --store-dir {{S}}",
     "--out {F}/pipe is not a regular file (a device, pipe or socket), which writing would replace"),
    ("output", f"fold --model {CKPT} --plot {{F}}/pipe --store-dir {{S}}", "--plot {F}/pipe is not a regular file"),
    ("traceback", "estimate {F}/model_best.pth.tar --executor slurm --cluster-config {F}/truncated.pth.tar",
     "--cluster-config {F}/truncated.pth.tar is not readable TOML ('utf-8' codec can't decode"),
    ("misleading", "deploy {F} --board-host board.local --board-key {F}/empty_run", "SSH key {F}/empty_run is a directory"),
    ("misleading", "deploy {F} --board-host board.local --board-key {F}/pipe",
     "SSH key {F}/pipe is not a regular file (a device, pipe or socket)"),
    # a value like a negative number read as an unknown option: "expected one argument"
    ("misleading", "train --bit-width 2 --conv-channels -64,64,128,128,256,256",
     "conv channels must be 6 positive integers up to 4096, got (-64, 64"),
    ("misleading", f"estimate {CKPT} --clock-ns -1e3", "--clock-ns: -1e3 is not allowed"),
    # huge inputs: the echo is cut
    ("echo", f"estimate {CKPT} --folding " + "y" * 5000, "yyy… is too long a path: each name in it may have 255"),
    ("echo", "estimate {F}/" + "m" * 3000, "mmm… is too long a path"),
    ("echo", f"fold --model {CKPT} --pruning " + "A=0.5," * 2000, "--pruning 'A=0.5,A=0.5"),
    ("echo", f"fold --model {CKPT} --margin " + "z" * 5000, "--margin 'zzzz"),
    ("echo", "explore --layer-bits " + "q" * 5000, "--layer-bits 'qqqq"),
    ("echo", "explore --sparsity " + "q" * 5000, "--sparsity 'qqqq"),
    ("echo", "train --bit-width 2 --conv-channels " + "64," * 3000 + "x", "characters) is not a comma-separated"),
    ("echo", "train --bit-width " + "9" * 5000, "--bit-width: invalid int value: '99999"),
    ("echo", f"fold --model {CKPT} --clock-ns " + "x" * 5000, "--clock-ns: 'xxxx"),
    # lines that pointed the wrong way
    ("misleading", "train --weight-bits 0", "weight bit width 0 is not supported: choose one of (1, 2, 4, 8)"),
    ("misleading", "train --act-bits 3 --weight-bits 2", "activation bit width 3 is not supported"),
    ("misleading", "train --resume {F}", "checkpoint {F} is a directory, not a checkpoint file"),
    ("misleading", "train --resume /dev/null", "checkpoint /dev/null is not a regular file"),
    ("misleading", "estimate /dev/null --store-dir {S}", "checkpoint /dev/null is not a regular file"),
    ("misleading", "fold --model /dev/null --store-dir {S}", "checkpoint /dev/null is not a regular file"),
    ("misleading", "train --bit-width 2 --dataset digits --pretrained {F} --experiments {T}/exp",
     "pretrained weights {F} is a directory, not a state_dict file"),
    ("misleading", f"estimate {CKPT} --folding all_ones --store-dir {{S}}", "did you mean the built-in all-ones?"),
    ("misleading", f"estimate {CKPT} --folding finn:w2a2x --store-dir {{S}}", "bad folding 'finn:w2a2x'"),
    ("misleading", "train --bit-width 2 --data-dir {A} --experiments {T}/exp",
     "--data-dir {A} is a file, not a directory: pass the directory that holds cifar-10-python.tar.gz"),
]


MAX_LINE = 1000  # an error line names the fix; it never echoes a huge input whole


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _digest(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files a user has: a tiny trained checkpoint (and non-checkpoints beside it), a store holding
    it, an earlier training run, reports with a table, and a regular file where a directory is wanted."""
    import torch

    from pynqrepro.core.provenance import environment
    from pynqrepro.core.report_files import merge_reports
    from pynqrepro.core.results import Recorder, SessionInfo
    from pynqrepro.core.store import ArtifactStore
    from pynqrepro.training.checkpoint import save_checkpoint
    from pynqrepro.training.config import TrainConfig

    root = tmp_path_factory.mktemp("bad-input")
    files, experiments = root / "files", root / "experiments" / "CNV_2W2A" / "checkpoints"
    for directory in (files / "empty_run", files / "corrupt_cifar", experiments, root / "cwd"):
        directory.mkdir(parents=True)
    config = TrainConfig(2, 2, dataset="digits", conv_channels=(8,) * 6, fc_features=(8, 8))
    model = config.build_model()
    save_checkpoint(files / "model_best.pth.tar", {"state_dict": model.state_dict(), "config": config.to_dict()})
    data = (files / "model_best.pth.tar").read_bytes()
    (files / "truncated.pth.tar").write_bytes(data[: len(data) // 2])
    (files / "text.txt").write_text("not a checkpoint\n")
    (files / "garbage.onnx").write_bytes(b"\x08\x07garbage")
    onnx_file(files / "plain.onnx")
    torch.save({"weights": torch.zeros(2)}, files / "state_only.pth")
    (files / "corrupt_cifar" / "cifar-10-python.tar.gz").write_bytes(b"not a tar")
    (files / "folding_list.json").write_text("[]")
    (files / "folding_pe0.json").write_text(json.dumps({"Defaults": {}, "MVAU_hls_0": {"PE": 0, "SIMD": 3}}))
    os.mkfifo(files / "pipe")  # a device or pipe where a file is wanted (never /dev/null: a bug would replace it)
    (files / "folding_pe0_many.json").write_text(json.dumps({f"MVAU_hls_{i}": {"PE": 0} for i in range(3000)}))
    (files / "folding_simd_text.json").write_text(json.dumps({"MVAU_hls_0": {"PE": 1, "SIMD": "8"}}))
    (files / "c.toml").write_text("")
    (files / "cluster_list.toml").write_text("train = [1, 2]\n")
    for name, content in (("fifo_list", [{"StreamingFIFO_rtl_0": 4}]), ("fifo_depths_list", {"fifo_depths": [4, 8]}),
                          ("fifo_node_int", {"MVAU_hls_0": 5}), ("fifo_depths_empty", {"MVAU_hls_0": {"inFIFODepths": []}}),
                          ("fifo_empty", {}), ("folding_pe_only", {"Defaults": {}, "MVAU_hls_0": {"PE": 1, "SIMD": 1}})):
        (files / f"{name}.json").write_text(json.dumps(content))
    (experiments / "model_best.pth.tar").write_bytes(data)
    save_checkpoint(experiments / "checkpoint.tar", {"state_dict": model.state_dict(), "config": config.to_dict(),
                                                     "optim_dict": {}, "scheduler": {}, "progress": {}})
    (root / "afile").write_text("a regular file\n")
    from pynqrepro.training.checkpoint import import_checkpoint

    import_checkpoint(ArtifactStore(root / "store"), files / "model_best.pth.tar")
    session = SessionInfo("earlier", "smoke", "pynq-z1", environment())
    Recorder(root / "reports", session, "exp.py::test").table("demo", title="Demo").add({"x": 1})
    merge_reports(root / "reports")
    return SimpleNamespace(root=root, paths={"F": files, "S": root / "store", "R": root / "reports",
                                             "E": root / "experiments", "A": root / "afile", "T": root / "cwd"})


def onnx_file(path: Path) -> None:
    """A valid ONNX model with no FINN HW layer (one Identity node)."""
    from onnx import TensorProto, helper, save

    tensor = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4]) for name in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain", tensor[:1], tensor[1:])
    save(helper.make_model(graph), str(path))


def fill(text: str, paths: dict) -> str:
    for key, path in paths.items():
        text = text.replace(f"{{{key}}}", str(path))
    return text


def run_cli(argv: list[str], capsys) -> tuple[int, str, list[str]]:
    try:
        code = main(argv)
    except SystemExit as done:  # only --help exits
        code = done.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def assert_nothing_changed(before: dict, after: dict) -> None:
    """Every earlier file as it was; nothing new but third-party log files in the store."""
    changed = {path for path, digest in before.items() if after.get(path) != digest}
    new = {path for path in set(after) - set(before) if not path.startswith("store/logs/")}
    assert not changed and not new, f"changed: {sorted(changed)}, new: {sorted(new)}"


@pytest.mark.parametrize("category, command, fragment", CASES,
                         ids=[f"{c[0]}-{i:03d}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_before_any_work(world, capsys, monkeypatch, category, command, fragment):
    monkeypatch.chdir(world.paths["T"])  # defaults (./.pynqrepro-store, ./experiments_out) land here
    monkeypatch.delenv("PYNQREPRO_STORE", raising=False)
    monkeypatch.delenv("PYNQ_BOARD_HOST", raising=False)
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):  # as outside torchrun
        monkeypatch.delenv(name, raising=False)
    before = snapshot(world.root)
    code, out, err = run_cli(shlex.split(fill(command, world.paths)), capsys)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("pynqrepro: error: "), err
    assert fill(fragment, world.paths) in err[0]
    assert len(err[0]) <= MAX_LINE, f"{len(err[0]):,} characters: a huge input is echoed whole"
    assert out == ""
    assert_nothing_changed(before, snapshot(world.root))


@pytest.mark.parametrize("lr, warning", [("1e30", "--lr 1e+30 is above 1: Adam will diverge"),
                                         ("1e-12", "--lr 1e-12 is below 1e-07: Adam will barely move the weights")])
def test_absurd_learning_rate_is_one_warning_before_the_work(world, capsys, monkeypatch, lr, warning):
    monkeypatch.chdir(world.paths["T"])
    code, _, err = run_cli(shlex.split(fill(f"train --bit-width 2 --dataset digits --lr {lr} --experiments {{E}}",
                                            world.paths)), capsys)
    assert code == 2 and len(err) == 2
    assert err[0].startswith(f"pynqrepro: warning: {warning}") and "the study uses 1e-4..0.02" in err[0]
    assert "already holds a run" in err[1]


def test_a_data_dir_digits_does_not_use_is_one_warning(world, capsys, monkeypatch):
    monkeypatch.chdir(world.paths["T"])
    code, _, err = run_cli(shlex.split(fill("train --bit-width 2 --dataset digits --data-dir {T}/nowhere "
                                            "--experiments {E}", world.paths)), capsys)
    assert code == 2 and len(err) == 2  # the warning, then the existing run's one-line error
    assert err[0] == fill("pynqrepro: warning: --data-dir {T}/nowhere is not used: the digits dataset ships with "
                          "scikit-learn (--data-dir holds CIFAR-10's archive)", world.paths)


def test_renamed_checkpoint_is_the_same_store_entry_and_an_old_entry_is_repaired(world, tmp_path):
    from pynqrepro.core.store import ArtifactStore
    from pynqrepro.training.checkpoint import BEST, import_checkpoint

    original = world.paths["F"] / "model_best.pth.tar"
    renamed = tmp_path / "x.pth"
    renamed.write_bytes(original.read_bytes())
    store = ArtifactStore(tmp_path / "store")
    first = import_checkpoint(store, renamed)
    assert import_checkpoint(store, original).path == first.path and first.file(BEST).is_file()
    # an entry of the old layout kept the user's file name: the next import repairs it
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    poisoned = ArtifactStore(tmp_path / "old").get_or_build(
        "checkpoint", {"sha256": digest}, lambda out: (out / "x.pth").write_bytes(original.read_bytes()),
        code="pynqrepro.training.checkpoint")
    repaired = import_checkpoint(ArtifactStore(tmp_path / "old"), original)
    assert repaired.path == poisoned.path and _digest(repaired.file(BEST)) == _digest(original)


def test_over_budget_folding_is_flagged(capsys):
    from pynqrepro.core.boards import get_board
    from pynqrepro.finnflow.cli import flag_over_budget

    board = get_board("pynq-z1")
    over = flag_over_budget(board, {"LUT": 272958, "BRAM_18K": 12, "URAM": 0, "DSP": 300})
    assert over == ["LUT 272958 > 53200", "DSP 300 > 220"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "does not fit pynq-z1 (LUT 272958 > 53200, DSP 300 > 220)" in err[0]
    assert flag_over_budget(board, {"LUT": 100, "BRAM_18K": 1, "URAM": 0, "DSP": 0}) == []
    assert capsys.readouterr().err == ""


def test_report_keeps_foreign_and_corrupt_json_aside(tmp_path, capsys):
    (tmp_path / "notes.json").write_text('{"mine": true}')
    (tmp_path / "broken.json").write_text("[]")
    code, out, err = run_cli(["report", "--reports-dir", str(tmp_path)], capsys)
    assert code == 0 and "index at" in out
    assert len(err) == 1 and err[0].startswith("pynqrepro: warning:") and "notes.json" in err[0] and "broken.json" in err[0]
    assert sorted(p.read_text() for p in tmp_path.glob("*.not-a-report-*")) == ["[]", '{"mine": true}']


def _subprocess(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def cli_process(argv: list[str], cwd: Path) -> tuple[int, str, list[str]]:
    """(exit code, stdout, stderr lines) of ``python -m pynqrepro ARGV`` in a process of its own."""
    done = _subprocess([sys.executable, "-m", "pynqrepro", *argv], cwd)
    return done.returncode, done.stdout, done.stderr.splitlines()


def test_python_m_pynqrepro_is_the_command_line(tmp_path):
    done = _subprocess([sys.executable, "-m", "pynqrepro", "fold"], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["pynqrepro: error: the following arguments are required: --model "
                                        "(see pynqrepro fold --help)"]


def test_run_script_keeps_the_callers_working_directory(tmp_path):
    (tmp_path / "rel").mkdir()
    done = _subprocess([str(REPO / "run"), "pynqrepro", "report", "--reports-dir", "rel"], tmp_path)
    assert done.returncode == 0, done.stderr  # rel/ of the caller: the repository has none
    assert (tmp_path / "rel" / "index.md").is_file()
    done = _subprocess([str(REPO / "run"), "pynqrepro", "report", "--reports-dir", "missing"], tmp_path)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "pynqrepro: error: --reports-dir missing is not a directory: pass the reports directory a pytest run or "
        "`pynqrepro report TABLE` wrote (default: ./reports)"]


PYTEST_CASES = [  # (options, the one line that names the problem)
    (["--scale", "huge"], "error: argument --scale: invalid choice: 'huge' (choose from 'paper', 'smoke')"),
    (["--board", "zedboard"], "error: argument --board: invalid choice: 'zedboard'"),
    (["--executor", "cloud"], "error: argument --executor: invalid choice: 'cloud'"),
    (["--reports-dir", "afile/reports"], "ERROR: --reports-dir"),
    (["--store-dir", "afile/store"], "ERROR: --store-dir"),
    (["--executor", "slurm", "--cluster-config", "missing.toml"], "ERROR: --cluster-config missing.toml does not exist"),
    (["--board-host", "board.local", "--board-key", "missing_key"], "ERROR: SSH key missing_key does not exist"),
    (["--board-host", "pynq board"], "ERROR: board host and user must be plain names"),
]


@pytest.mark.parametrize("options, line", PYTEST_CASES, ids=[" ".join(c[0]) for c in PYTEST_CASES])
def test_bad_pytest_option_is_a_usage_error(pytester, options, line):
    pytester.makefile("", afile="a regular file")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--co", *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [text for text in result.errlines if "error:" in text.lower() and not text.startswith("ERROR: usage:")]
    assert len(errors) == 1 and line in errors[0], result.errlines
    assert not list(pytester.path.glob("reports/*"))  # nothing written


def test_infeasible_budget_and_a_folding_over_the_board_end_to_end(store, tmp_path):
    """On a real HW model (cached in the session's store): an infeasible budget is one line naming
    the smallest that fits; a folding over the board is flagged by estimate and refused by build."""
    from cnv_checkpoints import random_cnv_checkpoint

    from pynqrepro.core.boards import get_board
    from pynqrepro.finnflow.hw_build import hw_model_artifact, load_hw_model
    from pynqrepro.finnflow.foldconfig import folded_dimensions

    artifact = random_cnv_checkpoint(store, 2, 2)
    hw_model = load_hw_model(hw_model_artifact(store, artifact, get_board("pynq-z1")))
    checkpoint, options = str(artifact.file("checkpoint.tar")), ["--store-dir", str(store.root)]
    # each command in its own process, as a user runs it: in-process, an earlier test's torch.onnx
    # logging set-up can reach the captured stderr past the CLI's diversion of third-party output
    code, out, err = cli_process(["fold", "--model", checkpoint, "--lut-ratio", "0.01", "--out", str(tmp_path / "f.json"),
                                  *options], tmp_path)
    assert code == 2 and out == "" and len(err) == 1 and "the smallest fitting budget is" in err[0]
    assert not (tmp_path / "f.json").exists()
    widest = tmp_path / "widest.json"  # every PE/SIMD at its dimension: far beyond a Pynq-Z1
    widest.write_text(json.dumps({"Defaults": {}, **folded_dimensions(hw_model)}))
    code, out, err = cli_process(["estimate", checkpoint, "--folding", str(widest), *options], tmp_path)
    assert code == 0 and len(err) == 1 and err[0].startswith("pynqrepro: warning: this folding does not fit pynq-z1 (LUT")
    assert "OVER BUDGET: LUT" in out
    code, out, err = cli_process(["build", checkpoint, "--folding", str(widest), *options], tmp_path)
    assert code == 2 and len(err) == 1 and "does not fit pynq-z1" in err[0] and "pynqrepro fold" in err[0]
    # the compute-only optimum of the whole device fits by its compute nodes alone, not once FINN's build
    # adds its DWCs, FIFOs and the shell: build judges the whole design, before Vivado starts
    compute_only = tmp_path / "compute-only.json"
    code, out, err = cli_process(["fold", "--model", checkpoint, "--lut-ratio", "1", "--ram-style-choice", "--compute-only",
                              "--out", str(compute_only), *options], tmp_path)
    assert code == 0 and "compute nodes only" in out
    code, out, err = cli_process(["estimate", checkpoint, "--folding", str(compute_only), "--json", *options], tmp_path)
    estimate = json.loads(out)
    assert estimate["totals"]["lut"] <= 53_200 < estimate["whole_design"]["totals"]["LUT"]
    code, out, err = cli_process(["build", checkpoint, "--folding", str(compute_only), *options], tmp_path)
    assert code == 2 and len(err) == 1 and "does not fit pynq-z1 (LUT" in err[0] and "whole design" in err[0]


def test_corrupt_report_in_reports_dir_does_not_break_a_pytest_session(pytester):
    """reports/<table>.json that is ``[]`` (or foreign) is kept aside when the session merges its rows."""
    pytester.makepyfile(test_rows='def test_rows(results):\n    results.table("demo", title="Demo").add({"x": 1})\n')
    (pytester.path / "reports").mkdir()
    (pytester.path / "reports" / "demo.json").write_text("[]")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--store-dir", str(pytester.path / "store"))
    assert result.ret == 0, result.errlines
    assert json.loads((pytester.path / "reports" / "demo.json").read_text())["rows"][0]["values"] == {"x": 1}
    assert [p.read_text() for p in (pytester.path / "reports").glob("demo.json.not-a-report-*")] == ["[]"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_respect_the_umask(tmp_path, umask):
    """Folding JSONs, reports and checkpoints get the mode ``open`` gives (0666 less the umask), as
    ``touch`` does here: not mkstemp's 0600, which hides them from the group."""
    import os

    import torch

    from pynqrepro.core.atomic import atomic_write_json, atomic_write_text
    from pynqrepro.training.checkpoint import save_checkpoint

    old = os.umask(umask)
    try:
        (tmp_path / "touched").touch()  # the oracle: what the OS gives an ordinary new file
        atomic_write_json(tmp_path / "folding.json", {"Defaults": {}})
        atomic_write_text(tmp_path / "report.md", "# report\n")
        save_checkpoint(tmp_path / "checkpoint.tar", {"state_dict": {"w": torch.zeros(1)}})
    finally:
        os.umask(old)
    expected = (tmp_path / "touched").stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    assert {name: (tmp_path / name).stat().st_mode & 0o777 for name in ("folding.json", "report.md", "checkpoint.tar")} \
        == dict.fromkeys(("folding.json", "report.md", "checkpoint.tar"), expected)


def test_pretrained_checkpoint_of_other_bit_widths_is_noted(tmp_path, capsys):
    """A pynqrepro checkpoint of 1W1A given to a 2W2A training loads (one state_dict layout for all
    bit widths), with one warning line saying so; one of the same bit widths gives none."""
    from pynqrepro.training.checkpoint import load_pretrained, save_checkpoint
    from pynqrepro.training.config import TrainConfig

    small = {"dataset": "digits", "conv_channels": (8,) * 6, "fc_features": (8, 8)}
    for bits in ((1, 1), (2, 2)):
        config = TrainConfig(*bits, **small)
        save_checkpoint(tmp_path / f"{bits[0]}w.tar", {"state_dict": config.build_model().state_dict(),
                                                       "config": config.to_dict()})
    model = TrainConfig(2, 2, **small).build_model()
    load_pretrained(model, str(tmp_path / "1w.tar"))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("pynqrepro: warning: --pretrained") and "CNV 1W1A" in err[0]
    load_pretrained(model, str(tmp_path / "2w.tar"))
    assert capsys.readouterr().err == ""


def test_thousands_of_names_are_not_echoed_whole():
    """3,000 unknown --pruning nodes (or folding nodes): the line names a few and counts the rest."""
    from types import SimpleNamespace as Node

    from pynqrepro.core.errors import UserError
    from pynqrepro.folding.space import _pruning_by_node

    nodes = [Node(name=f"MVAU_hls_{i}", op_type="MVAU_hls") for i in range(9)]
    with pytest.raises(UserError) as raised:
        _pruning_by_node(nodes, tuple((f"MVAU_hls_{i}", 0.5) for i in range(3000)))
    line = str(raised.value)
    assert "\n" not in line and len(line) < 400 and "and 2,986 more" in line and "MVAU_hls_0" in line
