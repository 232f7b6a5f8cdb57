#!/usr/bin/env bash
# One short GPU check of the trainer's CUDA path (issue 11, training speed on one device), for a
# borrowed GPU host with a CUDA torch and no network: Brevitas and its two pure-Python requirements
# come as wheels in .whl/ (not committed; see the download command below). Under 4 minutes.
#
#   benchmarks/gpu_check.sh                # on the GPU host; the log goes to $OUT/gpu_check.log
#   benchmarks/gpu_check.sh --cpu-dry-run  # here: every step on the CPU, tiny, to check the script
#
# Steps: install the wheels into /tmp/site; the GPU and versions; the GPU tests (batches built on
# the GPU equal the CPU path's; the trainer takes the GPU path) beside their CPU equivalents;
# bench_training.py on CUDA at batch 64, the paper recipe's 128, and 256 (ours vs brevitas_examples'
# Trainer, images/s, ratio); a smoke training on digits through the trainer's GPU path and through
# its DataLoader path; the determinism check (deterministic mode: a run resumed after epoch 1 ends
# with the uninterrupted run's weights; images/s of both modes); last, bench_training.py with torch.compile in the time left of the 230 s
# budget (reported, not failed, if it does not finish). Every step has its own time limit; a failed
# step is named at the end and the exit status is 1. PYTHON names the interpreter (default: python3;
# in the dry run .venv/bin/python where there is one).
#
# The wheels (Python 3.12, x86_64), downloaded where pip reaches PyPI:
#   for w in brevitas==0.13.4 dependencies==2.0.1 unfoldNd==0.2.3; do python3 -m pip download --no-deps \
#     --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl "$w"; done
# brevitas's other requirements (torch, numpy, packaging, setuptools, sympy, typing-extensions), onnx
# (brevitas_examples' trainer imports brevitas.export) and pynqrepro's imports on this path
# (scikit-learn, scipy, pandas, tqdm, tabulate, filelock, psutil, pytest) are in the GPU host's image.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
[[ ${1:-} == --cpu-dry-run ]] && DRY=1
SITE=/tmp/site  # where the wheels go (a fresh directory of its own in the dry run)
SLOW=1  # time limits' factor: a shared CPU runs the dry run's steps many times slower
((DRY)) && SITE=$(mktemp -d) && SLOW=8 && trap 'rm -rf "$SITE"' EXIT
((DRY)) && [[ -x .venv/bin/python ]] && : "${PYTHON:=.venv/bin/python}"  # here: the project's environment
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
BUDGET=230  # seconds for all steps: the check must end within 4 minutes
export PYTHONUNBUFFERED=1
FAILED=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record a failure
  local name=$1 limit=$(($2 * SLOW)) rc
  shift 2
  echo "=== $name (limit ${limit}s) $(date +%T)"
  timeout "$limit" "$@"
  rc=$?
  if ((rc == 124)); then echo "!!! $name: stopped at its ${limit}s limit"; FAILED+=("$name (time limit)")
  elif ((rc != 0)); then echo "!!! $name: FAILED (exit $rc)"; FAILED+=("$name (exit $rc)"); fi
  return 0
}

main() {
ls .whl/brevitas-*.whl >/dev/null 2>&1 || { echo "!!! no .whl/brevitas-*.whl: download the wheels (see this script's header) and carry .whl"; return 1; }
$PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
  || { echo "!!! installing .whl/*.whl into $SITE failed"; return 1; }
export PYTHONPATH=$SITE:$PWD
# pytest loads pynqrepro's plugin by name and no installed plugin (the host's image holds many): the same
# plugins here and there, whether or not pynqrepro is installed.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1

if ((DRY)); then
  DEVICE=cpu; STEPS=(--steps 1 --repeats 1); EPOCHS=1
else
  DEVICE=cuda; STEPS=(--steps 40 --repeats 5); EPOCHS=2
  nvidia-smi -L || { echo "!!! nvidia-smi failed: no GPU here"; return 1; }
fi
# The gpu-marked tests (skipped with their reason on a CPU) and their CPU equivalents, which run on both.
TESTS=(tests/test_training.py::test_on_cuda_the_batches_are_built_on_the_gpu_and_equal_the_cpu_paths
       tests/test_training.py::test_the_trainer_takes_the_gpu_path_on_cuda_and_where_asked
       tests/test_training.py::test_resident_batches_are_the_dataloaders_batches
       tests/test_training.py::test_gpu_path_data_trains_to_the_same_weights_as_the_dataloader
       tests/test_data.py::test_batch_augmentation_on_the_sets_device_equals_item_by_item)
$PYTHON - "$DEVICE" <<'PY' || { echo "!!! torch cannot use $DEVICE here"; return 1; }
import sys, torch, brevitas
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}, brevitas {brevitas.__version__} ({brevitas.__file__})")
if sys.argv[1] == "cuda":
    if not torch.cuda.is_available():
        sys.exit("torch sees no CUDA GPU")
    print(f"GPU: {torch.cuda.get_device_name(0)}")
