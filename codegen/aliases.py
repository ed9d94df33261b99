"""Legacy field names of the reference agent, read as today's fields.

Policies written for its early releases (2020-2021) use names such as
``chmod.mode`` or ``open.filename``; the reference agent still accepts them
as aliases. Each maps to the field it stands for; an alias whose field this
agent lacks is ignored (the field is then unknown, as any other).
"""
from __future__ import annotations

_FILE_EVENTS = ("chmod", "chown", "open", "mkdir", "rmdir", "unlink", "utimes", "setxattr", "removexattr",
                "exec", "process", "process.ancestors")


def _aliases() -> dict[str, str]:
    out = {}
    for event in _FILE_EVENTS:
        out[f"{event}.filename"] = f"{event}.file.path"
        out[f"{event}.basename"] = f"{event}.file.name"
    for event in ("chmod", "open", "mkdir"):
        out[f"{event}.mode"] = f"{event}.file.destination.mode"
    for attr in ("uid", "gid", "user", "group"):
        out[f"chown.{attr}"] = f"chown.file.destination.{attr}"
    for old, new in (("old", "file"), ("new", "file.destination")):
        for attr, field in (("filename", "path"), ("basename", "name")):
            out[f"rename.{old}.{attr}"] = f"rename.{new}.{field}"
    for old, new in (("source", "file"), ("target", "file.destination")):
        for attr, field in (("filename", "path"), ("basename", "name")):
            out[f"link.{old}.{attr}"] = f"link.{new}.{field}"
    for event in ("setxattr", "removexattr"):
        for attr in ("name", "namespace"):
            out[f"{event}.{attr}"] = f"{event}.file.destination.{attr}"
    for prefix in ("exec", "process", "process.ancestors"):
        out[f"{prefix}.name"] = f"{prefix}.comm"
    return out


LEGACY_ALIASES: dict[str, str] = _aliases()
