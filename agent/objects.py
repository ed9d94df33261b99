"""Where the compiled BPF objects are.

Order: ``--objects DIR``, then ``$RSAGENT_OBJECTS``, then ``build/ebpf`` of
the source checkout the agent runs from, or the installed data directory
(agent/installdirs.py). The monitored host only loads
objects; building them is `make build` (or `python -m agent.build`). An
object must be changeable by root only (:mod:`agent.trust`), unless
``insecure``.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import installdirs, trust


class ObjectsMissing(FileNotFoundError):
    """A compiled BPF object is not where the agent looks."""


def objects_dir(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    env = os.environ.get("RSAGENT_OBJECTS")
    if env:
        return Path(env)
    return installdirs.objects_dir()


def object_path(name: str, explicit_dir: Path | None = None, *, insecure: bool = False) -> Path:
    """The object ``name``; raises :class:`ObjectsMissing` or
    :class:`agent.trust.UntrustedPathError`."""
    d = objects_dir(explicit_dir)
    path = d / name
    if not path.is_file():
        raise ObjectsMissing(
            f"{path}: BPF object not found; build it with `make build` "
            f"(or `python -m agent.build`), or point --objects/RSAGENT_OBJECTS at a directory holding {name}"
        )
    trust.check([(path, "BPF object")], insecure)
    return path
