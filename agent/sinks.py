"""Where event documents and alerts go: stdout, or a JSON-lines file.

``-``/``stdout``: one JSON document per line on standard output.
``jsonl:PATH``: appended to PATH, one per line, flushed after each.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Protocol, TextIO


class Sink(Protocol):
    name: str

    def write(self, doc: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class SinkError(ValueError):
    """A --output value that names no usable sink."""


def dumps(doc: dict[str, Any]) -> str:
    # ASCII only: a raw U+2028 or U+0085 in a path would split the line for
    # many line-oriented readers; \uXXXX escapes keep one document per line.
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))


class StreamSink:
    """One JSON document per line on a stream's file descriptor.

    Lines are buffered here and written with ``os.write``, looping over
    short writes. A signal (SIGTERM at shutdown) that interrupts a blocked
    write to a full pipe makes write(2) return short; through CPython's
    buffered text layer that has been seen to lose the rest of a large
    document (the next one glued to its first half). ``flush_each`` writes
    every document at once (files); otherwise documents wait for ``flush``
    (after each ring-buffer batch) or for 64 KiB.
    """

    _HIGH_WATER = 64 * 1024

    def __init__(self, stream: TextIO, name: str, *, flush_each: bool) -> None:
        self._stream = stream
        self.name = name
        self._flush_each = flush_each
        stream.flush()
        self._fd = stream.fileno()
        self._pending = bytearray()

    def write(self, doc: dict[str, Any]) -> None:
        self._pending += (dumps(doc) + "\n").encode("utf-8", "backslashreplace")
        if self._flush_each or len(self._pending) >= self._HIGH_WATER:
            self.flush()

    def flush(self) -> None:
        view = memoryview(self._pending)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        finally:
            written = len(self._pending) - len(view)
            view.release()
            del self._pending[:written]

    def close(self) -> None:
        self.flush()
        if self._stream is not sys.stdout:
            self._stream.close()


def open_sink(spec: str) -> Sink:
    if spec in ("-", "stdout"):
        return StreamSink(sys.stdout, "stdout", flush_each=False)  # flushed after each ring-buffer batch
    if spec.startswith("jsonl:"):
        path = Path(spec[len("jsonl:"):])
        if not path.name:
            raise SinkError(f"--output {spec}: jsonl: needs a file path, e.g. jsonl:/var/log/rsagent.jsonl")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = open(path, "a", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise SinkError(f"--output {spec}: cannot open {path}: {exc.strerror}") from exc
        return StreamSink(stream, spec, flush_each=True)
    raise SinkError(f"--output {spec}: unknown sink (use '-', 'stdout' or 'jsonl:PATH')")


class Sinks:
    """Every --output at once: write to all, flush all, close all."""

    name = "sinks"

    def __init__(self, specs: list[str] | None) -> None:
        self.sinks: list[Sink] = []
        try:
            for spec in specs or ["-"]:
                self.sinks.append(open_sink(spec))
        except SinkError:
            self.close()
            raise

    def write(self, doc: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.write(doc)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def __enter__(self) -> Sinks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
