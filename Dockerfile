# CPU image of the polarity service (see docs/deploy.md).
ARG PYTHON=3.11
FROM python:${PYTHON}-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 HOST=0.0.0.0 PORT=8000 MODEL_PATH=default
WORKDIR /app
# torch first and pinned. Pass TORCH_INDEX (PyTorch's CPU wheel index) to keep the image
# free of CUDA libraries; without it pip takes the default build.
ARG TORCH_INDEX=""
RUN pip install torch==2.13.0 ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
COPY pyproject.toml README.md ./
COPY src ./src
COPY configs ./configs
RUN pip install ".[serve,onnx]" && useradd --create-home --uid 10001 polarity
USER polarity
# The default model's ONNX int8 export, built once into the image instead of at first start.
RUN python -c "from polarity.predictor import load_classifier; load_classifier('default', runtime='onnx')"
# A trained model folder can be mounted here and served with MODEL_PATH=/models/NAME.
VOLUME ["/models"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,os;urllib.request.urlopen('http://127.0.0.1:'+os.environ.get('PORT','8000')+'/api/v1/health',timeout=2)"
CMD ["polarity", "serve"]
