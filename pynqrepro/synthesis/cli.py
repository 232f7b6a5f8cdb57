"""``pynqrepro build``: FINN's full build (bitfile, driver settings, deployment package) of a
checkpoint for a board at a folding, with post-synthesis utilisation and timing (needs Vivado)."""

import json

from pynqrepro.finnflow.cli import add_checkpoint_arguments, checkpoint_hw_model


def _build(args) -> None:
    from pynqrepro.finnflow.estimate import estimate
    from pynqrepro.finnflow.foldconfig import apply_folding
    from pynqrepro.synthesis.build import finished_build
    from pynqrepro.synthesis.reports import estimate_ratios

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


def register(subparsers) -> None:
    parser = subparsers.add_parser("build", help="FINN's full Vivado build of a checkpoint: bitfile, "
                                                 "driver, deployment package, synthesis reports",
                                   description=__doc__.replace("``", ""))
    add_checkpoint_arguments(parser)
    parser.set_defaults(func=_build)
