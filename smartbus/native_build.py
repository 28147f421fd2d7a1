"""Compile the ETA core's hot modules with mypyc into SMARTBUS_NATIVE_DIR (see eta/native.py).

    python -m smartbus.native_build [--force]

Does nothing when the build there is already for the sources on disk. Needs mypy (which brings mypyc), a C
compiler and Python's headers; scripts/bootstrap.sh installs them. Run it on a source tree (mypy will not
compile modules in site-packages): the Dockerfile runs it in its copy of the sources, the same files it
installs. The build happens in a fresh directory that replaces the old one only once complete, so a failed
or interrupted build leaves the interpreted modules in use, never half a build.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from eta import native


def build(force: bool = False) -> str:
    target = native.native_dir()
    digest = native.source_digest()
    if not force and native.check_build(target) is None:
        return f"native build: up to date in {target}"
    # mypyc and setuptools only here: the service itself never needs them
    from mypyc.build import mypycify
    from setuptools import setup

    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="native-build-", dir=target.parent) as scratch:
        work = Path(scratch)
        sources = [
            str(native.PACKAGES_ROOT.joinpath(*name.split(".")).with_suffix(".py")) for name in native.COMPILED_MODULES
        ]
        output = work / "out"
        # Type-checked in CI under strict settings; here only what compiling needs, wherever the sources are
        config = work / "mypy.ini"
        config.write_text("[mypy]\nignore_missing_imports = True\n")
        cwd = os.getcwd()
        # setuptools reads a pyproject.toml in the working directory; ours is not a build of this extension
        os.chdir(work)
        try:
            extensions = mypycify(
                [f"--config-file={config}", *sources],
                opt_level="3",
                group_name=native.GROUP,
                target_dir=str(work / "c"),
            )
            setup(
                name="smartbus-eta-native",
                ext_modules=extensions,
                script_args=[
                    "--quiet",
                    "build_ext",
                    f"--build-lib={output}",
                    f"--build-temp={work / 'objects'}",
                    f"--parallel={os.cpu_count() or 1}",
                ],
            )
        finally:
            os.chdir(cwd)
        if native.source_digest() != digest:
            raise SystemExit("native build: the sources changed while they were compiled; run it again")
        (output / native.MANIFEST).write_text(
            json.dumps(
                {"digest": digest, "suffix": native.extension_suffix(), "modules": list(native.COMPILED_MODULES)},
                indent=1,
            )
            + "\n"
        )
        problem = native.check_build(output)
        if problem is not None:
            raise SystemExit(f"native build: the new build is unusable: {problem}")
        retired = work / "retired"
        if target.exists():
            target.rename(retired)
        output.rename(target)
    took = time.monotonic() - started
    return f"native build: compiled {len(native.COMPILED_MODULES)} modules into {target} in {took:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="build even when the build on disk is current")
    args = parser.parse_args()
    print(build(force=args.force))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
