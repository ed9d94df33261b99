"""Trusted paths: only root may be able to change what the agent loads.

The agent runs as root and loads BPF objects into the kernel and policies
that decide what is detected. Whoever can write one of those files, or any
directory above it (replacing the file, or a directory, with their own),
can load code into the kernel or switch detection off. So before loading a
file the agent checks every component of its path, as written and with
symbolic links resolved, from ``/`` down:

- it must be owned by root;
- it must not be writable by its group (unless that group is root's, gid 0)
  or by others — except a directory with the sticky bit (``/tmp``): there
  others may add entries but not replace root's, which are checked next.

A problem is an error naming the component and who can write it; the
operator fixes it, or passes ``--insecure-paths`` (the problems are then
logged as warnings and the files loaded anyway).
"""
from __future__ import annotations

import grp
import logging
import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class UntrustedPathError(RuntimeError):
    """A file the agent would load can be changed by someone other than root."""


@dataclass(frozen=True)
class Problem:
    what: str        # "BPF object", "policy"...
    path: Path       # the file the agent would load
    component: Path  # the path component someone else can write
    reason: str      # "is writable by every user (mode 0777)"

    def __str__(self) -> str:
        where = "" if self.component == self.path else f": {self.component}"
        return (f"{self.what} {self.path}{where} {self.reason}; only root may be able to change what the agent "
                f"loads (fix: chown root {self.component} && chmod go-w {self.component}, "
                f"or run with --insecure-paths)")


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return f"group {grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        return f"gid {gid}"


def component_problem(st: os.stat_result) -> str | None:
    """Why a file or directory with this status can be changed by someone other than root."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):  # a symbolic link's own mode means nothing; its owner may replace it
        return None if st.st_uid == 0 else f"is a symbolic link owned by {_user(st.st_uid)}"
    if st.st_uid != 0:
        return f"is owned by {_user(st.st_uid)}"
    sticky = stat.S_ISDIR(mode) and bool(mode & stat.S_ISVTX)
    if mode & stat.S_IWOTH and not sticky:
        return f"is writable by every user (mode {stat.S_IMODE(mode):04o})"
    if mode & stat.S_IWGRP and st.st_gid != 0 and not sticky:
        return f"is writable by {_group(st.st_gid)} (mode {stat.S_IMODE(mode):04o})"
    return None


def _chain(path: Path) -> list[Path]:
    """``/``, ``/a``, ``/a/b``... up to ``path`` (absolute, not resolved)."""
    parts = path.parts
    return [Path(*parts[: i + 1]) for i in range(len(parts))]


def path_problems(path: Path, what: str) -> list[Problem]:
    """Every component of ``path`` (as written and resolved) someone else can write."""
    absolute = Path(os.path.abspath(path))
    resolved = Path(os.path.realpath(path))
    found: dict[Path, Problem] = {}
    for chain, lookup in ((_chain(absolute), os.lstat), (_chain(resolved), os.stat)):
        for component in chain:
            try:
                st = lookup(component)
            except OSError as exc:
                found.setdefault(component, Problem(what, absolute, component,
                                                    f"cannot be checked ({exc.strerror or exc})"))
                break
            reason = component_problem(st)
            if reason is not None:
                found.setdefault(component, Problem(what, absolute, component, reason))
            if stat.S_ISLNK(st.st_mode):
                break  # what it points at is checked on the resolved chain
    return list(found.values())


def check(paths: Iterable[tuple[Path, str]], insecure: bool) -> None:
    """Raise :class:`UntrustedPathError` naming every problem of ``paths``
    ((path, what) pairs), or log them as warnings when ``insecure``."""
    problems = [p for path, what in paths for p in path_problems(path, what)]
    if not problems:
        return
    if insecure:
        for p in problems:
            log.warning("--insecure-paths: loading anyway: %s", p)
        return
    raise UntrustedPathError("refusing to load " + "\n  and ".join(str(p) for p in problems))


def check_policies(policies: Iterable[Path], insecure: bool) -> None:
    """Policy files and directories, and each policy file a directory holds."""
    from codegen.policy import policy_files

    items: list[tuple[Path, str]] = []
    for p in policies:
        if not p.exists():
            continue  # loading reports it
        items.append((p, "policy directory" if p.is_dir() else "policy"))
        if p.is_dir():
            items += [(f, "policy") for f in policy_files(p)]
    check(items, insecure)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable and writable by root only (0700)."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    for p in reversed(missing):
        p.mkdir(mode=0o700, exist_ok=True)
        os.chmod(p, 0o700)  # mkdir's mode goes through the umask
    return path
