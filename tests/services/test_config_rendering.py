"""Unit tests of the pure parts of `smartbus services`: configuration files, addresses, pid checks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from smartbus.errors import ValidationError
from smartbus.services.endpoints import database_from_url, kafka_address, redis_address
from smartbus.services.kafka_broker import KafkaPaths, kafka_version, new_cluster_id, render_server_properties
from smartbus.services.postgres_server import (
    Database,
    PostgresService,
    newest_bin_dir,
    render_pg_hba,
    render_postgresql_conf,
    timescale_version,
)
from smartbus.services.process import live_pid, read_pid
from smartbus.services.redis_server import RedisPaths, render_redis_conf


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def kafka_paths(root: Path) -> KafkaPaths:
    return KafkaPaths(
        libs=root / "libs",
        data_dir=root / "data",
        logs_dir=root / "logs",
        config=root / "server.properties",
        log4j_config=root / "log4j2.properties",
        pidfile=root / "kafka.pid",
    )


def test_kafka_is_one_combined_node_on_loopback_with_replication_factor_one(tmp_path: Path) -> None:
    props = parse_properties(render_server_properties(kafka_paths(tmp_path), "127.0.0.1", 19092, partitions=6))

    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["auto.create.topics.enable"] == "true"
    assert props["num.partitions"] == "6"
    replication = {key: value for key, value in props.items() if "replication.factor" in key}
    assert set(replication) >= {
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    }
    assert set(replication.values()) == {"1"}
    # a single node's group offsets topic: a few partitions, not the cluster default of 50, which it would create
    # (slowly, on modest hardware) just as the pipeline's first consumer group forms
    assert int(props["offsets.topic.num.partitions"]) <= 6


def test_kafka_cluster_ids_are_22_url_safe_characters_and_unique() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(cluster_id) == 22 and "=" not in cluster_id and "/" not in cluster_id for cluster_id in ids)


def test_kafka_cluster_ids_never_look_like_an_option_to_the_storage_tool() -> None:
    # one random id in 64 starts with "-"; 2,000 draws miss that with a chance of about 1e-14
    assert not any(new_cluster_id().startswith("-") for _ in range(2000))


def test_kafka_version_comes_from_the_broker_jar(tmp_path: Path) -> None:
    assert kafka_version(tmp_path) is None
    (tmp_path / "kafka-clients-4.1.1.jar").touch()
    (tmp_path / "kafka_2.13-4.1.1.jar").touch()
    assert kafka_version(tmp_path) == "4.1.1"


def test_redis_config_is_loopback_durable_and_keeps_everything_in_its_directory(tmp_path: Path) -> None:
    paths = RedisPaths(data_dir=tmp_path / "data", pidfile=tmp_path / "redis.pid", logfile=tmp_path / "redis.log")
    settings = dict(
        line.split(" ", 1)
        for line in render_redis_conf(paths, "127.0.0.1", 16379).splitlines()
        if line and not line.startswith("#")
    )

    assert settings["bind"] == "127.0.0.1"
    assert settings["port"] == "16379"
    assert settings["protected-mode"] == "yes"
    assert settings["appendonly"] == "yes"
    assert settings["appendfsync"] == "everysec"
    assert settings["save"] == '""'  # no RDB dumps forked under load besides: Redis starts from the append-only file
    assert settings["daemonize"] == "yes"
    assert settings["dir"] == str(tmp_path / "data")
    assert settings["pidfile"] == str(tmp_path / "redis.pid")
    assert "requirepass" not in settings


def test_postgres_config_preloads_timescaledb_only_on_the_timescale_path(tmp_path: Path) -> None:
    plain = render_postgresql_conf(tmp_path, use_timescale=False, host="127.0.0.1", port=15432)
    timescale = render_postgresql_conf(tmp_path, use_timescale=True, host="127.0.0.1", port=15432)

    assert "shared_preload_libraries" not in plain
    assert "shared_preload_libraries = 'timescaledb'" in timescale
    for conf in (plain, timescale):
        assert "listen_addresses = '127.0.0.1'" in conf
        assert "port = 15432" in conf
        assert f"unix_socket_directories = '{tmp_path}'" in conf
        assert "fsync = on" in conf
        assert "synchronous_commit = on" in conf
        assert "max_connections = 200" in conf


def test_postgres_asks_a_password_over_tcp() -> None:
    hba = render_pg_hba("127.0.0.1")
    tcp_rules = [line.split() for line in hba.splitlines() if line.startswith("host")]
    assert tcp_rules and all(rule[-1] == "scram-sha-256" for rule in tcp_rules)
    assert "trust" not in " ".join(" ".join(rule) for rule in tcp_rules)


def test_timescale_version_is_read_from_its_control_file(tmp_path: Path) -> None:
    assert timescale_version(tmp_path) is None
    (tmp_path / "extension").mkdir()
    (tmp_path / "extension" / "timescaledb.control").write_text(
        "comment = 'Enables scalable inserts'\ndefault_version = '2.17.2'\nmodule_pathname = '$libdir/timescaledb'\n"
    )
    assert timescale_version(tmp_path) == "2.17.2"


def test_no_timescale_forces_the_plain_path_even_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = tmp_path / "share"
    (share / "extension").mkdir(parents=True)
    (share / "extension" / "timescaledb.control").write_text("default_version = '2.17.2'\n")
    monkeypatch.setattr(PostgresService, "share_dir", lambda self: share)
    database = Database(host="127.0.0.1", port=15432, role="smartbus", password="smartbus", name="smartbus")

    assert PostgresService(tmp_path, database, allow_timescale=True).timescale() == "2.17.2"
    assert PostgresService(tmp_path, database, allow_timescale=False).timescale() is None


def test_newest_postgres_major_version_wins(tmp_path: Path) -> None:
    for major in ("9", "15", "16"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "postgres").touch()
    (tmp_path / "17" / "bin").mkdir(parents=True)  # client tools only, no server
    assert newest_bin_dir(tmp_path) == tmp_path / "16" / "bin"
    assert newest_bin_dir(tmp_path / "nothing-here") is None


def test_addresses_come_from_the_client_settings() -> None:
    assert kafka_address("127.0.0.1:19092,127.0.0.1:29092") == ("127.0.0.1", 19092)
    assert redis_address("redis://127.0.0.1:16379/0") == ("127.0.0.1", 16379)
    assert database_from_url("postgresql://smartbus:s%40cret@127.0.0.1:15432/smartbus") == Database(
        host="127.0.0.1", port=15432, role="smartbus", password="s@cret", name="smartbus"
    )


@pytest.mark.parametrize(
    ("parse", "value"),
    [(kafka_address, "no-port"), (redis_address, "http://x:1"), (database_from_url, "postgresql://host/db")],
)
def test_unusable_addresses_are_rejected_by_name(parse: Callable[[str], object], value: str) -> None:
    with pytest.raises(ValidationError, match="expected"):
        parse(value)


def test_a_pidfile_counts_only_while_it_names_a_live_process_of_the_right_program(tmp_path: Path) -> None:
    pidfile = tmp_path / "postmaster.pid"
    pidfile.write_text(f"{os.getpid()}\n/some/data/dir\n1700000000\n15432\n")

    assert read_pid(pidfile) == os.getpid()
    assert live_pid(pidfile, "python") == os.getpid()
    # Our own pid, but not the program the pidfile belongs to: a reused pid must never be stopped.
    assert live_pid(pidfile, "redis-server") is None
    assert live_pid(tmp_path / "missing.pid", "python") is None
    (tmp_path / "garbage.pid").write_text("not a pid")
    assert read_pid(tmp_path / "garbage.pid") is None
