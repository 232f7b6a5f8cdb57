"""FINN's deployment package as the synthesis stage's build writes it (``step_deployment_package``),
and the check that a folder is one.

finn-plus 1.6 ships no driver code in the package: ``deploy/bitfile/finn-accel.{bit,hwh}`` and
``deploy/driver/settings.json`` (driver class, I/O shapes) are read by the ``finn-plus-driver``
package installed on the board.
"""

import json
from pathlib import Path

from pynqrepro.core.errors import UserError

BITFILE = "bitfile/finn-accel.bit"
HWH = "bitfile/finn-accel.hwh"
SETTINGS = "driver/settings.json"
REQUIRED = (BITFILE, HWH, SETTINGS)


def check_package(deploy_dir: Path) -> dict:
    """The driver settings of a FINN deployment package; UserError naming what is missing."""
    deploy_dir = Path(deploy_dir)
    missing = [name for name in REQUIRED if not (deploy_dir / name).is_file()]
    if missing:
        raise UserError(f"{deploy_dir} is not a FINN deployment package (missing {', '.join(missing)}): "
                        f"pass the deploy/ folder of a finished `pynqrepro build`")
    try:
        info = json.loads((deploy_dir / SETTINGS).read_text())["driver_information"]
        info["driver_type"], info["io_shape_dict"]["ishape_normal"][0]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UserError(f"{deploy_dir / SETTINGS} is not FINN PYNQ driver settings ({exc!r}): "
                        f"rebuild with the pynq_driver output") from None
    if info.get("platform") != "zynq-iodma":
        raise UserError(f"the package targets platform {info.get('platform')!r}, not a PYNQ (zynq-iodma) board: "
                        f"build it for pynq-z1 or ultra96")
    return info
