"""Find a Java runtime new enough for the Kafka broker (Kafka 4 needs Java 17), installing one if needed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from smartbus.services.apt import ensure_packages

MINIMUM_MAJOR = 17
DEBIAN_PACKAGE = "openjdk-17-jre-headless"
JVM_ROOT = Path("/usr/lib/jvm")


def java_major(version_output: str) -> int | None:
    """The major version from `java -version` output: 'version "17.0.15"' -> 17, 'version "1.8.0_402"' -> 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _major_of(java: str) -> int | None:
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    return java_major(result.stderr + result.stdout)


def find_java() -> str:
    """The `java` on PATH when it is 17 or newer; else Debian's OpenJDK 17, installed when missing."""
    on_path = shutil.which("java")
    if on_path is not None and (_major_of(on_path) or 0) >= MINIMUM_MAJOR:
        return on_path
    for candidate in sorted(JVM_ROOT.glob("java-17-openjdk-*/bin/java")):
        return str(candidate)
    ensure_packages([DEBIAN_PACKAGE])
    for candidate in sorted(JVM_ROOT.glob("java-17-openjdk-*/bin/java")):
        return str(candidate)
    from smartbus.errors import ServiceUnavailable

    raise ServiceUnavailable(f"installed {DEBIAN_PACKAGE} but found no java under {JVM_ROOT}")
