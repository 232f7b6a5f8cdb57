"""``pynqrepro deploy``: a FINN deployment package on a PYNQ board over SSH; FINN's driver
classifies the test set there and measures throughput and latency."""

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from pynqrepro.board.measurements import REPEATS, THROUGHPUT_BATCH
from pynqrepro.core.options import add_board_login_options, add_data_option, add_scale_option, positive_int


def _deploy(args) -> None:
    from pynqrepro.board.deploy import run_on_board
    from pynqrepro.board.remote import BoardLogin
    from pynqrepro.core.errors import UserError
    from pynqrepro.core.scale import get_scale
    from pynqrepro.data.splits import uint8_test_set
    from pynqrepro.synthesis.deployment import check_package

    login = BoardLogin(args.board_host, args.board_user, args.board_key)
    login.check_key()
    check_package(args.deploy_dir)
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
                                                  "on-board accuracy, fps, latency",
                                   description=__doc__.replace("``", ""))
    parser.add_argument("deploy_dir", type=Path, help="the deploy/ folder printed by pynqrepro build (required)")
    add_board_login_options(parser.add_argument)
    add_scale_option(parser.add_argument, help="the test set: the scale's dataset")
    add_data_option(parser.add_argument)
    parser.add_argument("--images", type=positive_int, default=None, help="first N test images (default: all)")
    parser.add_argument("--throughput-batch", type=positive_int, default=THROUGHPUT_BATCH,
                        help="batch of the fps measurement (default: %(default)s)")
    parser.add_argument("--repeats", type=positive_int, default=REPEATS,
                        help="throughput measurements per batch size (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (default: one line)")
    parser.set_defaults(func=_deploy)
