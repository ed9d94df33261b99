"""Flags and options of a command line, as the reference agent reads them
(``process.args_flags``, ``process.args_options``; docs/secl.md).

``args`` are the arguments after argv[0]. A flag argument starts with one
dash: ``-la`` gives the flags ``l``, ``a`` and ``la`` (each letter, and the
whole word when it is longer than one character and has no ``=``); a
double dash gives only the word: ``--verbose`` is ``verbose``. An option is
``NAME=VALUE``: from ``--name=value`` or ``-n=value``, or from ``--name``
/ ``-n`` followed by an argument that does not start with a dash.
"""
from __future__ import annotations

from collections.abc import Sequence


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def flags(args: Sequence[str]) -> list[str]:
    out: list[str] = []
    for arg in args:
        if len(arg) < 2 or arg[0] != "-":
            continue
        name, single = arg[1:], True
        if name.startswith("-"):
            name, single = name[1:], False
        if not name:
            continue
        if single and all(_alnum(c) for c in name):
            out.extend(name)
        if "=" not in name and len(name) > 1:
            out.append(name)
    return out


def options(args: Sequence[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if len(arg) > 1 and arg[0] == "-":
            name = arg[2:] if arg[1] == "-" else arg[1:]
            if name and _alnum(name[0]):
                if "=" in name:
                    out.append(name)
                elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                    out.append(f"{name}={args[i + 1]}")
                    i += 1
        i += 1
    return out
