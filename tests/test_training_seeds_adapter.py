"""Sixth round: the night-adapter student (frozen tracker, gated adapters) and recipes judged by their
mean over training seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from shared_paths import NANOTRACK_PTH

from mlkd_model.export import export_model
from mlkd_model.nets.build import build_tracker
from mlkd_training.adapter import darkness_gate, load_student, make_adapter_student
from mlkd_training.framework import FrameworkConfig, MLKDFramework
from mlkd_training.seeds import add_recipe_means, recipe_name
from mlkd_training.select import Candidate, median_member, recipe_groups, student_label

needs_weights = pytest.mark.skipif(not NANOTRACK_PTH.is_file(), reason="NanoTrack v2 weights not found")


def _crops(level: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Textured template and search crops around a mean grey level (0..255)."""
    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(1, 3, 127, 127, generator=g) - 0.5) * level + level
    x = (torch.rand(1, 3, 255, 255, generator=g) - 0.5) * level + level
    return z, x


def _trained_adapters(student: torch.nn.Module) -> None:
    """Stand-in for training: large random adapter weights (zero-initialised ones would prove nothing)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in student.named_parameters():
            if "adapters" in name:
                p.copy_(torch.randn(p.shape, generator=g))


@needs_weights
def test_adapter_student_is_the_stock_tracker_on_daytime_crops() -> None:
    stock = build_tracker("nanotrack", NANOTRACK_PTH)
    student = make_adapter_student(stock).eval()
    _trained_adapters(student)
    with torch.no_grad():
        day = _crops(110.0)
        a, b = student(*day), stock(*day)
        np.testing.assert_allclose(a.cls.numpy(), b.cls.numpy(), atol=1e-2)
        np.testing.assert_allclose(a.loc.numpy(), b.loc.numpy(), rtol=1e-2, atol=1e-2)
        night = _crops(25.0)
        assert (student(*night).cls - stock(*night).cls).abs().max() > 0.5  # at night the adapters act
    assert float(darkness_gate(day[1])) < 0.01 and float(darkness_gate(night[1])) > 0.99


@needs_weights
def test_adapter_student_learns_only_its_adapters() -> None:
    cfg = FrameworkConfig(
        family="nanotrack", mode="ml", teacher="clean", students=["l2", "feature"], trainable=["all"], adapters=[1]
    )
    fw = MLKDFramework(cfg, build_tracker("nanotrack", NANOTRACK_PTH)).train()
    adapted = fw.students[1]
    frozen = {n for n, p in adapted.named_parameters() if not p.requires_grad}
    learning = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert learning and all(".adapters." in n for n in learning)
    assert {n.replace("backbone.body.", "backbone.") for n in frozen} == set(dict(fw.students[0].named_parameters()))
    z, x = _crops(30.0)
    batch = {
        "template": z.repeat(2, 1, 1, 1),
        "search": x.repeat(2, 1, 1, 1),
        "template_clean": (z * 3).repeat(2, 1, 1, 1),
        "search_clean": (x * 3).repeat(2, 1, 1, 1),
        "label_cls": torch.zeros(2, 1, 16, 16, dtype=torch.long),
        "label_loc": torch.full((2, 4, 16, 16), 20.0),
        "label_loc_weight": torch.zeros(2, 1, 16, 16),
        "box": torch.tensor([[100.0, 100.0, 155.0, 155.0]] * 2),
    }
    batch["label_cls"][:, :, 7:9, 7:9] = 1
    fw(batch).total.backward()
    up = adapted.backbone.adapters["8"].up.weight
    assert up.grad is not None and up.grad.abs().sum() > 0  # zero-initialised, yet it receives a gradient
    assert all(p.grad is None for n, p in adapted.named_parameters() if n in frozen)
    assert all(not m.training for m in adapted.modules() if isinstance(m, torch.nn.BatchNorm2d))


@needs_weights
def test_adapter_student_exports_to_the_model_directory_format(tmp_path: Path) -> None:
    student = make_adapter_student(build_tracker("nanotrack", NANOTRACK_PTH)).eval()
    _trained_adapters(student)
    weights = tmp_path / "student2.pth"
    torch.save(student.state_dict(), weights)
    loaded = load_student("nanotrack", weights)
    model = export_model(loaded, tmp_path / "model")
    assert {p.name for p in model.iterdir()} >= {"manifest.json", "template.onnx", "search.onnx", "tracker.pth"}
    z, x = _crops(25.0)
    template = ort.InferenceSession(str(model / "template.onnx"), providers=["CPUExecutionProvider"])
    search = ort.InferenceSession(str(model / "search.onnx"), providers=["CPUExecutionProvider"])
    (kernel,) = template.run(None, {"template": z.numpy()})
    cls, _loc = search.run(None, {"kernel0": kernel, "search": x.numpy()})
    with torch.no_grad():
        expected = student(z, x).cls.numpy()
    np.testing.assert_allclose(cls, expected, atol=1e-3)  # the adapters and their gate are in the graph
    plain = tmp_path / "plain.pth"
    torch.save(build_tracker("nanotrack", NANOTRACK_PTH).state_dict(), plain)
    assert not hasattr(load_student("nanotrack", plain).backbone, "adapters")


def test_adapter_student_label() -> None:
    fw = {"mode": "ml", "teacher": "clean", "students": ["l2", "feature", "feature"], "adapters": [2]}
    assert student_label(fw, 2) == ("Night-adapter student (target-aware features, in the room) [clean teacher]", True)
    assert student_label(fw, 1)[0] == "Target-aware feature student (in the room) [clean teacher]"


def _summary(values: dict[str, list[float]]) -> dict:
    seqs = ["a", "b", "c", "d"]
    return {
        "trackers": {
            name: {
                "success_auc": float(np.mean(v)),
                "fps": 100.0,
                "sequences": {s: {"success_auc": x} for s, x in zip(seqs, v, strict=True)},
            }
            for name, v in values.items()
        }
    }


def test_recipe_is_scored_by_its_mean_over_seeds() -> None:
    candidates = [
        Candidate("base", "Stock", Path("m")),
        *(
            Candidate(f"r{k}_s1", f"Feature student (r{k})", Path("m"), mlkd=True, student=True, recipe="Feature")
            for k in range(3)
        ),
        Candidate("r0_s0", "L2 (r0)", Path("m"), mlkd=True, student=True, recipe="L2"),  # one seed: no recipe row
    ]
    groups = recipe_groups(candidates)
    assert groups == {"Feature": ["r0_s1", "r1_s1", "r2_s1"]}
    summary = _summary(
        {
            "base": [0.5, 0.5, 0.5, 0.5],
            "r0_s1": [0.8, 0.5, 0.5, 0.5],  # one lucky sequence
            "r1_s1": [0.5, 0.5, 0.5, 0.5],
            "r2_s1": [0.5, 0.5, 0.5, 0.2],
        }
    )
    add_recipe_means([summary], groups)
    recipe = summary["trackers"][recipe_name("Feature")]
    assert [recipe["sequences"][s]["success_auc"] for s in "abcd"] == pytest.approx([0.6, 0.5, 0.5, 0.4])
    rows = {n: {"night": (v, 0, 0)} for n, v in (("r0_s1", 0.575), ("r1_s1", 0.5), ("r2_s1", 0.425))}
    assert median_member(candidates, groups["Feature"], rows).name == "r1_s1"  # not the luckiest seed


def test_trainer_moves_only_the_adapters_at_their_own_rate(tmp_path: Path) -> None:
    from tiny_sequences import make_sequences

    from mlkd_training.config import config_from_dict
    from mlkd_training.trainer import train

    cfg = config_from_dict(
        {
            "family": "nanotrack",
            "seed": 3,
            "framework": {
                "mode": "ml",
                "teacher": "clean",
                "students": ["l2", "l2"],
                "trainable": ["all"],
                "freeze_bn": True,
                "adapters": [1],
                "adapter_lr_scale": 10.0,
            },
            "data": {"roots": [str(make_sequences(tmp_path / "seqs"))], "samples_per_epoch": 4, "workers": 0},
            "train": {"epochs": 1, "batch": 2, "lr": 0.01, "lr_end": 0.01, "log_every": 1, "grad_clip": 0.0},
        }
    )
    torch.manual_seed(cfg.seed)
    start = build_tracker("nanotrack").state_dict()  # the trainer seeds the same random start
    run = train(cfg, tmp_path / "run", device="cpu")
    full, adapted = (torch.load(run / "students" / f"student{k}.pth", weights_only=True) for k in (0, 1))
    assert any(not torch.equal(full[k], start[k]) for k in start if "running" not in k)
    for key, value in adapted.items():  # the tracker inside the adapter student never moves
        if ".adapters." not in key:
            assert torch.equal(value, start[key.replace("backbone.body.", "backbone.")]), key
    assert any(adapted[k].abs().sum() > 0 for k in adapted if k.endswith("up.weight"))
    groups = torch.load(run / "last.pt", weights_only=True)["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.1])  # the adapters learn at 10x
    assert len(groups[1]["params"]) == sum(1 for k in adapted if ".adapters." in k)
