"""`base:` in training configs: a variant says only what it changes, and the merged result is the run's."""

from __future__ import annotations

import pytest
import yaml

from mlkd_training.config import load_config, read_config_file

BASE = {
    "family": "nanotrack",
    "description": "base",
    "framework": {"mode": "ml", "students": ["l2", "feature"], "room": [0, 1], "weights": {"l1": 1.0, "l2": 0.3}},
    "data": {"roots": ["a"], "clean_share": 0.3},
    "train": {"epochs": 20, "lr": 0.002},
}


def write(path, values) -> None:
    path.write_text(yaml.safe_dump(values))


def test_variant_merges_mappings_replaces_lists_and_null_resets(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    (tmp_path / "v").mkdir()
    write(
        tmp_path / "v" / "variant.yaml",
        {"base": "../base.yaml", "framework": {"mode": "kd", "room": None, "weights": {"l2": 1.0},
                                               "students": ["spatial"]}, "train": {"epochs": 30}},
    )  # fmt: skip
    raw = read_config_file(tmp_path / "v" / "variant.yaml")
    assert "base" not in raw and raw["description"] == "base" and raw["data"] == BASE["data"]
    assert raw["framework"] == {"mode": "kd", "students": ["spatial"], "weights": {"l1": 1.0, "l2": 1.0}}
    assert raw["train"] == {"epochs": 30, "lr": 0.002}
    cfg = load_config(tmp_path / "v" / "variant.yaml", ["train.lr=0.01"])
    assert cfg.framework.room is None and cfg.framework.mode == "kd" and cfg.train.lr == 0.01
    # chains: a variant of a variant
    write(tmp_path / "v" / "deeper.yaml", {"base": "variant.yaml", "train": {"lr": 0.5}})
    assert read_config_file(tmp_path / "v" / "deeper.yaml")["train"] == {"epochs": 30, "lr": 0.5}


def test_bad_bases_are_named(tmp_path):
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ValueError, match="config base loop"):
        read_config_file(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", {"base": "missing.yaml"})
    with pytest.raises(FileNotFoundError, match=r"missing.yaml does not exist \(named as base by .*c.yaml\)"):
        read_config_file(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("- not\n- a mapping\n")
    with pytest.raises(ValueError, match="a config file is a YAML mapping"):
        read_config_file(tmp_path / "d.yaml")


def test_train_reports_a_bad_config_and_writes_nothing(tmp_path, caplog):
    from mlkd_training.trainer import main

    write(tmp_path / "variant.yaml", {"base": "gone.yaml"})
    assert main(["--config", str(tmp_path / "variant.yaml"), "--run-dir", str(tmp_path / "run")]) == 2
    assert "gone.yaml does not exist (named as base by" in caplog.text
    assert not (tmp_path / "run").exists()
