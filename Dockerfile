# syntax=docker/dockerfile:1
#
# tokenpulse container image (SPEC §1, §10).
#
#   docker build -t tokenpulse .
#   docker run --rm -p 8080:8080 -v tokenpulse-data:/app/data tokenpulse
#
# Two stages: the builder installs the package and its dependencies into a
# virtualenv, pinned by requirements/constraints.txt; the runtime stage copies
# only that virtualenv onto a clean slim image (no compiler, no pip cache, no
# source tree).

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- builder ---
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Only what the build needs; .dockerignore keeps the rest of the tree out.
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY src/ src/

# The constraints file pins every dependency to an exact version; the package
# itself is built into a wheel by pip and installed non-editable. The cache
# mount speeds up rebuilds without leaving a pip cache in any layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -c requirements/constraints.txt . \
    && pip check

# ---------------------------------------------------------------- runtime ---
FROM ${PYTHON_IMAGE} AS runtime

# HOST: listen on all interfaces inside the container (the code default is
# loopback). DATABASE_URL is left at its default, sqlite under ./data, which
# with WORKDIR /app is the /app/data volume; compose points it at PostgreSQL.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json

# A fixed numeric uid/gid so volume ownership is predictable on the host.
RUN groupadd --system --gid 10001 tokenpulse \
    && useradd --system --uid 10001 --gid tokenpulse \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin tokenpulse \
    && mkdir -p /app/data \
    && chown -R tokenpulse:tokenpulse /app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Numeric, so orchestrators can verify "runs as non-root" without reading /etc/passwd.
USER 10001:10001

# Declared after the chown above so a new named volume starts out owned by
# the tokenpulse user.
VOLUME ["/app/data"]

EXPOSE 8080

# Liveness only (/health does not touch Redis or the database; /ready does).
# slim has no curl, so the probe is the interpreter already in the image;
# urlopen raises on connection errors and on any 4xx/5xx, giving exit 1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; r = u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=3); sys.exit(0 if r.status == 200 else 1)"]

# `tokenpulse serve` drains streams and flushes history on SIGTERM, bounded by
# SHUTDOWN_TIMEOUT (30s by default): give the container a longer stop timeout
# (compose: stop_grace_period) so it is not killed mid-drain.
STOPSIGNAL SIGTERM

CMD ["tokenpulse", "serve"]
