"""`bag_player` node of launch/replay.launch.xml (console script `bag_player = mlkd_ros.bag_player:main`).

The player itself lives with `mlkd replay` in mlkd_ros/commands/replay.py; this module is the entry point
that setup.py and mlkd_ros/launch_xml.py name.
"""

from __future__ import annotations

import sys

from mlkd_ros.commands.replay import player_main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
