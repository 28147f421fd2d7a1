"""One typed settings object, built once at start-up from SMARTBUS_* environment variables.

Components receive explicit arguments taken from it; nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_FEED = Path(__file__).resolve().parent.parent / "simulator" / "data" / "cairns_gtfs.zip"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMARTBUS_", extra="ignore")

    # Services (defaults are what `smartbus services up` starts on loopback).
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Prepended to every topic name: several deployments (or test runs) can share one broker.
    kafka_topic_prefix: str = ""
    database_url: str = "postgresql://smartbus:smartbus@127.0.0.1:15432/smartbus"
    redis_url: str = "redis://127.0.0.1:16379/0"
    # Where `smartbus services` keeps binaries, data and logs of the services it runs.
    services_dir: Path = Path("var/services")
    # Force the plain PostgreSQL path even where the TimescaleDB extension is installed (tests run both paths).
    services_no_timescale: bool = False
    # Where the compiled-network cache lives.
    cache_dir: Path = Path("var/cache")

    gtfs: Path = BUNDLED_FEED
    consumer_group: str = "smartbus-eta"
    kafka_partitions: int = 6
    # What the ETA worker's predictor learned (run times, dwells) is kept in PostgreSQL: loaded at start,
    # saved this often (seconds) and at a clean stop. 0: kept in memory only, a restart starts cold.
    learned_state_save_s: float = 300.0

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Map tiles for the fleet map, e.g. "https://tile.example.org/{z}/{x}/{y}.png". None: no tiles, the map
    # draws routes and stops on a plain background (works without internet).
    map_tile_url: str | None = None
    map_tile_attribution: str = ""

    # Storage policies (TimescaleDB: retention and compression policies; plain PostgreSQL: partition drops).
    retention_days: int = 90
    compress_after_days: int = 7


def load_settings() -> Settings:
    return Settings()
