"""Where the agent finds its data: a source checkout or an installed package.

Run from a source checkout (``ebpf/`` and ``rules/`` beside ``agent/``, or
``$RSAGENT_SRC``), everything comes from the checkout: objects from
``build/ebpf``, the default policy ``rules/``, compiled policies cached in
``build/policies``. An installed package (``pip install .``, the container
image) has no checkout: its data lives in ``$RSAGENT_DATA_DIR``, by default
``/usr/lib/rsagent``, laid out as

    ebpf/probe.bpf.o, ebpf/features.bpf.o   the prebuilt CO-RE objects
    rules/                                 the default policy
    policies/<filter shape>/               the default policy, compiled

which ``python -m agent.build --install-data DIR`` fills from a built
checkout (`make image` does). The directory must be writable only by root:
the agent loads what it finds there.
"""

from __future__ import annotations

import os
from pathlib import Path

from .clang import ROOT

DATA_DIR = Path(os.environ.get("RSAGENT_DATA_DIR", "/usr/lib/rsagent"))


def source_checkout() -> Path | None:
    return ROOT if (ROOT / "ebpf").is_dir() and (ROOT / "rules").is_dir() else None


def objects_dir() -> Path:
    src = source_checkout()
    return src / "build" / "ebpf" if src is not None else DATA_DIR / "ebpf"


def default_policy() -> Path:
    src = source_checkout()
    return src / "rules" if src is not None else DATA_DIR / "rules"


def policy_cache() -> Path:
    src = source_checkout()
    return src / "build" / "policies" if src is not None else DATA_DIR / "policies"
