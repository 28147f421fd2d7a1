"""The ETA core's hot modules compiled by mypyc, used only when built from exactly the sources on disk.

The per-ping path (matching, tracking, predicting, replay) is plain typed Python; mypyc compiles those same
modules to C extensions (`python -m smartbus.native_build`, run by scripts/bootstrap.sh) for 2 to 3
times the speed with the same results: the compiled and interpreted replays are compared byte for byte in the
tests. The build goes to its own directory, never next to the sources, with a manifest naming the digest
of the sources it was built from. At the first `import eta...` the manifest is checked: when the sources
have changed since (an edit, a checkout), or the build is for another Python, the interpreted modules are
used, as correct as ever, until the next build. So a stale build can never run in place of new code.

SMARTBUS_NATIVE=0 turns the compiled modules off; SMARTBUS_NATIVE_DIR moves the build (default var/native
beside the packages).

Writing for mypyc: a module constant marked Final is inlined (a plain global is a dictionary look-up on every
use), but not a tuple: mypy 2.4's mypyc leaves a Final tuple unset (NameError "value for final name ... was
not set" at its first use), so tuples stay plain globals. The replay comparison in the tests catches that.
Where perf found the compiled per-ping path slow, the cause was code compiled as generic object operations:
values of no declared type (numpy's tolist() gives Any: annotate the attribute), `**` on floats (math.pow is
the same C pow, compiled in), calls out to Python (the bisect module, built-in round: eta.bisection,
eta.rounding), a dataclass's __init__ (mypyc keeps the generated one interpreted: write it out where one is
built per ping), and reading the fields of an interpreted class such as Ping (read each once).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Final

# The modules every ping goes through. Not the network compiler: it runs once per feed, mostly in pandas.
COMPILED_MODULES: Final = (
    "eta.assignment",
    "eta.bisection",
    "eta.engine",
    "eta.matching",
    "eta.prediction.blocks",
    "eta.prediction.estimate",
    "eta.prediction.predictor",
    "eta.prediction.recorder",
    "eta.prediction.schedule_board",
    "eta.prediction.travel_model",
    "eta.prediction.trip_plan",
    "eta.replay",
    "eta.rounding",
    "eta.stop_timing",
    "eta.timeline",
    "eta.tracker",
    "eta.tracking_context",
    # every ping is validated again as the ETA worker reads it (the topic is a boundary too): 6.2 us a ping
    # interpreted, 3.8 compiled (timeit on this machine; orjson's parse and the Ping are 1.5 of those)
    "ingest.validate",
)
# mypyc puts the compiled code of every module in one shared library, imported by this top-level name.
GROUP: Final = "smartbus_eta"
SHARED_LIBRARY: Final = f"{GROUP}__mypyc"
MANIFEST: Final = "manifest.json"
# Every module a compiled one may have taken types or constants from lives in these packages.
HASHED_PACKAGES: Final = ("eta", "ingest", "smartbus")

PACKAGES_ROOT: Final = Path(__file__).resolve().parents[1]


def native_dir() -> Path:
    configured = os.environ.get("SMARTBUS_NATIVE_DIR")
    return Path(configured) if configured else PACKAGES_ROOT / "var" / "native"


def extension_suffix() -> str:
    # e.g. ".cpython-311-x86_64-linux-gnu.so": names the interpreter and platform the build is for
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def source_digest(root: Path = PACKAGES_ROOT) -> str:
    """sha256 over the path and bytes of every module in HASHED_PACKAGES, and the list of compiled modules."""
    digest = hashlib.sha256()
    digest.update("\n".join(COMPILED_MODULES).encode())
    for package in HASHED_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def module_file(build: Path, name: str) -> Path:
    return build.joinpath(*name.split(".")).with_name(name.rsplit(".", 1)[-1] + extension_suffix())


class _CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled build of the modules it was given, ahead of the interpreted sources."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(fullname, file)


def check_build(build: Path) -> str | None:
    """Why the build in `build` cannot be used for the sources on disk, or None when it can."""
    try:
        manifest = json.loads((build / MANIFEST).read_text())
    except FileNotFoundError:
        return "not built"
    except (OSError, ValueError) as error:
        return f"unreadable manifest ({error})"
    if manifest.get("suffix") != extension_suffix():
        return f"built for {manifest.get('suffix')}, this interpreter needs {extension_suffix()}"
    if manifest.get("digest") != source_digest():
        return "stale: the sources changed since it was built"
    missing = [name for name in (*COMPILED_MODULES, SHARED_LIBRARY) if not module_file(build, name).is_file()]
    if missing:
        return f"incomplete: {', '.join(missing)} missing"
    return None


def _install() -> str:
    if os.environ.get("SMARTBUS_NATIVE", "1") == "0":
        return "interpreted (SMARTBUS_NATIVE=0)"
    build = native_dir()
    problem = check_build(build)
    if problem is not None:
        return f"interpreted (compiled build {problem})"
    already = [name for name in COMPILED_MODULES if name in sys.modules]
    if already:  # imported before this module ran: mixing the two would break the compiled modules' calls
        return f"interpreted ({already[0]} was imported first)"
    files = {name: module_file(build, name) for name in (*COMPILED_MODULES, SHARED_LIBRARY)}
    sys.meta_path.insert(0, _CompiledFinder(files))
    return f"compiled by mypyc ({build})"


# What this process runs, for benchmarks and logs to print beside their figures.
STATUS: Final = _install()
