"""``pynqrepro build``: FINN's full build (bitfile, driver settings, deployment package) of a
checkpoint for a board at a folding, with post-synthesis utilisation and timing (needs Vivado).
``pynqrepro calibrate``: add finished FINN builds' reports to the store's calibration set and refit
the empirical per-node model budgets are judged on."""

import json
from pathlib import Path

from pynqrepro.core.errors import UserError
from pynqrepro.core.options import add_board_option, add_store_option, options_given

from pynqrepro.finnflow.cli import add_checkpoint_arguments, checkpoint_hw_model


def _build(args) -> None:
    from pynqrepro.finnflow.estimate import estimate
    from pynqrepro.finnflow.foldconfig import apply_folding
    from pynqrepro.synthesis.vivado_build import finished_build
    from pynqrepro.synthesis.vivado_reports import estimate_ratios

    board, store, hw_artifact, hw_model, folding = checkpoint_hw_model(args)
    clock_ns = args.clock_ns or board.clock_ns
    folded = apply_folding(hw_model, folding)
    est = estimate(folded, board.part, clock_ns).totals
    result = finished_build(store, hw_artifact, board, folding, clock_ns)
    ratios = estimate_ratios(est["lut"], est["bram18"], est["dsp"], result.ooc)
    if args.json:
        print(json.dumps({"build_dir": str(result.build_dir), "deploy_dir": str(result.deploy_dir),
                          "ooc": vars(result.ooc), "system": vars(result.system), "estimate": est,
                          "estimate/ooc": ratios, "fifo_depths": result.fifo_depths}, indent=2))
        return
    for label, res in (("out of context", result.ooc), ("whole design", result.system)):
        print(f"{label}: LUT {res.lut:.0f}, FF {res.ff:.0f}, BRAM36 {res.bram36:g}, DSP {res.dsp:.0f}, "
              f"WNS {res.wns_ns:.3f} ns, fmax {res.fmax_mhz:.1f} MHz")
    print(f"FINN estimate: LUT {est['lut']:.0f}, BRAM18 {est['bram18']:.0f}, DSP {est['dsp']:.0f}; "
          + ", ".join(f"{k} {v}" for k, v in ratios.items()))
    print(f"built with {result.fifo_depths}")
    print(f"deployment package: {result.deploy_dir}  (next: pynqrepro deploy {result.deploy_dir})")


def _calibrate(args) -> None:
    import tempfile

    from tabulate import tabulate

    from pynqrepro.core.atomic import check_writable
    from pynqrepro.core.boards import get_board
    from pynqrepro.synthesis import calibrate
    from pynqrepro.synthesis.vivado_reports import read_finn_build

    board = get_board(args.board)
    if not args.build_dirs and options_given(args, args.parser, {"board"}):
        raise UserError(f"--board names the board of the BUILD_DIRs being added, and none is given: pass the "
                        f"finished builds' folders, or drop --board {args.board}")
    for build_dir in args.build_dirs:  # every folder read before any enters the set
        read_finn_build(build_dir)
    if args.write_shipped:
        if args.build_dirs:
            raise UserError("--write-shipped refits the package's node_model.json on the public builds only: "
                            "drop the BUILD_DIRs (or drop --write-shipped to add them to the store's set)")
        from pynqrepro.core.store import ArtifactStore

        store = ArtifactStore(check_writable(args.store_dir, "--store-dir", directory=True))
        model, held_out, _ = calibrate.regenerate_shipped_model(store)  # the CNV anchors' HW models: in the store
        target = calibrate.NODE_MODEL_FILE
    else:
        root = check_writable(args.store_dir, "--store-dir", directory=True)
        for build_dir in args.build_dirs:
            print(f"{build_dir}: calibration entry {calibrate.add_build(root, build_dir, board.name)}")
        with tempfile.TemporaryDirectory() as tmp:
            model, held_out, _ = calibrate.calibrated_model(root, Path(tmp))
        target = calibrate.store_model_path(root)
        if args.build_dirs:
            calibrate.atomic_write_json(target, model.to_json())
    print(tabulate(calibrate.held_out_rows(held_out), headers="keys"))
    print(f"{len(model.op_types)} op types fitted; whole-design upper bound {calibrate.describe_bound(model.bound)}"
          + (f"; written to {target}" if args.build_dirs or args.write_shipped else ""))


def register(subparsers) -> None:
    parser = subparsers.add_parser("build", help="FINN's full Vivado build of a checkpoint: bitfile, "
                                                 "driver, deployment package, synthesis reports",
                                   description=__doc__.replace("``", ""))
    add_checkpoint_arguments(parser)
    parser.set_defaults(func=_build)
    calibrate = subparsers.add_parser(
        "calibrate", help="add finished FINN builds' reports to the calibration set and refit the cost model",
        description="Read each finished FINN build's output folder (report/post_synth_resources.json or "
                    "report/ooc_synth_and_timing.json, report/estimate_layer_resources.json, final_hw_config.json), "
                    "add it to the store's calibration set and refit the empirical per-node model and its "
                    "upper bound, which `pynqrepro fold` then budgets with. A malformed or foreign folder: one "
                    "line, the set unchanged.")
    calibrate.add_argument("build_dirs", nargs="*", type=Path, metavar="BUILD_DIR",
                           help="a finished FINN build's output_dir (default: none, only print the "
                                "leave-one-build-out table of the set)")
    calibrate.add_argument("--write-shipped", action="store_true",
                           help="refit the package's node_model.json on the public builds and state its "
                                "bound on the published CNV syntheses, whose HW models go into --store-dir "
                                "(developers; default: off)")
    add_store_option(calibrate.add_argument)
    add_board_option(calibrate.add_argument)
    calibrate.set_defaults(func=_calibrate, parser=calibrate)
