"""Board stage without a board: package layout, the exact ssh/scp commands, FINN driver report
parsing, the 0.1-point flag, the on-board runner against a stand-in driver, and that the login
never reaches a recorded row."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pynqrepro.board import remote
from pynqrepro.board.compare import accuracy_flag, hw_graph_accuracy, hw_graph_classes
from pynqrepro.board.deploy import package_name, run_on_board
from pynqrepro.board.package import (
    RUNNER,
    TESTSET,
    stage_package,
    to_accelerator_layout,
    validation_batch,
)
from pynqrepro.board.measurements import (
    BoardResult,
    parse_throughput_report,
    parse_validate_report,
    read_board_reports,
)
from pynqrepro.core.errors import UserError
from pynqrepro.study.board import board_row
from pynqrepro.synthesis.deployment import check_package

LOGIN = remote.BoardLogin("pynq-lab-17.example", "alice", "/home/alice/.ssh/pynq_ed25519")
SETTINGS = {"driver_information": {
    "driver_type": "FINNDMAOverlay", "platform": "zynq-iodma", "fclk_mhz": 100.0, "external_weights": False,
    "runtime_weights": False,
    "io_shape_dict": {"idt": ["DataType['UINT8']"], "odt": ["DataType['UINT8']"],
                      "ishape_normal": [[1, 32, 32, 3]], "oshape_normal": [[1, 1]],
                      "ishape_folded": [[1, 32, 32, 1, 3]], "oshape_folded": [[1, 1, 1]],
                      "ishape_packed": [[1, 32, 32, 1, 3]], "oshape_packed": [[1, 1, 1]],
                      "idma_names": ["idma0"], "odma_names": ["odma0"], "num_inputs": 1, "num_outputs": 1}},
    "experiment_information": {}}
# finn-plus-driver's run_validation report (validate/common.py _build_report), one pass
VALIDATE = {"top-1_accuracy": 84.19, "num_samples": 10000, "num_passes": 1, "num_passes_requested": 1,
            "top-1_accuracy_min": 84.19, "top-1_accuracy_max": 84.19, "top-1_accuracy_per_pass": [84.19],
            "num_prediction_mismatches": 0, "num_mismatches_reproduced": 0, "mismatches": []}


def _throughput(runtime_ms, batch):  # the keys of FINNDMAOverlay.throughput_test()
    return {"runtime[ms]": runtime_ms, "throughput[images/s]": batch / runtime_ms * 1000,
            "DRAM_in_bandwidth[MB/s]": 3.1, "DRAM_out_bandwidth[MB/s]": 0.001, "fclk[mhz]": 100.0,
            "batch_size": batch, "fold_input[ms]": 0.01, "pack_input[ms]": 0.2,
            "copy_input_data_to_device[ms]": 0.3, "copy_output_data_from_device[ms]": 0.01,
            "unpack_output[ms]": 0.05, "unfold_output[ms]": 0.01}


THROUGHPUT = {"1": [_throughput(t, 1) for t in (0.52, 0.50, 0.61)],
              "1000": [_throughput(t, 1000) for t in (330.0, 328.0, 329.0)]}


def make_package(root):
    (root / "bitfile").mkdir(parents=True)
    (root / "driver").mkdir()
    (root / "bitfile" / "finn-accel.bit").write_bytes(b"\x00bitstream")
    (root / "bitfile" / "finn-accel.hwh").write_text("<hwh/>")
    (root / "driver" / "settings.json").write_text(json.dumps(SETTINGS))
    return root


def digits(n=8):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def test_package_layout(tmp_path):
    info = check_package(make_package(tmp_path / "deploy"))
    assert info["io_shape_dict"]["ishape_normal"][0] == [1, 32, 32, 3]
    (tmp_path / "deploy" / "bitfile" / "finn-accel.hwh").unlink()
    with pytest.raises(UserError, match="missing bitfile/finn-accel.hwh"):
        check_package(tmp_path / "deploy")


def test_package_for_alveo_or_without_settings_is_user_error(tmp_path):
    deploy = make_package(tmp_path / "deploy")
    alveo = json.loads(json.dumps(SETTINGS))
    alveo["driver_information"]["platform"] = "alveo"
    (deploy / "driver" / "settings.json").write_text(json.dumps(alveo))
    with pytest.raises(UserError, match="zynq-iodma"):
        check_package(deploy)
    (deploy / "driver" / "settings.json").write_text("{}")
    with pytest.raises(UserError, match="pynq_driver"):
        check_package(deploy)


def test_accelerator_layout_is_nhwc():
    images, _ = digits(2)
    nhwc = to_accelerator_layout(images, [1, 32, 32, 3])
    assert nhwc.shape == (2, 32, 32, 3) and nhwc[1, 4, 7, 2] == images[1, 2, 4, 7]
    assert to_accelerator_layout(images, [1, 3, 32, 32]) is images
    with pytest.raises(UserError, match="accelerator takes"):
        to_accelerator_layout(images, [1, 28, 28, 1])
    with pytest.raises(UserError, match="uint8"):
        to_accelerator_layout(images.astype(np.float32), [1, 32, 32, 3])


def test_validation_batch_divides_the_test_set():
    assert validation_batch(10000) == 100
    assert validation_batch(360) == 90
    assert validation_batch(101) == 1
    assert validation_batch(97) == 97
    assert validation_batch(8) == 8


def test_stage_package(tmp_path):
    images, labels = digits()
    staged = stage_package(make_package(tmp_path / "deploy"), images, labels, tmp_path / "staged")
    assert (staged / "bitfile" / "finn-accel.bit").read_bytes() == b"\x00bitstream"
    assert (staged / RUNNER).is_file() and (staged / "driver" / "settings.json").is_file()
    testset = np.load(staged / TESTSET)
    assert np.array_equal(testset["images"], images.transpose(0, 2, 3, 1))
    assert np.array_equal(testset["labels"], labels)
    with pytest.raises(UserError, match="one label per image"):
        stage_package(tmp_path / "deploy", images, labels[:3], tmp_path / "other")


def test_remote_commands_exact():
    name = "cnv-0123456789abcdef"
    opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-i", "/home/alice/.ssh/pynq_ed25519"]
    assert remote.ssh_argv(LOGIN, "true") == ["ssh", *opts, "alice@pynq-lab-17.example", "true"]
    assert remote.prepare_command(name) == f"mkdir -p pynqrepro-deploy && sudo -n rm -rf pynqrepro-deploy/{name}"
    assert remote.copy_to_board_argv(LOGIN, f"/tmp/w/{name}") == \
        ["scp", "-r", "-q", *opts, f"/tmp/w/{name}", "alice@pynq-lab-17.example:pynqrepro-deploy/"]
    assert remote.fetch_reports_argv(LOGIN, name, "/tmp/w/fetched") == \
        ["scp", "-r", "-q", *opts, f"alice@pynq-lab-17.example:pynqrepro-deploy/{name}/report", "/tmp/w/fetched"]
    assert remote.run_command(name, 100, 1000, 5) == (
        f"cd pynqrepro-deploy/{name} && sudo -n bash -c 'if [ -f /etc/profile.d/pynq_venv.sh ]; then "
        ". /etc/profile.d/pynq_venv.sh; fi; mkdir -p report && python3 on_board.py --report-dir report "
        "--validate-batch 100 --throughput-batch 1000 --repeats 5'")
    assert remote.BoardLogin("10.0.0.2").options() == ["-o", "BatchMode=yes", "-o", "ConnectTimeout=20"]


@pytest.mark.parametrize("host,user", [("", "xilinx"), ("a b", "xilinx"), ("host", "root@x")])
def test_bad_login_is_user_error(host, user):
    with pytest.raises(UserError, match="board"):
        remote.BoardLogin(host, user)


def test_parse_finn_driver_reports(tmp_path):
    assert parse_validate_report(VALIDATE) == (84.19, 10000)
    fps, latency, fclk, batch = parse_throughput_report(THROUGHPUT)
    assert fps == pytest.approx(1000 / 0.329) and latency == 0.52 and (fclk, batch) == (100.0, 1000)
    (tmp_path / "report_dma_validate.json").write_text(json.dumps(VALIDATE))
    (tmp_path / "report_throughput_test.json").write_text(json.dumps(THROUGHPUT))
    assert read_board_reports(tmp_path) == BoardResult(84.19, 10000, fps, 0.52, 100.0, 1000)


def test_bad_driver_reports_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="validation report"):
        parse_validate_report({"accuracy": 1})
    with pytest.raises(UserError, match="batch 1"):
        parse_throughput_report({"1000": THROUGHPUT["1000"]})
    with pytest.raises(UserError, match="did not finish"):
        read_board_reports(tmp_path)


def test_accuracy_flag_at_a_tenth_of_a_point():
    assert accuracy_flag(84.19, 84.19) == ""
    assert accuracy_flag(84.25, 84.19) == ""
    assert "+0.11" in accuracy_flag(84.30, 84.19)
    assert "-0.20" in accuracy_flag(83.99, 84.19)


class FakeSSH:
    """Stands in for subprocess.run: records argv; the fetch step 'copies' the board's reports."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def __call__(self, argv, capture_output, text):
        self.calls.append(argv)
        if len(self.calls) == self.fail_at:
            return subprocess.CompletedProcess(argv, 255, "", "alice@pynq-lab-17.example: Permission denied (publickey).")
        if argv[0] == "scp" and argv[-1].endswith("fetched"):
            report = Path(argv[-1]) / "report"
            report.mkdir()
            (report / "report_dma_validate.json").write_text(json.dumps(VALIDATE))
            (report / "report_throughput_test.json").write_text(json.dumps(THROUGHPUT))
        return subprocess.CompletedProcess(argv, 0, "", "")


