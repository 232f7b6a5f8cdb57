"""``pynqrepro deploy``: a FINN deployment package on a PYNQ board over SSH; FINN's driver
classifies the test set there and measures throughput and latency."""

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path


def _deploy(args) -> None:

    from pynqrepro.board.deploy import run_on_board
    from pynqrepro.board.remote import BoardLogin
    from pynqrepro.core.errors import UserError
    from pynqrepro.core.scale import get_scale
    from pynqrepro.data.splits import uint8_test_set

    login = BoardLogin(args.board_host, args.board_user, args.board_key)
    images, labels = uint8_test_set(get_scale(args.scale).dataset, args.data_dir)
    count = len(labels) if args.images is None else args.images
    if not 0 < count <= len(labels):
        raise UserError(f"--images {count} is outside 1..{len(labels)} (the {args.scale} test set)")
    images, labels = images[:count], labels[:count]
    with tempfile.TemporaryDirectory(prefix="pynqrepro-deploy-") as work:
        result = run_on_board(login, args.deploy_dir, images, labels, Path(work),
                              args.throughput_batch, args.repeats)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(f"on board: top-1 {result.top1:.2f}% of {result.num_samples} test images, "
              f"{result.fps:.1f} fps at batch {result.batch_size}, latency {result.latency_ms:.3f} ms, "
              f"fclk {result.fclk_mhz:g} MHz")


def register(subparsers) -> None:
    parser = subparsers.add_parser("deploy", help="run a FINN deployment package on a PYNQ board over SSH: "
                                                  "on-board accuracy, fps, latency")
    parser.add_argument("deploy_dir", type=Path, help="the deploy/ folder printed by pynqrepro build")
    parser.add_argument("--board-host", default=os.environ.get("PYNQ_BOARD_HOST"),
                        help="board address (or $PYNQ_BOARD_HOST)")
    parser.add_argument("--board-user", default=os.environ.get("PYNQ_BOARD_USER", "xilinx"), help="SSH user")
    parser.add_argument("--board-key", default=os.environ.get("PYNQ_BOARD_KEY"), help="SSH private key")
    parser.add_argument("--scale", default="smoke", help="test set: smoke (digits) or paper (CIFAR-10)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PYNQREPRO_DATA", "data")),
                        help="datasets (cifar-10-python.tar.gz)")
    parser.add_argument("--images", type=int, default=None, help="first N test images (default: all)")
    parser.add_argument("--throughput-batch", type=int, default=1000, help="batch of the fps measurement")
    parser.add_argument("--repeats", type=int, default=5, help="throughput measurements per batch size")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=_deploy)
