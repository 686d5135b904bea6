"""Weight averages of students (`mlkd select --soups`): the arithmetic, refusals, and the exported candidates."""

from __future__ import annotations

import pytest
import torch
import yaml
from shared_paths import NANOTRACK_PTH

from mlkd_model.load import load_tracker
from mlkd_model.nets.build import build_tracker
from mlkd_model.nets.checkpoint import read_checkpoint
from mlkd_training.select import room_students, soup_candidates
from mlkd_training.soup import SoupError, average_states


def test_average_is_the_weighted_mean_of_float_tensors_only():
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([4.0, 6.0]), "n": torch.tensor(9)}
    assert torch.equal(average_states([a, b], [1, 1])["w"], torch.tensor([2.0, 4.0]))
    out = average_states([a, b], [3, 1])  # weights are normalised: 0.75 a + 0.25 b
    assert torch.equal(out["w"], torch.tensor([1.0, 3.0])) and out["w"].dtype == torch.float32
    assert out["n"].item() == 5  # BatchNorm's batch counter: the first state's, never averaged


@pytest.mark.parametrize(
    ("other", "message"),
    [({"v": torch.zeros(2)}, "other keys"), ({"w": torch.zeros(3)}, "differs in shape")],
)
def test_states_of_different_networks_are_refused(other, message):
    with pytest.raises(SoupError, match=message):
        average_states([{"w": torch.zeros(2)}, other], [1, 1])
    with pytest.raises(SoupError, match="one weight per state"):
        average_states([{"w": torch.zeros(2)}], [1, 1])


def test_room_soups_are_exported_candidates(tmp_path):
    """Two room students of a run -> their average and the average halfway back to the stock weights, each an
    ONNX model directory that tracks; a run without a room of two gives none."""
    # Students hold the network's keys only; the stock checkpoint also has keys the network does not use.
    stock = build_tracker("nanotrack", NANOTRACK_PTH).state_dict()
    assert set(read_checkpoint(NANOTRACK_PTH)) > set(stock)
    run = tmp_path / "run"
    (run / "students").mkdir(parents=True)
    students = []
    for k, shift in enumerate((0.01, 0.03)):
        state = {key: v + shift if v.is_floating_point() else v for key, v in stock.items()}
        torch.save(state, run / "students" / f"student{k}.pth")
        students.append(state)
    fw = {"mode": "ml", "teacher": "clean", "students": ["l2", "feature"], "room": [0, 1]}
    cfg = {"family": "nanotrack", "tracker_checkpoint": str(NANOTRACK_PTH), "framework": fw}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))

    soup, half = soup_candidates("run", "the room", room_students(run, cfg), cfg, tmp_path / "models")
    assert soup.mlkd and half.mlkd and "average" in soup.label and "stock" in half.label
    key = next(k for k, v in stock.items() if v.is_floating_point())
    soup_weights = read_checkpoint(soup.model_dir / "tracker.pth")[key]
    half_weights = read_checkpoint(half.model_dir / "tracker.pth")[key]
    torch.testing.assert_close(soup_weights, stock[key] + 0.02)
    torch.testing.assert_close(half_weights, stock[key] + 0.01)
    build_tracker("nanotrack", half.model_dir / "tracker.pth")  # every key fits the network
    tracker = load_tracker(half.model_dir)
    frame = torch.randint(0, 255, (120, 160, 3), dtype=torch.uint8).numpy()
    tracker.init(frame, (60, 40, 30, 30))
    assert 0 <= tracker.track(frame)[1] <= 1

    assert room_students(run, {**cfg, "framework": {**fw, "mode": "kd"}}) == []  # no room: no soup
    assert soup_candidates("kd", "one", [run / "students" / "student0.pth"], cfg, tmp_path / "models_kd") == []
