# syntax=docker/dockerfile:1
# news-ingest: the HTTP service. Dependencies come from requirements.lock (pinned, hashed);
# no dev dependencies reach the image.

# Build stage: resolve nothing, verify every hash, build the venv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY service ./service
RUN /opt/venv/bin/pip install --no-deps .

# Runtime stage: the venv and the seeds, run as an unprivileged user.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    NEWS_INGEST_HOST=0.0.0.0 NEWS_INGEST_PORT=8080 NEWS_INGEST_DATA_DIR=/data
RUN useradd --system --uid 10001 --home-dir /data news && mkdir -p /data && chown news /data
COPY --from=build /opt/venv /opt/venv
COPY seeds /app/seeds
WORKDIR /app
USER news
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["news-ingest"]
CMD ["serve"]
