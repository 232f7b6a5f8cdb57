"""Runs ON the PYNQ board, copied there by pynqrepro's board stage (imports only numpy and the
board's ``finn-plus-driver``, never pynqrepro).

FINN's driver class named in ``driver/settings.json`` loads the bitfile once; FINN's validation
loop (``run_validation``) classifies the staged test set and writes ``report_dma_validate.json``;
FINN's ``throughput_test`` runs ``--repeats`` times at batch 1 (latency) and at
``--throughput-batch`` (fps), written to ``report_throughput_test.json`` as {batch: [results]}.
"""

import argparse
import json
import os

import numpy as np


def load_driver(package_dir, batch_size):
    """The accelerator as ``finn-plus-driver``'s CLI instantiates it (settings.json kwargs)."""
    from finn_plus_driver import get_driver_class

    settings = os.path.join(package_dir, "driver", "settings.json")
    with open(settings, encoding="utf-8") as f:
        info = json.load(f)["driver_information"]
    driver_dir = os.path.dirname(settings)
    info.setdefault("runtime_weight_dir", os.path.join(driver_dir, "runtime_weights"))
    info.setdefault("mlo_weight_dir", os.path.join(driver_dir, "mlo_weights"))
    info["batch_size"] = batch_size
    bitfile = os.path.join(package_dir, "bitfile", "finn-accel.bit")
    return get_driver_class(info["driver_type"])(bitfile, **info)


def main(argv=None):
    from finn_plus_driver.validate.common import ArrayDataset, run_validation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--report-dir", default="report")
    parser.add_argument("--validate-batch", type=int, required=True)
    parser.add_argument("--throughput-batch", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    args = parser.parse_args(argv)

    testset = np.load(os.path.join(args.package_dir, "testset.npz"))
    accel = load_driver(args.package_dir, args.validate_batch)
    run_validation(accel, ArrayDataset(testset["images"], testset["labels"]), args.report_dir)
    throughput = {}
    for batch in (1, args.throughput_batch):
        accel.batch_size = batch
        throughput[str(batch)] = [accel.throughput_test() for _ in range(args.repeats)]
    with open(os.path.join(args.report_dir, "report_throughput_test.json"), "w") as f:
        json.dump(throughput, f, indent=2, default=float)


if __name__ == "__main__":
    main()
