"""The feature probe's answers, kept for the rest of the boot.

Probing (agent/features.py) loads and attaches 14 programs, ~0.5 s of every
start. What it learns holds until the kernel changes: the cache file
(``/run/rsagent/features.json``, a tmpfs emptied at boot) holds the
features with the key they were probed under: the boot id, the kernel's
release and build, the lockdown mode, the libbpf version, the digest of
features.bpf.o and of the list of probes (HOOK_KINDS, EXTRA_CHECKS). Any
of these differing, or the file not being root's alone (owner root, no
one else can write it or any directory above it), and the agent probes
again and rewrites it (0600, in a 0700 directory).

The hook set and its coverage are derived from the features each time,
not cached: they come from this code, not from the kernel. Only the
features that worked are taken from the file: those it records as missing
are probed again at each start (see cached_probe).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import stat
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .features import EXTRA_CHECKS, HOOK_KINDS, Feature, FeatureReport, coverage, lockdown, probe, reprobe
from .libbpf.probe import libbpf_version_string
from .safefile import write_replace
from .trust import path_problems, private_dir

log = logging.getLogger(__name__)

CACHE_DIR = Path(os.environ.get("RSAGENT_RUN_DIR", "/run/rsagent"))
CACHE_NAME = "features.json"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
FORMAT = 1


def cache_key(features_object: Path) -> dict[str, str]:
    """What the probe's answers depend on; a cached answer under another key is stale."""
    kinds = repr([(k.name, k.program, k.maps, k.attach) for k in HOOK_KINDS + EXTRA_CHECKS])
    return {
        "format": str(FORMAT),
        "boot_id": BOOT_ID.read_text().strip(),
        "kernel": f"{platform.release()} {platform.version()} {platform.machine()}",
        "lockdown": lockdown(),
        "libbpf": libbpf_version_string(),
        "object": hashlib.sha256(features_object.read_bytes()).hexdigest(),
        "probes": hashlib.sha256(kinds.encode()).hexdigest(),
    }


def _read_trusted(path: Path) -> str | None:
    """The file's text if root alone can have written it, else None (logged)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("feature cache %s unreadable (%s): probing again", path, exc)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077 or st.st_nlink != 1:
            log.warning("feature cache %s is not a root-only (0600, owner root) regular file: "
                        "ignored, probing again", path)
            return None
        problems = path_problems(path.parent, "feature cache directory")
        if problems:
            log.warning("feature cache ignored, probing again: %s", "; ".join(map(str, problems)))
            return None
        with os.fdopen(os.dup(fd), "r") as f:
            return f.read()
    finally:
        os.close(fd)


def _report(data: dict[str, Any]) -> FeatureReport:
    from .hooksets import choose_hook_set

    report = FeatureReport(kernel=data["kernel"], arch=data["arch"], libbpf=data["libbpf"], btf=data["btf"],
                           lockdown=data["lockdown"],
                           features={n: Feature(**f) for n, f in data["features"].items()})
    choice = choose_hook_set(report)
    report.hook_set, report.hook_set_reason = choice.name, choice.reason
    report.coverage = coverage(report)
    return report


def load(features_object: Path, directory: Path = CACHE_DIR) -> FeatureReport | None:
    """The cached report for this boot, kernel and object, or None."""
    text = _read_trusted(directory / CACHE_NAME)
    if text is None:
        return None
    try:
        data = json.loads(text)
        if data.get("key") != cache_key(features_object):
            log.info("feature cache %s is stale (another boot, kernel, libbpf or object): probing again",
                     directory / CACHE_NAME)
            return None
        report = _report(data["report"])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("feature cache %s is malformed (%s): probing again", directory / CACHE_NAME, exc)
        return None
    return report


def save(report: FeatureReport, features_object: Path, directory: Path = CACHE_DIR) -> None:
    """Write ``report`` for the next start (0600 in a 0700 directory); a failure is logged only."""
    data = {"key": cache_key(features_object),
            "report": {k: v for k, v in asdict(report).items() if k not in ("hook_set", "hook_set_reason",
                                                                            "coverage")}}
    try:
        private_dir(directory)
        problems = path_problems(directory, "feature cache directory")
        if problems:
            log.warning("feature cache not written: %s", "; ".join(map(str, problems)))
            return
        write_replace(directory / CACHE_NAME, json.dumps(data, indent=1) + "\n", mode=0o600)
    except OSError as exc:
        log.warning("feature cache %s not written: %s", directory / CACHE_NAME, exc)


def cached_probe(features_object: Path, directory: Path = CACHE_DIR) -> FeatureReport:
    """The features from the cache when it is valid, else probed (and cached).

    Only what the cache says *works* is trusted: a feature it records as
    missing is probed again at every start. A probe that failed for a
    passing reason (memory pressure, a run without CAP_BPF, such as `rsagent
    probe` under a bounded capability set) must not leave the agent without
    a hook set for the rest of the boot; on this kernel the failing probes
    (kprobe, fentry, lsm) fail fast."""
    report = load(features_object, directory)
    if report is not None:
        missing = sorted(n for n, f in report.features.items() if not f.available)
        if missing:
            reprobe(report, features_object, missing)
            if any(report.features[n].available for n in missing):
                log.info("features %s work now (the cache said missing): cache rewritten",
                         ", ".join(n for n in missing if report.features[n].available))
                save(report, features_object, directory)
        log.info("kernel features from %s (probed earlier this boot; %d missing there probed again)",
                 directory / CACHE_NAME, len(missing))
        return report
    t0 = time.monotonic()
    report = probe(features_object)
    save(report, features_object, directory)
    log.info("kernel features probed in %.2f s, kept in %s for this boot", time.monotonic() - t0,
             directory / CACHE_NAME)
    return report
