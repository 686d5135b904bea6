"""Loaded at start-up by every node process the launch tests start (their PYTHONPATH names this folder):
any torch import, even one guarded by try/except, fails and leaves a mark in the node's log.
A test may also ask for a tracker failure (MLKD_TEST_TRACK_FAULT, see track_fault.py)."""

import importlib.abc
import os
import sys


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            sys.stderr.write("TORCH_IMPORT_ATTEMPT " + name + "\n")
            raise ImportError("torch is blocked in ground-station processes")


sys.meta_path.insert(0, _NoTorch())

if os.environ.get("MLKD_TEST_TRACK_FAULT"):
    import track_fault  # noqa: F401
