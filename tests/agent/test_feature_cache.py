"""The feature probe's cache (agent/featurecache.py): used only under the key
it was written with (boot, kernel, lockdown, libbpf, features object), only
from a root-only file in a root-only directory; written 0600 in a 0700
directory. Real files, real ownership and modes; no BPF is loaded: the
"features object" here is a file whose bytes are the key, and a report read
back from a valid cache proves no probe ran (this file is not an ELF)."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from agent import featurecache
from agent.features import Feature, FeatureReport

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership checks need root")


def _report() -> FeatureReport:
    features = {"tracepoint": Feature("tracepoint", "syscall tracepoints", True, "loaded and attached", "4.7"),
                "ringbuf": Feature("ringbuf", "BPF ring buffer", True, "loaded and attached", "5.8"),
                "kprobe": Feature("kprobe", "kprobes", True, "loaded and attached", "4.1")}
    return FeatureReport(kernel="6.18.0", arch="x86_64", libbpf="1.1.2", btf=True, lockdown="none",
                         features=features)


@pytest.fixture
def cache(tmp_path: Path) -> tuple[Path, Path]:
    obj = tmp_path / "features.bpf.o"
    obj.write_bytes(b"not an ELF: probing it would raise")
    return obj, tmp_path / "run"


def test_saved_report_is_read_back_without_probing(cache: tuple[Path, Path]) -> None:
    obj, directory = cache
    featurecache.save(_report(), obj, directory)
    path = directory / featurecache.CACHE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    report = featurecache.cached_probe(obj, directory)   # a probe of this file would raise
    assert {n: f.available for n, f in report.features.items()} == {"tracepoint": True, "ringbuf": True,
                                                                    "kprobe": True}
    assert report.hook_set                                # derived again, not stored
    assert report.coverage


@pytest.mark.parametrize("field", ["boot_id", "kernel", "lockdown", "libbpf", "probes"])
def test_another_boot_kernel_or_probe_list_invalidates(cache: tuple[Path, Path], field: str) -> None:
    obj, directory = cache
    featurecache.save(_report(), obj, directory)
    path = directory / featurecache.CACHE_NAME
    data = json.loads(path.read_text())
    data["key"][field] = "something else"
    path.write_text(json.dumps(data))
    assert featurecache.load(obj, directory) is None


def test_another_features_object_invalidates(cache: tuple[Path, Path]) -> None:
    obj, directory = cache
    featurecache.save(_report(), obj, directory)
    assert featurecache.load(obj, directory) is not None
    obj.write_bytes(b"rebuilt: other probes")
    assert featurecache.load(obj, directory) is None


def test_file_another_user_could_write_is_ignored(cache: tuple[Path, Path]) -> None:
    obj, directory = cache
    featurecache.save(_report(), obj, directory)
    path = directory / featurecache.CACHE_NAME
    os.chmod(path, 0o644)                     # readable by others: not root-only
    assert featurecache.load(obj, directory) is None
    os.chmod(path, 0o600)
    assert featurecache.load(obj, directory) is not None
    os.chown(path, NOBODY, NOBODY)            # written by someone else
    assert featurecache.load(obj, directory) is None


def test_directory_another_user_owns_is_ignored_and_not_written(cache: tuple[Path, Path]) -> None:
    obj, directory = cache
    featurecache.save(_report(), obj, directory)
    os.chown(directory, NOBODY, NOBODY)       # nobody could swap the file
    assert featurecache.load(obj, directory) is None
    (directory / featurecache.CACHE_NAME).unlink()
    featurecache.save(_report(), obj, directory)
    assert not (directory / featurecache.CACHE_NAME).exists()


def test_symlink_is_not_followed(cache: tuple[Path, Path], tmp_path: Path) -> None:
    obj, directory = cache
    elsewhere = tmp_path / "elsewhere"
    featurecache.save(_report(), obj, elsewhere)
    directory.mkdir(mode=0o700)
    (directory / featurecache.CACHE_NAME).symlink_to(elsewhere / featurecache.CACHE_NAME)
    assert featurecache.load(obj, directory) is None


def test_malformed_file_is_ignored(cache: tuple[Path, Path]) -> None:
    obj, directory = cache
    featurecache.save(_report(), obj, directory)
    (directory / featurecache.CACHE_NAME).write_text("{not json")
    assert featurecache.load(obj, directory) is None


def test_what_the_cache_says_is_missing_is_probed_again(built_objects: None, tmp_path: Path) -> None:
    """A probe run without CAP_BPF (tests/deploy: `rsagent probe` under a bounded capability
    set) records every feature missing: the next start must probe those again, for real,
    not run without a hook set for the rest of the boot."""
    from agent.features import probe
    from agent.objects import object_path

    obj, directory = object_path("features.bpf.o"), tmp_path / "run"
    real = probe(obj)
    assert real.hook_set, real.hook_set_reason
    denied = {n: Feature(n, f.description, False, "load failed: Operation not permitted", f.min_kernel)
              for n, f in real.features.items()}
    featurecache.save(FeatureReport(kernel=real.kernel, arch=real.arch, libbpf=real.libbpf, btf=real.btf,
                                    lockdown=real.lockdown, features=denied), obj, directory)
    report = featurecache.cached_probe(obj, directory)
    assert report.hook_set == real.hook_set
    assert {n: f.available for n, f in report.features.items()} == {n: f.available for n, f in real.features.items()}
    again = featurecache.load(obj, directory)                 # rewritten with what works
    assert again is not None and again.has("tracepoint") and again.hook_set == real.hook_set
