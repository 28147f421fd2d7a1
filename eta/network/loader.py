"""Load a feed's Network, compiling it once and caching the result on disk by the feed's content hash."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import time
import zipfile
from pathlib import Path

from eta.network.network import Network
from smartbus.errors import FeedError

log = logging.getLogger(__name__)

# Bump when the compiled format or the compiler's rules change, so stale caches are ignored.
# 2: names in other languages (translations.txt), agencies and the feed's language.
COMPILER_VERSION = 2


def feed_hash(feed: Path) -> str:
    """sha256 over the feed's .txt files (name and bytes, by name): a zip and its unpacked folder agree."""
    digest = hashlib.sha256()
    try:
        if feed.is_dir():
            members = sorted((p.name, p) for p in feed.iterdir() if p.is_file() and p.suffix == ".txt")
            for name, path in members:
                _add_member(digest, name, path.read_bytes())
        else:
            with zipfile.ZipFile(feed) as archive:
                names = sorted(
                    (Path(i.filename).name, i.filename)
                    for i in archive.infolist()
                    if not i.is_dir() and i.filename.endswith(".txt")
                )
                for name, member in names:
                    _add_member(digest, name, archive.read(member))
    except (OSError, zipfile.BadZipFile) as exc:
        raise FeedError(str(feed), f"cannot read the feed: {exc}") from exc
    return digest.hexdigest()


def _add_member(digest: hashlib._Hash, name: str, content: bytes) -> None:
    digest.update(name.encode())
    digest.update(len(content).to_bytes(8, "big"))
    digest.update(content)


def load_network(feed: Path, cache_dir: Path | None = None) -> Network:
    """The compiled network of a GTFS zip or folder; from `cache_dir` when compiled before (None = no cache)."""
    feed = Path(feed)
    if not feed.exists():
        raise FeedError(str(feed), "no such file or folder")
    content_hash = feed_hash(feed)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"network-{content_hash}-v{COMPILER_VERSION}.pickle"
        if cache_file.exists():
            try:
                with cache_file.open("rb") as f:
                    network = pickle.load(f)
                if isinstance(network, Network) and network.feed_hash == content_hash:
                    return network
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
                log.warning("ignoring unreadable network cache %s: %s", cache_file, exc)
    from eta.network.compiler import compile_network

    started = time.perf_counter()
    network = compile_network(feed, content_hash)
    log.info("compiled %s (%d trips) in %.2f s", feed.name, len(network.trips), time.perf_counter() - started)
    if cache_file is not None:
        _write_atomically(cache_file, pickle.dumps(network, protocol=pickle.HIGHEST_PROTOCOL))
    return network


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        log.warning("cannot write network cache %s: %s", path, exc)
