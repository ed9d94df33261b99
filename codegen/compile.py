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
types, the ABI version of events.h and the compiler used.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from .cbackend import TypeFilter, kernel_filters, render_policy_header, shape_digest
from agent.clang import EBPF, BuildError, clang_version, compile_object, write_if_changed
from .policy import LoadResult, load_policies

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


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
    probe_object: str = "probe.bpf.o"
    features_object: str = "features.bpf.o"

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
        }, indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, outdir: Path) -> Manifest:
        path = outdir / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ManifestError(f"{path}: no manifest; compile the policy with `rulec compile POLICY -o {outdir}`") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path}: unreadable manifest ({exc}); recompile with `rulec compile`") from exc
        if data.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{path}: manifest format {data.get('format')!r}, this agent reads "
                                f"{MANIFEST_FORMAT}; recompile with this version's `rulec compile`")
        try:
            return cls(
                policy_sha256=data["policy_sha256"], shape_sha256=data["shape_sha256"],
                files=tuple(data["files"]), event_types=tuple(data["event_types"]),
                filters=data["filters"], abi=int(data["abi"]), compiler=data["compiler"],
                probe_object=data["objects"]["probe"], features_object=data["objects"]["features"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{path}: incomplete manifest ({exc}); recompile with `rulec compile`") from exc


@dataclass(frozen=True)
class Compiled:
    outdir: Path
    manifest: Manifest
    filters: dict[str, TypeFilter]
    rebuilt: bool


def compile_loaded(result: LoadResult, outdir: Path, *, force: bool = False) -> Compiled:
    """Build OUTDIR for an already loaded (and valid) policy."""
    filters = kernel_filters(result.ruleset)
    digest = policy_digest(result.files)
    gen = outdir / "gen"
    write_if_changed(gen / "policy.h", render_policy_header(filters))
    rebuilt = compile_object(EBPF / "probe.bpf.c", outdir / "probe.bpf.o", extra_includes=[gen], force=force)
    rebuilt |= compile_object(EBPF / "features.bpf.c", outdir / "features.bpf.o", force=force)
    manifest = Manifest(
        policy_sha256=digest,
        shape_sha256=shape_digest(filters),
        files=tuple(result.files),
        event_types=tuple(sorted(filters)),
        filters={t: f.manifest() for t, f in sorted(filters.items())},
        abi=abi_version(),
        compiler=clang_version(),
    )
    write_if_changed(outdir / MANIFEST, manifest.to_json())
    return Compiled(outdir, manifest, filters, rebuilt)


def compile_policy(paths: Sequence[str | Path], outdir: Path, *, force: bool = False) -> tuple[LoadResult, Compiled | None]:
    result = load_policies(paths)
    if not result.ok:
        return result, None
    return result, compile_loaded(result, outdir, force=force)


def clean(outdir: Path) -> None:
    if (outdir / MANIFEST).exists():
        shutil.rmtree(outdir)