PY

step "GPU tests" 45 $PYTHON -m pytest -c pyproject.toml -p pynqrepro.pytest_plugin -p no:cacheprovider -q -rs "${TESTS[@]}"
step "bench batch 64" 30 $PYTHON benchmarks/bench_training.py --device $DEVICE --batch 64 "${STEPS[@]}"
step "bench batch 128" 30 $PYTHON benchmarks/bench_training.py --device $DEVICE --batch 128 "${STEPS[@]}"
((DRY)) || step "bench batch 256" 30 $PYTHON benchmarks/bench_training.py --device $DEVICE --batch 256 "${STEPS[@]}"
step "smoke training" 35 $PYTHON - "$DEVICE" "$EPOCHS" <<'PY'
"""The smoke recipe (digits, 2w2a) through the trainer: its GPU path (data resident, batches built on
the device) and its DataLoader path, crop augmentation on; images/s and accuracies of each."""
import dataclasses, sys, tempfile, torch
from pynqrepro.core.scale import get_scale
from pynqrepro.training.recipes import recipe
from pynqrepro.training.trainer import RunOptions, train

device, epochs = sys.argv[1], int(sys.argv[2])
cfg = dataclasses.replace(recipe(get_scale("smoke"), 2, 2), epochs=epochs, lr_step=1, augment="crop")
results = {}
for resident in (True, False):
    with tempfile.TemporaryDirectory() as out:
        r = train(cfg, RunOptions(experiments=out, device=device, progress=False, resident_data=resident))
    results[resident] = r
    print(f"smoke 2w2a on {device}, {epochs} epochs, batch {cfg.batch_size}, "
          f"{'GPU path (resident data)' if resident else 'DataLoader path'}: {r.images_per_s:.0f} images/s, "
          f"val {r.val_acc:.2f}% test {r.test_acc:.2f}%")
print(f"smoke ratio GPU path / DataLoader path: {results[True].images_per_s / results[False].images_per_s:.2f}")
PY
step "determinism" 60 $PYTHON - "$DEVICE" <<'PY'
"""Issue 18 item 6: in deterministic mode a training resumed after its first epoch ends with the
uninterrupted run's weights (bit for bit); the default (fast) mode is shown beside it, with the
images/s of both (the mode's cost). Fails only if the deterministic mode's weights differ."""
import dataclasses, sys, tempfile, torch
from pathlib import Path
from pynqrepro.core.scale import get_scale
from pynqrepro.training.recipes import recipe
from pynqrepro.training.trainer import RunOptions, train

device = sys.argv[1]
base = dataclasses.replace(recipe(get_scale("smoke"), 2, 2), epochs=2, lr_step=1, augment="crop")


def weights(run_dir):
    return torch.load(Path(run_dir) / "checkpoints" / "checkpoint.tar", map_location="cpu")["state_dict"]


equal = {}
for deterministic in (True, False):
    cfg = dataclasses.replace(base, deterministic=deterministic)
    with tempfile.TemporaryDirectory() as whole, tempfile.TemporaryDirectory() as parts:
        full = train(cfg, RunOptions(experiments=whole, device=device, progress=False))
        train(dataclasses.replace(cfg, epochs=1), RunOptions(experiments=parts, device=device, progress=False))
        last = Path(parts) / cfg.name / "checkpoints" / "checkpoint.tar"
        train(cfg, RunOptions(experiments=parts, device=device, progress=False, resume=last,
                              run_dir=Path(parts) / cfg.name))
        a, b = weights(Path(whole) / cfg.name), weights(Path(parts) / cfg.name)
        equal[deterministic] = all(torch.equal(a[k], b[k]) for k in a)
        print(f"{'deterministic' if deterministic else 'default (fast)'} mode on {device}: resumed == uninterrupted "
              f"weights: {equal[deterministic]}; {full.images_per_s:.0f} images/s")
sys.exit(0 if equal[True] else "deterministic mode: the resumed run's weights differ from the uninterrupted run's")
PY
local left=$((BUDGET - SECONDS))
if ((DRY)); then
  echo "=== torch.compile bench: not run in the dry run (minutes of compiling on a CPU)"
elif ((left < 20)); then
  echo "=== torch.compile bench: not run, ${left}s left of the ${BUDGET}s budget"
else
  echo "=== torch.compile bench (the ${left}s left; a stop at that limit means compiling takes longer here)"
  timeout "$left" $PYTHON benchmarks/bench_training.py --device $DEVICE --batch 128 "${STEPS[@]}" --compile \
    || echo "--- torch.compile bench did not finish (exit $?): not measured"
fi

if ((${#FAILED[@]})); then
  echo "!!! gpu_check FAILED steps: ${FAILED[*]}"
  return 1
fi
echo "=== gpu_check passed in ${SECONDS}s $(date +%T); log: $LOG"
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
