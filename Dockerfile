# WWHD API image: gunicorn + gevent behind the ALB; see docs/deploying.md.
# Pinned patch + Debian release so rebuilds are reproducible; bump deliberately.
# The ECR Public mirror of Docker's official image: CodeBuild's shared IPs would hit Docker
# Hub's anonymous pull limit. Same image, same tags (copilot/qdrant-snapshot/Dockerfile too).
FROM public.ecr.aws/docker/library/python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=wsgi \
    DATA_DIR=/data \
    PORT=8000

WORKDIR /app

# Fixed uid/gid: the dev EFS access point (copilot/api/manifest.yml) uses the same ids.
RUN groupadd --system --gid 10001 wwhd \
    && useradd --system --uid 10001 --gid wwhd --home-dir /app --shell /usr/sbin/nologin wwhd

# Requirements first so code changes reuse the dependency layer.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# Code stays root-owned (read-only to the app); only /data is writable (SQLite, local files).
RUN mkdir -p /data && chown wwhd:wwhd /data

USER 10001:10001
EXPOSE 8000

# For `docker run` only: ECS ignores an image's HEALTHCHECK. On ECS the same probe runs from
# image.healthcheck in copilot/api/manifest.yml (tests/deploy keeps the two identical).
# slim has no curl: probe /health with the interpreter we already ship.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["/app/scripts/entrypoint"]
