"""``pynqrepro build``: FINN's full build (bitfile, driver settings, deployment package) of a
checkpoint for a board at a folding, with post-synthesis utilisation and timing (needs Vivado)."""

import json

from pynqrepro.finnflow.cli import add_checkpoint_arguments


def _build(args) -> None:
    from pynqrepro.core.boards import get_board
    from pynqrepro.core.store import ArtifactStore
    from pynqrepro.finnflow.build import hw_model_artifact, load_hw_model
    from pynqrepro.finnflow.estimate import estimate
    from pynqrepro.finnflow.foldconfig import apply_folding, resolve_folding
    from pynqrepro.synthesis.build import finished_build
    from pynqrepro.synthesis.reports import estimate_ratios
    from pynqrepro.training.checkpoint import import_checkpoint

    board = get_board(args.board)
    clock_ns = args.clock_ns or board.clock_ns
    store = ArtifactStore(args.store_dir)
    hw_artifact = hw_model_artifact(store, import_checkpoint(store, args.checkpoint), board)
    hw_model = load_hw_model(hw_artifact)
    folding = resolve_folding(args.folding, hw_model)
    result = finished_build(store, hw_artifact, board, folding, clock_ns)
    est = estimate(apply_folding(hw_model, folding), board.part, clock_ns).totals
    ratios = estimate_ratios(est["lut"], est["bram18"], est["dsp"], result.ooc)
    if args.json:
        print(json.dumps({"build_dir": str(result.build_dir), "deploy_dir": str(result.deploy_dir),
                          "ooc": vars(result.ooc), "system": vars(result.system), "estimate": est,
                          "estimate/ooc": ratios}, indent=2))
        return
    for label, res in (("out of context", result.ooc), ("whole design", result.system)):
        print(f"{label}: LUT {res.lut:.0f}, FF {res.ff:.0f}, BRAM36 {res.bram36:g}, DSP {res.dsp:.0f}, "
              f"WNS {res.wns_ns:.3f} ns, fmax {res.fmax_mhz:.1f} MHz")
    print(f"FINN estimate: LUT {est['lut']:.0f}, BRAM18 {est['bram18']:.0f}, DSP {est['dsp']:.0f}; "
          + ", ".join(f"{k} {v}" for k, v in ratios.items()))
    print(f"deployment package: {result.deploy_dir}  (next: pynqrepro deploy {result.deploy_dir})")


def register(subparsers) -> None:
    parser = subparsers.add_parser("build", help="FINN's full Vivado build of a checkpoint: bitfile, "
                                                 "driver, deployment package, synthesis reports")
    add_checkpoint_arguments(parser)
    parser.set_defaults(func=_build)