def test_run_on_board_sequence_and_no_secrets_in_rows(tmp_path):
    deploy = make_package(tmp_path / "deploy")
    images, labels = digits()
    ssh = FakeSSH()
    result = run_on_board(LOGIN, deploy, images, labels, tmp_path / "work", throughput_batch=1000, repeats=3, run=ssh)
    name = package_name(deploy)
    assert [call[0] for call in ssh.calls] == ["ssh", "scp", "ssh", "scp"]
    assert ssh.calls[1][-2] == str(tmp_path / "work" / name)
    assert ssh.calls[2][-1] == remote.run_command(name, 8, 1000, 3)
    assert result.top1 == 84.19 and result.batch_size == 1000
    row = board_row("CNV W1A1", "pynq-z1", "FINN published", result, 84.19, 3051.8, 0.41, "pynqrepro (smoke)")
    assert row["flag"] == "" and row["fps"] == round(1000 / 0.329, 1)
    recorded = json.dumps(row)
    for secret in (LOGIN.host, LOGIN.user, LOGIN.key, "pynq_ed25519"):
        assert secret not in recorded


def test_ssh_failure_is_one_line_user_error(tmp_path):
    images, labels = digits()
    with pytest.raises(UserError, match="copying the package failed .*Permission denied") as info:
        run_on_board(LOGIN, make_package(tmp_path / "deploy"), images, labels, tmp_path / "w", run=FakeSSH(fail_at=2))
    assert "\n" not in str(info.value)


