# Training: the official PyTorch CUDA image + this project's training extras; entrypoint torchrun.
#   docker build -f docker/train.Dockerfile -t mlkd-train .
#   docker run --rm --gpus all --shm-size 8g -v /data:/data -v "$PWD/runs:/runs" mlkd-train \
#       --nproc_per_node=4 -m mlkd_training.trainer --config training/configs/siamrpn_alex_paper.yaml --run-dir /runs/paper
# The base image's torch must equal the pin in requirements/train.txt (a test checks the tag).
ARG PYTORCH_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
FROM ${PYTORCH_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends git libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/mlkd
COPY requirements/ requirements/
# torch==2.13.0 is already in the base image, so pip keeps its CUDA build; the rest comes from train.txt.
RUN pip install --no-cache-dir -r requirements/train.txt

COPY setup.py setup.cfg pyproject.toml package.xml README.md ./
COPY resource/ resource/
COPY mlkd_model/ mlkd_model/
COPY mlkd_ros/ mlkd_ros/
COPY training/ training/
COPY launch/ launch/
RUN pip install --no-cache-dir --no-deps .

RUN useradd --create-home --uid 1000 mlkd && mkdir -p /runs /data && chown mlkd /runs /data
USER 1000
# The configs' ${MLKD_SHARED} (weights/, data/sequences/ as in ../shared) is the /data volume.
ENV MLKD_SHARED=/data
VOLUME ["/data", "/runs"]
ENTRYPOINT ["torchrun"]
CMD ["--nproc_per_node=1", "-m", "mlkd_training.trainer", "--help"]
