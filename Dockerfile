# syntax=docker/dockerfile:1
# One image for every Stopline service; the command names the module to run, e.g.
#   docker run IMAGE services.ingest.app
# Production code only: no simulator or simulated banks, no training, benchmarks or tests
# (docs/deployment.md says why and how to build it).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The runtime dependencies of pyproject.toml at the versions of constraints.txt: the same set `make test`
# runs on, less the development extras.
COPY pyproject.toml constraints.txt ./
RUN python -m venv /opt/venv \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/venv/bin/pip install --no-compile -c constraints.txt -r requirements.txt
COPY services/ /app/services/
COPY streams/ /app/streams/
COPY models/__init__.py models/artifact.py models/model.py /app/models/
COPY models/features/ /app/models/features/
COPY models/artifacts/ /src/artifacts/
# Only the promoted model version (the one ACTIVE names) goes into the image.
RUN active="$(cat /src/artifacts/ACTIVE)" \
 && mkdir -p /app/models/artifacts \
 && cp -r "/src/artifacts/${active}" /app/models/artifacts/ \
 && cp /src/artifacts/ACTIVE /app/models/artifacts/ACTIVE \
 && rm -rf /app/services/simulator /app/services/banksim \
 && find /app -name __pycache__ -prune -exec rm -rf {} + \
 && /opt/venv/bin/python -m compileall -q /app /opt/venv/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="stopline" \
      org.opencontainers.image.description="Stopline services: ingest, scorer, coordination, notifier, blocklist, console" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 stopline \
 && useradd --system --uid 10001 --gid stopline --home-dir /app --no-create-home --shell /usr/sbin/nologin stopline
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /app /app
COPY --chmod=0755 deploy/image/entrypoint.sh /usr/local/bin/stopline-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STOPLINE_ENVIRONMENT=production \
    STOPLINE_SCORER_MODEL_DIR=/app/models/artifacts
WORKDIR /app
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["stopline-entrypoint"]
CMD ["services.ingest.app"]