FAKE_DRIVER = '''
import json, os, numpy as np
CALLS = []
class FakeOverlay:
    def __init__(self, bitfile, batch_size, io_shape_dict, runtime_weight_dir, **kwargs):
        assert os.path.isfile(bitfile) and os.path.isdir(os.path.dirname(runtime_weight_dir))
        self.batch_size, self.shape = batch_size, io_shape_dict["ishape_normal"][0]
    def execute(self, batch):
        assert list(batch.shape[1:]) == self.shape[1:] and len(batch) == self.batch_size
        return batch[:, 0, 0, :1].astype(np.int64) % 10   # "class" = first pixel's red value mod 10
    def throughput_test(self):
        return {"runtime[ms]": 1.0 * self.batch_size, "throughput[images/s]": 1000.0,
                "fclk[mhz]": np.float64(100.0), "batch_size": self.batch_size}
def get_driver_class(name):
    assert name == "FINNDMAOverlay"
    return FakeOverlay
'''
FAKE_VALIDATE = '''
import json, os, numpy as np
class ArrayDataset:
    def __init__(self, inputs, labels):
        self.inputs, self.labels = inputs, labels
def run_validation(cls_inst, dataset, report_dir):
    n = len(dataset.labels)
    pred = np.concatenate([cls_inst.execute(dataset.inputs[i:i + cls_inst.batch_size]).flatten()
                           for i in range(0, n, cls_inst.batch_size)])
    os.makedirs(report_dir, exist_ok=True)
    with open(os.path.join(report_dir, "report_dma_validate.json"), "w") as f:
        json.dump({"top-1_accuracy": 100.0 * float(np.mean(pred == dataset.labels)), "num_samples": n}, f)
'''


