"""FINN driver reports from the board as plain data.

``report_dma_validate.json`` is written by finn-plus-driver's ``run_validation`` (keys
``top-1_accuracy`` in %, ``num_samples``, ...); ``report_throughput_test.json`` by on_board.py:
{batch size: [FINN ``throughput_test()`` dicts]} with ``runtime[ms]``, ``throughput[images/s]``,
``fclk[mhz]`` and ``batch_size``.
"""

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core.errors import UserError

THROUGHPUT_BATCH = 1000  # images per throughput measurement
REPEATS = 5  # throughput measurements per batch size (their median is reported)

VALIDATE_REPORT = "report_dma_validate.json"
THROUGHPUT_REPORT = "report_throughput_test.json"


@dataclass(frozen=True)
class BoardResult:
    top1: float  # % of the test set, FINN's first validation pass
    num_samples: int
    fps: float  # median over repeats at the throughput batch
    latency_ms: float  # median accelerator runtime of one image (batch 1)
    fclk_mhz: float
    batch_size: int  # of the fps measurement


def parse_validate_report(data: dict) -> tuple[float, int]:
    """(top-1 %, number of test images) of FINN's validation report."""
    try:
        return float(data["top-1_accuracy"]), int(data["num_samples"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"not a FINN validation report (no {exc}): expected {VALIDATE_REPORT} "
                        f"from finn-plus-driver's run_validation") from None


def parse_throughput_report(data: dict) -> tuple[float, float, float, int]:
    """(fps, latency ms, fclk MHz, batch) from {batch: [throughput_test() dicts]}: fps at the
    largest batch, latency = the accelerator's runtime at batch 1, medians over repeats."""
    try:
        runs = {int(batch): list(results) for batch, results in data.items()}
        largest = max(runs)
        fps = statistics.median(float(r["throughput[images/s]"]) for r in runs[largest])
        latency = statistics.median(float(r["runtime[ms]"]) for r in runs[1])
        fclk = float(runs[largest][0]["fclk[mhz]"])
    except (KeyError, TypeError, ValueError, AttributeError, statistics.StatisticsError) as exc:
        raise UserError(f"not a throughput report of on_board.py ({exc!r}): expected {{batch: [FINN "
                        f"throughput_test() results]}} with batch 1 included") from None
    return fps, latency, fclk, largest


def read_board_reports(report_dir: Path) -> BoardResult:
    report_dir = Path(report_dir)
    try:
        validate = json.loads((report_dir / VALIDATE_REPORT).read_text())
        throughput = json.loads((report_dir / THROUGHPUT_REPORT).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the board's reports in {report_dir} ({exc}): "
                        f"the driver run did not finish, see its output above") from None
    top1, num_samples = parse_validate_report(validate)
    fps, latency, fclk, batch = parse_throughput_report(throughput)
    return BoardResult(top1, num_samples, fps, latency, fclk, batch)
