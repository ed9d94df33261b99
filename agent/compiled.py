"""Finding (or building) the compiled kernel side of a policy.

`rsagent run` needs the CO-RE objects `rulec compile` produced for the
policy it runs. Order:

1. ``--compiled DIR``: that directory; its manifest must match this agent's
   record ABI and the policy's filter *shape* (the checks compiled in). The
   values (basenames, masks) come from the policy itself, so an object built
   for a policy with the same shape is reused as is.
2. The cache ``<build>/policies/<filter shape sha256[:16]>/``: objects
   depend only on the policy's filter shape, so policies of one shape share
   one build.
   When clang is installed (a build machine), the cache is (re)built
   incrementally first, so it always matches the sources. On a monitored
   host without clang, a missing cache is an error that says to run
   `rulec compile`.

Either way the objects must be the bytes the manifest recorded (sha256),
and the directory, its manifest and objects — and, when the agent compiles
them itself, the sources — must be changeable by root only
(:mod:`agent.trust`; ``insecure`` logs the problems instead).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from codegen.cbackend import TypeFilter, kernel_filters, shape_digest
from agent.clang import CLANG_CANDIDATES, EBPF, ROOT
from codegen.compile import MANIFEST, Manifest, ManifestError, compile_loaded, policy_digest, verify_objects
from codegen.policy import LoadResult

from . import installdirs, trust
from .events.layout import layout

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path(os.environ.get("RSAGENT_POLICY_CACHE", installdirs.policy_cache()))


class CompiledPolicyError(RuntimeError):
    """No usable compiled objects for the policy."""


@dataclass(frozen=True)
class CompiledPolicy:
    directory: Path
    manifest: Manifest
    filters: dict[str, TypeFilter]

    @property
    def probe_object(self) -> Path:
        return self.directory / self.manifest.probe_object

    @property
    def features_object(self) -> Path:
        return self.directory / self.manifest.features_object


def _check(directory: Path, manifest: Manifest, filters: dict[str, TypeFilter], digest: str) -> None:
    abi = layout().const("RS_ABI_VERSION")
    if manifest.abi != abi:
        raise CompiledPolicyError(
            f"{directory}: objects built for record ABI {manifest.abi}, this agent reads ABI {abi}; "
            f"recompile with this version's `rulec compile`")
    shape = shape_digest(filters)
    if manifest.shape_sha256 != shape:
        raise CompiledPolicyError(
            f"{directory}: objects were compiled for a policy whose kernel filters differ from this "
            f"policy's; run `rulec compile POLICY... -o {directory}` again")
    if manifest.policy_sha256 != digest:
        log.info("%s: compiled for another version of the policy with the same filter shape; reusing it",
                 directory)
    for name in manifest.objects:
        if not (directory / name).is_file():
            raise CompiledPolicyError(f"{directory / name}: missing; run `rulec compile` again")


def _trusted(directory: Path, manifest: Manifest | None, insecure: bool) -> None:
    items = [(directory, "compiled objects directory")]
    if manifest is not None:
        items += [(directory / MANIFEST, "manifest")]
        items += [(directory / name, "BPF object") for name in manifest.objects]
    trust.check(items, insecure)


def _verified(directory: Path, manifest: Manifest) -> None:
    try:
        verify_objects(directory, manifest)
    except ManifestError as exc:
        raise CompiledPolicyError(str(exc)) from exc


def _sources_trusted(insecure: bool) -> None:
    """What the agent compiles into the kernel must be root's too."""
    items = [(EBPF, "BPF sources directory"), (ROOT / "vmlinux", "BPF sources directory")]
    items += [(p, "BPF source") for d in (EBPF, ROOT / "vmlinux") for p in sorted(d.rglob("*"))]
    trust.check(items, insecure)


def _clang_available() -> bool:
    return any(shutil.which(c) for c in CLANG_CANDIDATES)


def locate(result: LoadResult, explicit: Path | None = None, cache: Path | None = None,
           insecure: bool = False) -> CompiledPolicy:
    """The compiled objects for ``result``'s policy (see the module docstring).
    Raises :class:`CompiledPolicyError` or :class:`agent.trust.UntrustedPathError`."""
    cache = DEFAULT_CACHE if cache is None else cache
    filters = kernel_filters(result.ruleset)
    digest = policy_digest(result.files)
    if explicit is not None:
        if explicit.exists():  # (a missing one: the manifest's error says what to do)
            _trusted(explicit, None, insecure)
        try:
            manifest = Manifest.read(explicit)
        except ManifestError as exc:
            raise CompiledPolicyError(str(exc)) from exc
        _trusted(explicit, manifest, insecure)
        _check(explicit, manifest, filters, digest)
        _verified(explicit, manifest)
        return CompiledPolicy(explicit, manifest, filters)
    directory = cache / shape_digest(filters)[:16]
    if _clang_available() and installdirs.source_checkout() is not None:
        # A build machine: (re)build incrementally, so the objects always
        # match the sources (a no-op when they are up to date).
        if not cache.exists():
            trust.check([(cache.parent, "policy cache directory")], insecure)
            trust.private_dir(cache)
        trust.check([(cache, "policy cache directory")], insecure)
        _sources_trusted(insecure)
        compiled = compile_loaded(result, directory)
        if compiled.rebuilt:
            log.warning("compiled the policy's kernel filters into %s", directory)
        _trusted(directory, compiled.manifest, insecure)
        _verified(directory, compiled.manifest)
        return CompiledPolicy(directory, compiled.manifest, compiled.filters)
    try:
        manifest = Manifest.read(directory)
        _check(directory, manifest, filters, digest)
    except (ManifestError, CompiledPolicyError) as exc:
        raise CompiledPolicyError(
            f"no compiled objects for this policy ({exc}); on a build machine run "
            f"`rulec compile POLICY... -o DIR` and start the agent with --compiled DIR") from None
    _trusted(directory, manifest, insecure)
    _verified(directory, manifest)
    return CompiledPolicy(directory, manifest, filters)
