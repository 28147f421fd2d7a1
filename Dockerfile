# One image for every smartbus process (ingest, eta, writer, api, simulator); the command picks the role.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY smartbus ./smartbus
COPY ingest ./ingest
COPY eta ./eta
COPY api ./api
COPY simulator ./simulator
RUN pip install . && useradd --system --home /app smartbus && mkdir -p /app/var && chown smartbus /app/var
USER smartbus

# The compiled GTFS network is cached here; a volume keeps restarts from re-parsing the feed.
ENV SMARTBUS_CACHE_DIR=/app/var/cache
EXPOSE 8000
ENTRYPOINT ["smartbus"]
CMD ["--help"]
