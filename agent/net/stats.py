"""The DNS parser's kernel counters (map ``dns_stats``, enum rs_dns_stat in
events.h): what was parsed, skipped, and why malformed queries and
responses were not sent. Response counters are named ``response`` (every
response seen) and ``resp_*``."""

from __future__ import annotations

from ..events.layout import Layout
from ..libbpf.maps import Map

_PREFIX = "RS_DNS_STAT_"
# the reasons a query is malformed (the others are outcomes)
MALFORMED = ("truncated", "no_question", "bad_label", "name_too_long", "bad_pointer")
# a response's: the same, prefixed
RESPONSE_MALFORMED = tuple(f"resp_{k}" for k in MALFORMED)
# where every response (the ``response`` counter) ended, exactly one each
RESPONSE_ENDINGS = ("resp_parsed", "resp_lost", "resp_skipped", *RESPONSE_MALFORMED)


def is_response(name: str) -> bool:
    return name == "response" or name.startswith("resp_")


def split(stats: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(query counters, response counters without their ``resp_`` prefix)."""
    queries = {k: v for k, v in stats.items() if not is_response(k)}
    responses = {("seen" if k == "response" else k[len("resp_"):]): v for k, v in stats.items() if is_response(k)}
    return queries, responses


def stat_names(layout: Layout) -> dict[int, str]:
    """index -> name (``parsed``, ``truncated``...), from events.h."""
    return {value: name[len(_PREFIX):].lower() for name, value in layout.constants.items()
            if name.startswith(_PREFIX) and name != f"{_PREFIX}MAX"}


def read_dns_stats(stats_map: Map, layout: Layout) -> dict[str, int]:
    """Each counter summed over the CPUs."""
    out: dict[str, int] = {}
    for index, name in sorted(stat_names(layout).items()):
        per_cpu = stats_map.lookup(index)
        values = per_cpu if isinstance(per_cpu, list) else [per_cpu] if per_cpu else []
        out[name] = sum(int.from_bytes(v, "little") for v in values)
    return out


# where every packet the kernel saw (type_stats' `seen`) ended, exactly one each
ENDINGS = ("parsed", "not_query", "forwarded", "own", *MALFORMED)


def malformed(stats: dict[str, int]) -> int:
    return sum(stats.get(k, 0) for k in MALFORMED)


def format_dns_stats(stats: dict[str, int]) -> str:
    out = []
    for what, part in zip(("queries", "responses"), split(stats)):
        if not part:
            continue
        outcomes = " ".join(f"{k}={v}" for k, v in part.items() if k not in MALFORMED)
        bad = " ".join(f"{k}={part.get(k, 0)}" for k in MALFORMED)
        out.append(f"{what}: {outcomes}; malformed (not sent): {malformed(part)} ({bad})")
    return "; ".join(out)


__all__ = ["read_dns_stats", "format_dns_stats", "malformed", "stat_names", "split", "MALFORMED", "ENDINGS",
           "RESPONSE_MALFORMED", "RESPONSE_ENDINGS"]
