"""One ament_python ROS 2 package that is also a plain pip-installable Python distribution.

The `training/` folder installs as the top-level package `mlkd_training`: a package called
`training` would collide with any other project's, so the distribution maps the folder to a
distinct import name (package_dir below) and the code always imports `mlkd_training`.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mlkd_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Nighttime UAV tracking after MLKD: models, training, ONNX runtime and a ROS 2 ground station",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["mlkd_model", "mlkd_model.*", "mlkd_ros", "mlkd_ros.*"])
    + ["mlkd_training"]
    + [f"mlkd_training.{p}" for p in find_packages("training")],
    package_dir={"mlkd_training": "training"},
    package_data={
        "mlkd_model": ["confidence_default.json"],  # the embedded model's confidence and state rule
        "mlkd_model.default_model": ["*.onnx", "*.json", "SOURCE.txt"],
        "mlkd_training": ["configs/*.yaml"],
        "mlkd_ros.console": ["static/*"],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.xml") + glob("launch/*.yaml")),
    ],
    install_requires=[
        "numpy>=2",
        "opencv-python-headless>=4.8",
        "onnxruntime>=1.16",
        "pyyaml",
        "tqdm",
        "rosbags>=0.11",  # mlkd record / replay / bag-from-frames
        "matplotlib",  # the CLE report's plot (mlkd replay)
    ],
    extras_require={"train": ["torch==2.13.0", "onnx", "matplotlib", "tensorboard"]},
    entry_points={
        "console_scripts": [
            "mlkd = mlkd_model.cli:main",
            "mlkd-launch = mlkd_ros.launch_xml:main",
            # ROS 2 node executables (names used by launch/*.launch.xml)
            "tracker_node = mlkd_ros.tracker_node:main",
            "follow_controller = mlkd_ros.follow_controller:main",
            "cle_logger = mlkd_ros.cle_logger:main",
            "olympe_bridge = mlkd_ros.olympe_bridge:main",
            "bag_player = mlkd_ros.bag_player:main",
            "operator_console = mlkd_ros.operator_console:main",
        ],
        # `mlkd <command>`: NAME = command module (what it holds: mlkd_model/cli.py); a package adds a
        # command here, so the CLI names no module of the layers above it.
        "mlkd.commands": [
            "track = mlkd_model.commands.track",
            "export = mlkd_model.commands.export",
            "eval = mlkd_training.commands.eval",
            "darken = mlkd_training.commands.darken",
            "report = mlkd_training.commands.report",
            "train = mlkd_training.commands.train",
            "quantize = mlkd_training.commands.quantize",
            "select = mlkd_training.commands.select",
            "record = mlkd_ros.commands.record",
            "replay = mlkd_ros.commands.replay",
            "bag-from-frames = mlkd_ros.commands.bag_from_frames",
        ],
    },
)
