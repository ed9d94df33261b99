"""Hook-set fallback in the reload handover (issue 11), on the real kernel:
a handover to the fentry set, which this kernel refuses, comes up on the
next set of the list; with nothing after it, the handover fails with the
kernel's reason and the running generation goes on. Either way the agent
keeps reporting real events."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from inproc_agent import InProcessAgent

from agent.features import probe
from agent.hooksets import FENTRY
from agent.runtime import Fallback, HookSetsFailed, Runtime, RuntimeConfig

pytestmark = pytest.mark.root


def _handover(rt: Runtime, config: RuntimeConfig, agent: InProcessAgent) -> BaseException | None:
    """Runtime.handover in the loop, as `rsagent run`'s reload does; what it raised."""
    done = threading.Event()
    raised: list[BaseException] = []

    def go() -> None:
        try:
            rt.handover(config, agent._prepare, lambda: None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            raised.append(exc)
        finally:
            done.set()

    rt.call_soon(go)
    assert done.wait(180), "the handover did not finish in 180 s"
    return raised[0] if raised else None


def _opens_alert(agent: InProcessAgent, watched: Path) -> None:
    before = len(agent.alerts())
    # from another process: the kernel side ignores the agent's own (rs_agent_tgid)
    subprocess.run(["cat", str(watched)], check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while len(agent.alerts()) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [a["event"]["open"]["file"]["path"] for a in agent.alerts()[before:]] == [str(watched)]


def test_a_handover_to_a_set_the_kernel_refuses(built_objects: None, tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.write_text("x")
    policy = tmp_path / "handover.policy"
    policy.write_text(f'rules:\n  - id: watched_open\n    expression: open.file.path == "{watched}"\n')
    with InProcessAgent(policy, tmp_path / "cache") as agent:
        rt = agent.runtime
        running = rt.config
        assert running.hook_set.name == "tracepoint"
        fentry = FENTRY.restricted(probe(agent.compiled.features_object))

        # alone: the handover fails, the kernel's reason in the error, generation 1 goes on
        exc = _handover(rt, replace(running, hook_set=fentry, fallbacks=()), agent)
        assert isinstance(exc, HookSetsFailed), exc
        assert "the fentry hook set failed at load" in str(exc) and "errno" in str(exc)
        assert rt.config is running and rt.generation == 1
        _opens_alert(agent, watched)

        # with a fallback: generation 2 runs on it
        exc = _handover(rt, replace(running, hook_set=fentry,
                                    fallbacks=(Fallback(running.hook_set, running.event_types),)), agent)
        assert exc is None, exc
        assert rt.generation == 2 and rt.config.hook_set.name == "tracepoint" and rt.config.fallbacks == ()
        assert rt.metrics.value("hook_set_failures_total", hook_set="fentry", stage="load") == 2
        _opens_alert(agent, watched)
    assert agent.lost == 0
