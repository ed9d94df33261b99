"""--metrics: a real Prometheus (Debian's), started by the test, scrapes the
agent; the test reads a counter back through Prometheus' HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sinkutil import free_port, start_agent, start_server, stop_server, trigger, wait_until

pytestmark = pytest.mark.root

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
    except OSError:
        return []
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_the_agent(built_objects: None, tmp_path: Path) -> None:
    metrics_port, prom_port = free_port(), free_port()
    alerts = tmp_path / "alerts.jsonl"
    agent = start_agent(tmp_path, [f"jsonl:{alerts}"], "--metrics", str(metrics_port))
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{metrics_port}"], capture_output=True, text=True).stdout
    assert f"127.0.0.1:{metrics_port}" in listening, listening       # a bare port: loopback only
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert "# TYPE rsagent_sink_written_total counter" in text
    assert 'rsagent_build_info{kernel="' in text
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: rsagent
    static_configs: [{{targets: ["127.0.0.1:{metrics_port}"]}}]
""")
    prom = start_server([PROMETHEUS, f"--config.file={tmp_path}/prometheus.yml", f"--storage.tsdb.path={tmp_path}/tsdb",
                         f"--web.listen-address=127.0.0.1:{prom_port}"], tmp_path / "prometheus.out")
    try:
        trigger(agent.watched, 12)
        series = f'rsagent_sink_written_total{{job="rsagent",sink="jsonl:{alerts}"}}'

        def scraped_twelve() -> bool:
            result = query(prom_port, series)
            return bool(result) and float(result[0]["value"][1]) == 12

        wait_until(scraped_twelve, 60, "Prometheus did not read rsagent_sink_written_total == 12", interval=0.5)
        info = query(prom_port, 'rsagent_build_info{job="rsagent"}')
        assert info and info[0]["metric"]["version"] and info[0]["value"][1] == "1"
        up = query(prom_port, 'up{job="rsagent"}')
        assert up and up[0]["value"][1] == "1"
    finally:
        stop_server(prom)
    agent.stop()


def test_bad_metrics_address_is_a_usage_error(built_objects: None) -> None:
    from sinkutil import RSAGENT

    proc = subprocess.run([RSAGENT, "trace", "--metrics", "localhost:http"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "expected PORT or ADDR:PORT" in proc.stderr
