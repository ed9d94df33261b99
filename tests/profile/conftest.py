"""The profile tests reuse the network tests' lab (namespaces, veth pair, dnsmasq)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "net"))
