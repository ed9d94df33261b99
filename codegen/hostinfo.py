"""Facts about the host for rule ``filters`` (``kernel.version.major >= 5``)."""
from __future__ import annotations

import os
import re
import socket
from typing import Any

ORIGIN = "ebpf"


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip().strip('"')
    return out


def host_document(release: str | None = None, os_release: str | None = None,
                  environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The host document host filters evaluate on (HOST_REGISTRY paths)."""
    if release is None:
        release = os.uname().release
    if os_release is None:
        try:
            with open("/etc/os-release", encoding="utf-8") as f:
                os_release = f.read()
        except OSError:
            os_release = ""
    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)", release)
    major, minor, patch, rest = (m.groups() if m else ("0", "0", "0", release))
    abi = re.match(r"-(\d+)", rest or "")
    info = parse_os_release(os_release)
    os_id = info.get("ID", "").lower()
    like = info.get("ID_LIKE", "").lower().split()
    version = info.get("VERSION_ID", "")
    rhel = os_id in ("rhel", "centos", "rocky", "almalinux") or "rhel" in like
    sles = os_id in ("sles", "sled")
    env = os.environ if environ is None else environ
    return {
        "kernel": {"version": {"major": int(major or 0), "minor": int(minor or 0),
                               "patch": int(patch or 0), "abi": int(abi.group(1)) if abi else 0,
                               "flavor": (rest or "").lstrip("-.+")},
                   "core": {"enabled": True}},  # the agent needs BTF (docs/kernels.md)
        "envs": [f"{k}={v}" for k, v in env.items()],
        "origin": ORIGIN,
        "hostname": socket.gethostname(),
        "os": {
            "kind": "linux",
            "name": info.get("PRETTY_NAME", info.get("NAME", "")), "id": os_id,
            "platform_id": info.get("PLATFORM_ID", ""), "version_id": version,
            "is_amazon_linux": os_id == "amzn", "is_cos": os_id == "cos",
            "is_debian": os_id == "debian", "is_oracle": os_id == "ol",
            "is_rhel": rhel, "is_rhel7": rhel and version.startswith("7"),
            "is_rhel8": rhel and version.startswith("8"), "is_sles": sles,
            "is_sles12": sles and version.startswith("12"), "is_sles15": sles and version.startswith("15"),
            "is_ubuntu": os_id == "ubuntu",
        },
    }
