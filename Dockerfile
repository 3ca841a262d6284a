# The image of every service but postgres: the search package, PostgreSQL driver (psycopg 3) and, by
# default, TensorFlow with its CUDA libraries (pip wheels; the NVIDIA Container Toolkit provides the
# driver). CPU-only image: docker build --build-arg EXTRAS=postgres .
FROM python:3.11-slim

ARG EXTRAS=postgres,gpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KERAS_BACKEND=tensorflow \
    TF_CPP_MIN_LOG_LEVEL=3 \
    SEARCH_ARTIFACTS_DIR=/data/artifacts \
    SEARCH_CACHE_DIR=/data/cache

WORKDIR /src
COPY pyproject.toml README.md ./
COPY search ./search
COPY spaces ./spaces
COPY storage ./storage
RUN pip install ".[${EXTRAS}]"

# An unprivileged user; the volume mount points exist in the image so named volumes inherit the owner.
RUN useradd --create-home --uid 1000 search \
    && mkdir -p /data/artifacts /data/cache \
    && chown -R search:search /data
USER search
WORKDIR /data

# docker-compose.yml gives each service its command; by default, a worker that joins a study:
#   docker run --gpus device=0 -e OPTUNA_STORAGE=postgresql+psycopg://... keras-text-search \
#       python -m search.worker --study attn --gpu 0
CMD ["python", "-m", "search.worker", "--help"]