def test_on_board_runner_drives_finn_driver_interface(tmp_path):
    """on_board.py against a stand-in for finn-plus-driver's interface (get_driver_class,
    ArrayDataset, run_validation): settings.json kwargs, batch sizes, reports readable here."""
    fake = tmp_path / "site" / "finn_plus_driver"
    (fake / "validate").mkdir(parents=True)
    (fake / "__init__.py").write_text(FAKE_DRIVER)
    (fake / "validate" / "__init__.py").write_text("")
    (fake / "validate" / "common.py").write_text(FAKE_VALIDATE)
    images, _ = digits(12)
    labels = images[:, 0, 0, 0].astype(np.int64) % 10
    labels[:3] = (labels[:3] + 1) % 10  # 3 of 12 wrong: 75%
    staged = stage_package(make_package(tmp_path / "deploy"), images, labels, tmp_path / "staged")
    subprocess.run([sys.executable, RUNNER, "--validate-batch", str(validation_batch(12)), "--throughput-batch",
                    "4", "--repeats", "2"], cwd=staged, check=True, env={"PYTHONPATH": str(tmp_path / "site")})
    result = read_board_reports(staged / "report")
    assert (result.top1, result.num_samples, result.batch_size, result.latency_ms) == (75.0, 12, 4, 1.0)


def test_hw_graph_accuracy_is_the_python_execution(store, tmp_path):
    from pynqrepro.core.boards import get_board
    from pynqrepro.core.store import ArtifactStore
    from pynqrepro.finnflow.hw_build import hw_model_artifact
    from cnv_checkpoints import random_cnv_checkpoint

    hw = hw_model_artifact(store, random_cnv_checkpoint(store, 2, 2), get_board("pynq-z1"))
    images, _ = digits(3)
    classes = hw_graph_classes(hw.file("hw_generic.onnx"), images)
    assert np.array_equal(classes, hw_graph_classes(hw.file("streamlined.onnx"), images))
    labels = classes.copy()
    labels[0] = (labels[0] + 1) % 10
    assert hw_graph_accuracy(ArtifactStore(tmp_path), hw, images, labels) == pytest.approx(200 / 3)


def test_cli_deploy_without_host(tmp_path, capsys, monkeypatch):
    from pynqrepro.cli import main

    monkeypatch.delenv("PYNQ_BOARD_HOST", raising=False)
    assert main(["deploy", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == \
        "pynqrepro: error: no board host: pass --board-host HOST or set PYNQ_BOARD_HOST"
    assert main(["deploy", str(tmp_path), "--board-host", ""]) == 2  # typed empty: a value is missing
    assert capsys.readouterr().err.strip() == ("pynqrepro: error: argument --board-host: the value is empty: pass a "
                                               "value, or drop --board-host for its default (see pynqrepro deploy --help)")
