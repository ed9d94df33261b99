"""Parsing one --output value: ``TARGET[,key=value]...``.

Options follow the target after commas (``https://siem:8443/in,format=array,
ca=/etc/rsagent/ca.pem``); a comma inside a URL must be written ``%2C``.
Every option is read through ``SinkSpec`` so an unknown or malformed one is
a usage error naming the option and the sink.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

_OPTION_SPLIT = re.compile(r",(?=[a-z][a-z_]*=)")
_SIZE = re.compile(r"^(\d+)([kmg]?)i?b?$", re.IGNORECASE)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def parse_size(text: str) -> int | None:
    """Bytes of ``4096``, ``64k``, ``256M``, ``1GiB`` (None: not a size, or 0)."""
    m = _SIZE.match(text.strip())
    if not m or int(m.group(1)) == 0:
        return None
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def parse_seconds(text: str) -> float | None:
    """Seconds of ``5``, ``2.5s``, ``500ms``, ``1m`` (None: not a duration, or 0)."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        return None
    return float(m.group(1)) * {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0}[m.group(2)]


class SinkError(ValueError):
    """A --output value that names no usable sink."""


@dataclass
class SinkSpec:
    text: str
    target: str
    options: dict[str, list[str]] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, text: str) -> SinkSpec:
        target, *rest = _OPTION_SPLIT.split(text)
        spec = cls(text, target)
        for part in rest:
            key, _, value = part.partition("=")
            spec.options.setdefault(key, []).append(value)
        return spec

    def error(self, message: str) -> SinkError:
        return SinkError(f"--output {redact(self.text)}: {message}")

    def all(self, key: str) -> list[str]:
        self._used.add(key)
        return self.options.get(key, [])

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self.all(key)
        if len(values) > 1:
            raise self.error(f"option {key} given {len(values)} times")
        return values[0] if values else default

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.get(key, choices[0])
        assert value is not None
        if value not in choices:
            raise self.error(f"{key}={value}: expected one of {', '.join(choices)}")
        return value

    def integer(self, key: str, default: int, minimum: int = 1) -> int:
        value = self.get(key)
        if value is None:
            return default
        if not value.isdigit() or int(value) < minimum:
            raise self.error(f"{key}={value}: expected a whole number of at least {minimum}")
        return int(value)

    def size(self, key: str, default: int) -> int:
        """Bytes: ``4096``, ``64k``, ``256M``, ``1GiB``."""
        value = self.get(key)
        if value is None:
            return default
        size = parse_size(value)
        if size is None:
            raise self.error(f"{key}={value}: expected a size such as 4096, 64k, 256M or 1G")
        return size

    def duration(self, key: str, default: float) -> float:
        """Seconds: ``5``, ``2.5s``, ``500ms``, ``1m``."""
        value = self.get(key)
        if value is None:
            return default
        seconds = parse_seconds(value)
        if seconds is None:
            raise self.error(f"{key}={value}: expected a duration such as 5s, 500ms or 1m")
        return seconds

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise self.error(f"{key}={value}: expected true or false")

    def check_used(self) -> None:
        unknown = sorted(set(self.options) - self._used)
        if unknown:
            raise self.error(f"unknown option(s) {', '.join(unknown)} for this sink "
                             f"(it takes: {', '.join(sorted(self._used)) or 'none'})")


def redact(url: str) -> str:
    """A sink's text fit for a log line: no password, no query string (both
    may hold credentials), no option values but the harmless ones."""
    target, *rest = _OPTION_SPLIT.split(url)
    if "://" in target:
        scheme_prefix = ""
        if target.startswith("syslog:"):
            scheme_prefix, target = "syslog:", target[len("syslog:"):]
        try:
            parts = urlsplit(target)
            netloc = parts.hostname or ""
            if parts.username:
                netloc = f"{parts.username}@{netloc}"
            if parts.port:
                netloc = f"{netloc}:{parts.port}"
            target = scheme_prefix + urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        except ValueError:
            target = scheme_prefix + target.split("?", 1)[0]
    return ",".join([target, *(p.split("=", 1)[0] + "=..." for p in rest)])
