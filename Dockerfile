# One image for every smartbus process (ingest, eta, writer, api, simulator); the command picks the role.

# Build stage: install into a virtualenv and compile the ETA core's hot modules with mypyc (eta/native.py),
# which needs a C compiler the running image does without.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY smartbus ./smartbus
COPY ingest ./ingest
COPY eta ./eta
COPY api ./api
COPY simulator ./simulator
# The build runs here in /src, on these sources (mypy will not compile from site-packages); the installed copies are
# the same files, so the digest in the build's manifest matches them (checked with a local venv: no Docker here).
RUN python -m venv /opt/smartbus \
    && /opt/smartbus/bin/pip install '.[native]' \
    && SMARTBUS_NATIVE_DIR=/opt/native /opt/smartbus/bin/python -m smartbus.native_build \
    && /opt/smartbus/bin/pip uninstall -y mypy

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/smartbus/bin:$PATH \
    SMARTBUS_NATIVE_DIR=/opt/native
# Same paths as in the build stage: the build's manifest names the digest of the sources installed there.
COPY --from=build /opt/smartbus /opt/smartbus
COPY --from=build /opt/native /opt/native
WORKDIR /app
RUN useradd --system --home /app smartbus && mkdir -p /app/var && chown smartbus /app/var
USER smartbus

# The compiled GTFS network is cached here; a volume keeps restarts from re-parsing the feed.
ENV SMARTBUS_CACHE_DIR=/app/var/cache
EXPOSE 8000
ENTRYPOINT ["smartbus"]
CMD ["--help"]
