"""Install missing Debian packages, without letting their maintainer scripts start system services.

We run our own Redis and PostgreSQL on our own ports; Debian's would only take memory and ports.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from smartbus.services.process import run_checked

# invoke-rc.d asks this script whether a service may start; exit code 101 means "no".
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
_updated = False


def ensure_packages(packages: list[str]) -> None:
    """`apt-get install -y` the given packages (running `apt-get update` once per process first)."""
    global _updated
    if os.geteuid() != 0:
        from smartbus.errors import ServiceUnavailable

        raise ServiceUnavailable(f"installing {' '.join(packages)} needs root (apt-get); run as root or install it")
    if shutil.which("apt-get") is None:
        from smartbus.errors import ServiceUnavailable

        raise ServiceUnavailable(f"no apt-get on this machine: install {' '.join(packages)} by hand")
    # Other users of the machine may be running apt at the same time: wait for its lock instead of failing.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-q"]
    print(f"installing {' '.join(packages)} with apt-get ...", flush=True)
    started_at = time.monotonic()
    if not _updated:
        run_checked([*apt, "update"], "apt-get update")
        _updated = True
    placed_policy = False
    if not POLICY_RC_D.exists():
        POLICY_RC_D.write_text("#!/bin/sh\n# placed by smartbus services while installing packages\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
        placed_policy = True
    try:
        env_prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
        run_checked([*env_prefix, *apt, "install", "-y", "--no-install-recommends", *packages], "apt-get install")
    finally:
        if placed_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    print(f"installed {' '.join(packages)} in {time.monotonic() - started_at:.1f} s", flush=True)
