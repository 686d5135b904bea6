# Ground station: ROS 2 Jazzy + this package built by colcon + ONNX Runtime (GPU providers) + Olympe.
#   docker build -f docker/ground_station.Dockerfile -t mlkd-ground-station .
#   docker run --rm --network host --gpus all mlkd-ground-station drone_ip:=192.168.42.1
# Python dependencies come from the same requirement files the README's setup script uses.
ARG ROS_DISTRO=jazzy
FROM ros:${ROS_DISTRO}-ros-base

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian/Ubuntu packages: venv support, and the libraries OpenCV's and Olympe's wheels load at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv python3-pip libgl1 libglib2.0-0 libegl1 \
    && rm -rf /var/lib/apt/lists/*

# A venv that still sees ROS's own Python packages (rclpy, messages) but keeps our pins (numpy 2, ...) apart.
ENV VIRTUAL_ENV=/opt/mlkd-venv
RUN python3 -m venv --system-site-packages "${VIRTUAL_ENV}"
ENV PATH="${VIRTUAL_ENV}/bin:${PATH}"

WORKDIR /ws/src/mlkd_ros
COPY requirements/ requirements/
# runtime.txt pins onnxruntime; the image takes onnxruntime-gpu of the same version (CUDA/cuDNN from pip).
RUN ort_version="$(sed -n 's/^onnxruntime==\([0-9.]*\).*/\1/p' requirements/runtime.txt)" \
    && grep -v '^onnxruntime==' requirements/runtime.txt > /tmp/runtime-gpu.txt \
    && pip install --no-cache-dir -r /tmp/runtime-gpu.txt "onnxruntime-gpu[cuda,cudnn]==${ort_version}"
# Olympe pins protobuf 3.19, which onnxruntime cannot share: the bridge re-executes itself in this venv.
ENV MLKD_OLYMPE_PYTHON=/opt/olympe-venv/bin/python
RUN python3 -m venv --system-site-packages /opt/olympe-venv \
    && /opt/olympe-venv/bin/pip install --no-cache-dir -r requirements/olympe.txt

COPY package.xml setup.py setup.cfg pyproject.toml README.md ./
COPY resource/ resource/
COPY mlkd_model/ mlkd_model/
COPY mlkd_ros/ mlkd_ros/
COPY training/ training/
COPY launch/ launch/

# colcon runs setup.py with the interpreter that runs colcon, and setuptools writes that interpreter into
# every script's shebang: /usr/bin/colcon would give the nodes /usr/bin/python3 (no onnxruntime-gpu, no
# numpy 2). The venv's python runs Ubuntu's colcon (seen through --system-site-packages) instead.
WORKDIR /ws
RUN . "/opt/ros/${ROS_DISTRO}/setup.bash" \
    && "${VIRTUAL_ENV}/bin/python" -m colcon build --packages-select mlkd_ros \
    && rm -rf build log

# DDS over shared memory only (no socket: other hosts cannot reach the nodes), 64 MB segment for images.
ENV FASTDDS_DEFAULT_PROFILES_FILE=/ws/install/mlkd_ros/share/mlkd_ros/launch/fastdds_localhost.xml \
    RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
    ROS_DISTRO=${ROS_DISTRO}

COPY --chmod=755 docker/ground_station_entrypoint.sh /usr/local/bin/mlkd-ground-station
RUN useradd --create-home --uid 1000 mlkd
USER 1000
ENTRYPOINT ["/usr/local/bin/mlkd-ground-station"]
CMD ["drone_ip:=192.168.42.1"]
