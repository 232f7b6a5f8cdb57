"""The design-space search on a tiny space where every candidate can also be trained in full: the
front is exactly the non-dominated set of what was evaluated, and the hardware pre-filter never
drops a candidate the exhaustive evaluation puts on the front."""

import pytest

from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.pruning.candidates import CandidateResult, candidate_artifact
from pynqrepro.study import design_space
from pynqrepro.study.design_space import Candidate, Fidelities, explore, pareto_ranks, promoted, recommend
from pynqrepro.training.config import TrainConfig
from pynqrepro.training.recipes import train_artifact, training_result
from pynqrepro.training.trainer import RunOptions

SMALL = dict(conv_channels=(16, 16, 32, 32, 64, 64), fc_features=(64, 64), dataset="digits", epochs=2,
             batch_size=64, augment="none", lr_step=1)
TINY_SPACE = dict(bits=("1/1", "2/2", "ends2-mid1"), sparsities=(0.0, 0.5))


def brute_force_front(points):
    """Indices of the points no other point is at least as good as in both and better in one."""
    return {i for i, (a, f) in enumerate(points)
            if not any(b >= a and g >= f and (b, g) != (a, f) for b, g in points)}


@pytest.fixture(scope="module")
def tiny(store, tmp_path_factory):
    board = get_board("pynq-z1")
    parents = {}
    for bits, steps in (((1, 1), 40), ((2, 2), 40)):
        checkpoint = train_artifact(store, TrainConfig(*bits, max_steps=steps, **SMALL))
        parents[bits] = (checkpoint, training_result(checkpoint).test_acc)
    run = RunOptions(experiments=tmp_path_factory.mktemp("runs"), progress=False)
    fidelities = Fidelities(1, 2)
    candidates = design_space.space(**TINY_SPACE)
    exploration = explore(store, board, candidates, parents, fidelities, run, study_prefix="tiny")
    return store, board, parents, run, fidelities, exploration


def test_front_is_exactly_the_non_dominated_set_of_the_evaluated(tiny):
    exploration = tiny[-1]
    evaluated = exploration.full()
    points = [(e.accuracy, e.hardware.est_fps) for e in evaluated]
    assert {evaluated[i].candidate for i in brute_force_front(points)} == {e.candidate for e in exploration.front}
    assert exploration.front


def test_prefilter_never_drops_a_candidate_of_the_exhaustive_front(tiny):
    """Oracle: every candidate of the tiny space trained in full (the same fine-tunes the search
    would give it) and the brute-force front of them all."""
    store, board, parents, run, fidelities, exploration = tiny
    assert exploration.dropped, "the tiny space must exercise the pre-filter"
    everything = {}
    for candidate in exploration.candidates:
        checkpoint = parents[design_space.parent_of(candidate, parents)][0]
        if candidate.uniform in parents and not candidate.sparsity:
            everything[candidate] = parents[candidate.uniform][1]
            continue
        start = candidate_artifact(store, checkpoint, candidate.layer_bits, candidate.sparsity, 0, run)
        short = candidate_artifact(store, start, candidate.layer_bits, candidate.sparsity, fidelities.short, run)
        full = candidate_artifact(store, short, candidate.layer_bits, candidate.sparsity,
                                  fidelities.full - fidelities.short, run)
        everything[candidate] = CandidateResult.read(full).test_acc
    fitting = [c for c in exploration.candidates if exploration.hardware[c].fits]
    points = [(everything[c], exploration.hardware[c].est_fps) for c in fitting]
    true_front = {fitting[i] for i in brute_force_front(points)}
    assert not true_front & set(exploration.dropped), {c.label: everything[c] for c in exploration.candidates}


def test_trainings_spent_only_on_survivors(tiny):
    exploration = tiny[-1]
    parents = sum(1 for e in exploration.evaluated if e.fidelity == "parent")
    assert exploration.trainings["short"] == len(exploration.candidates) - len(exploration.dropped) - parents
    assert exploration.trainings["full"] == exploration.trainings["short"] - len(exploration.halved)


def test_pareto_ranks_and_halving():
    points = [(90, 100), (80, 200), (85, 150), (70, 90), (60, 300), (75, 95)]
    assert pareto_ranks(points) == [1, 1, 1, 3, 1, 2]
    assert pareto_ranks([(1, 1), (1, 1)]) == [1, 1]  # equal points do not dominate each other


def test_recommendations_follow_their_rules():
    def evaluated(acc, fps):
        hw = design_space.Hardware(True, fps)
        return design_space.Evaluated(Candidate.of("2/2", 0.0), acc, "full", hw, None)

    front = [evaluated(95.0, 100), evaluated(94.5, 400), evaluated(90.0, 1000)]
    (ra, ta, a), (rb, tb, b) = recommend(front, 300)
    assert (a.accuracy, b.hardware.est_fps) == (94.5, 400) and ta.startswith("a: most accurate at >= 300")
    (_, ta, a), _ = recommend(front, 5000)
    assert a.hardware.est_fps == 1000 and "none reaches 5,000 fps" in ta


def test_a_candidate_no_folding_fits_says_so_instead_of_zero_fps():
    board = get_board("pynq-z1")
    unfit = design_space.Evaluated(Candidate.of("2/2", 0.0), 97.0, "full", design_space.Hardware(False), None)
    row = design_space.design_row(board, unfit, unfit.hardware)
    assert row["fits"].startswith("no: no folding fits") and not {"est fps", "LUT %", "BRAM18 %"} & set(row)
    fit = design_space.Hardware(True, 2000.0, lut=26_600, bram18=140, dsp=0)
    row = design_space.design_row(board, unfit, fit)  # 26,600 / 53,200 LUT, 140 / 280 BRAM18
    assert "fits" not in row and (row["est fps"], row["LUT %"], row["BRAM18 %"], row["DSP %"]) == (2000.0, 50.0, 50.0, 0.0)


@pytest.mark.parametrize("bits, sparsities, match", [
    (("3/3",), (0.0,), "bits '3/3' is not W/A"),
    (("ends2-mid1",), (0.0,), "no uniform dense network"),
])
def test_bad_space_is_one_line_error(bits, sparsities, match):
    with pytest.raises(UserError, match=match):
        design_space.space(bits, sparsities)


def test_explore_cli_bad_input_is_one_line(capsys):
    from pynqrepro.cli import main

    assert main(["explore", "--sparsity", "1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pynqrepro: error:") and "\n" not in err and "--sparsity" in err
