"""`rulec compile`: a policy's kernel side, built into OUTDIR.

OUTDIR/
  gen/policy.h        the policy's filter fragments (codegen/cbackend.py)
  probe.bpf.o         ebpf/probe.bpf.c compiled against gen/policy.h (CO-RE)
  features.bpf.o      the feature-probe programs (`rsagent probe`)
  manifest.json       what the agent needs to trust and use the objects

The manifest records the policy's digest (sha256 over the policy files'
names and contents, in load order), the filter *shape* digest (which checks
each event type performs; an object built for one policy serves any other
policy with the same shape), the per-type filters with their values (for
the reader; the agent recomputes them from the policy it loads), the event
types, the ABI version of events.h, the compiler used, and the sha256 of
each object: the agent refuses an object whose bytes differ
(:func:`verify_objects`). Directories this creates are 0700 and the files
it writes 0600: the agent loads them as root.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from .cbackend import TypeFilter, kernel_filters, render_policy_header, shape_digest
from agent.clang import EBPF, BuildError, clang_version, compile_object, write_if_changed
from .policy import LoadResult, load_policies

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2  # 2: objects' sha256


class ManifestError(ValueError):
    """A compiled-policy directory that cannot be used."""


def policy_digest(files: Sequence[str | Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        p = Path(f)
        h.update(str(p.resolve()).encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def abi_version() -> int:
    from agent.clang import EBPF as ebpf

    for line in (ebpf / "include" / "events.h").read_text().splitlines():
        if line.startswith("#define RS_ABI_VERSION"):
            return int(line.split()[2])
    raise BuildError("events.h has no RS_ABI_VERSION")


@dataclass(frozen=True)
class Manifest:
    policy_sha256: str
    shape_sha256: str
    files: tuple[str, ...]
    event_types: tuple[str, ...]
    filters: dict[str, dict[str, Any]]
    abi: int
    compiler: str
    sha256: dict[str, str]  # object file name -> sha256 of its bytes
    probe_object: str = "probe.bpf.o"
    features_object: str = "features.bpf.o"

    @property
    def objects(self) -> tuple[str, ...]:
        return (self.probe_object, self.features_object)

    def to_json(self) -> str:
        return json.dumps({
            "format": MANIFEST_FORMAT,
            "policy_sha256": self.policy_sha256,
            "shape_sha256": self.shape_sha256,
            "files": list(self.files),
            "event_types": list(self.event_types),
            "filters": self.filters,
            "abi": self.abi,
            "compiler": self.compiler,
            "objects": {"probe": self.probe_object, "features": self.features_object},
            "sha256": dict(sorted(self.sha256.items())),
        }, indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, outdir: Path) -> Manifest:
        path = outdir / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ManifestError(f"{path}: not a manifest (a JSON object); recompile with `rulec compile`")
        except FileNotFoundError:
            raise ManifestError(f"{path}: no manifest; compile the policy with `rulec compile POLICY -o {outdir}`") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ManifestError(f"{path}: unreadable manifest ({exc}); recompile with `rulec compile`") from exc
        if data.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{path}: manifest format {data.get('format')!r}, this agent reads "
                                f"{MANIFEST_FORMAT}; recompile with this version's `rulec compile`")
        try:
            return cls(
                policy_sha256=data["policy_sha256"], shape_sha256=data["shape_sha256"],
                files=tuple(data["files"]), event_types=tuple(data["event_types"]),
                filters=data["filters"], abi=int(data["abi"]), compiler=data["compiler"],
                sha256={str(k): str(v) for k, v in data["sha256"].items()},
                probe_object=_object_name(data["objects"]["probe"]),
                features_object=_object_name(data["objects"]["features"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ManifestError(f"{path}: incomplete manifest ({exc}); recompile with `rulec compile`") from exc


def _object_name(name: object) -> str:
    """An object's file name from a manifest: a plain name inside the directory."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"object name {name!r} is not a file name")
    return name


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_objects(directory: Path, manifest: Manifest) -> None:
    """Each object's bytes are those `rulec compile` recorded, or ManifestError."""
    for name in manifest.objects:
        path = directory / name
        want = manifest.sha256.get(name)
        if want is None:
            raise ManifestError(f"{directory / MANIFEST}: no sha256 for {name}; recompile with `rulec compile`")
        try:
            got = file_sha256(path)
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read ({exc.strerror or exc}); run `rulec compile` again") from exc
        if got != want:
            raise ManifestError(f"{path}: sha256 {got[:16]}... does not match the manifest's {want[:16]}...: "
                                f"the object changed after `rulec compile`; refusing to load it "
                                f"(restore it, or compile the policy again)")


@dataclass(frozen=True)
class Compiled:
    outdir: Path
    manifest: Manifest
    filters: dict[str, TypeFilter]
    rebuilt: bool


def _recorded(outdir: Path) -> dict[str, str]:
    """The objects' sha256 in OUTDIR's current manifest, if it has a readable one."""
    try:
        return Manifest.read(outdir).sha256
    except ManifestError:
        return {}


def _private(path: Path) -> None:
    os.chmod(path, 0o700 if path.is_dir() else 0o600)


def compile_loaded(result: LoadResult, outdir: Path, *, force: bool = False) -> Compiled:
    """Build OUTDIR for an already loaded (and valid) policy.

    An object that looks up to date (newer than its sources) but whose bytes
    are not those the manifest recorded is rebuilt, with a warning: the
    manifest is written from objects this function built or verified."""
    filters = kernel_filters(result.ruleset)
    digest = policy_digest(result.files)
    gen = outdir / "gen"
    for d in (outdir, gen):
        if not d.exists():
            d.mkdir(parents=True, exist_ok=True)
            _private(d)
    recorded = _recorded(outdir)
    write_if_changed(gen / "policy.h", render_policy_header(filters))
    _private(gen / "policy.h")
    rebuilt = False
    hashes: dict[str, str] = {}
    for source, name, includes in ((EBPF / "probe.bpf.c", "probe.bpf.o", [gen]),
                                   (EBPF / "features.bpf.c", "features.bpf.o", [])):
        target = outdir / name
        built = compile_object(source, target, extra_includes=includes, force=force)
        hashes[name] = file_sha256(target)
        if not built and recorded.get(name) not in (None, hashes[name]):
            log.warning("%s: not the object the manifest recorded (changed after compiling?); rebuilding it", target)
            built = compile_object(source, target, extra_includes=includes, force=True)
            hashes[name] = file_sha256(target)
        _private(target)
        rebuilt |= built
    manifest = Manifest(
        policy_sha256=digest,
        shape_sha256=shape_digest(filters),
        files=tuple(result.files),
        event_types=tuple(sorted(filters)),
        filters={t: f.manifest() for t, f in sorted(filters.items())},
        abi=abi_version(),
        compiler=clang_version(),
        sha256=hashes,
    )
    write_if_changed(outdir / MANIFEST, manifest.to_json())
    _private(outdir / MANIFEST)
    return Compiled(outdir, manifest, filters, rebuilt)


def compile_policy(paths: Sequence[str | Path], outdir: Path, *, force: bool = False) -> tuple[LoadResult, Compiled | None]:
    result = load_policies(paths)
    if not result.ok:
        return result, None
    return result, compile_loaded(result, outdir, force=force)


def clean(outdir: Path) -> None:
    if (outdir / MANIFEST).exists():
        shutil.rmtree(outdir)
