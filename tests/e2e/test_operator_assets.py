"""Operator assets: the Prometheus alert rules pass ``promtool check rules`` and their unit
tests (``promtool test rules``), every Grafana panel's query is valid PromQL, and every metric
the dashboard and the alerts name is one the service really exports on /metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.server import app_settings, running_app

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tokenpulse.json"
METRIC = re.compile(r"\btokenpulse_[a-z0-9_]+")
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
    "info": ("_info",),
}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("promtool is not installed (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool is not installed (Debian's prometheus package has it)")
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(queries) >= 20
    return queries


def alert_queries() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_alert_rules_check_and_pass_their_unit_tests() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    config = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses PromQL in rule files: each panel query becomes a recording rule, with
    # Grafana's variables replaced by what Grafana would put there.
    rules = [
        {
            "record": f"dashboard:query{n}",
            "expr": q.replace("$__rate_interval", "5m").replace("$instance", ".*"),
        }
        for n, q in enumerate(dashboard_queries())
    ]
    (tmp_path / "dashboard.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8"
    )
    checked = promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_is_importable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "tokenpulse"
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= names
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


async def test_every_metric_they_name_is_exported_by_the_service() -> None:
    offline = {"kraken_ws_url": "ws://127.0.0.1:1/v2", "kraken_rest_url": "http://127.0.0.1:1"}
    async with running_app(app_settings(**offline)) as app, httpx.AsyncClient() as http:
        text = (await http.get(f"{app.base_url}/metrics")).text
    exported: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        # prometheus_client names a counter's family with or without _total: allow both.
        exported.add(name)
        exported.update(name.removesuffix("_total") + s for s in SUFFIXES.get(kind, ("",)))
        exported.update(re.findall(r"^(" + re.escape(name) + r"\w*)", text, flags=re.MULTILINE))
    named = {m for q in dashboard_queries() + alert_queries() for m in METRIC.findall(q)}
    assert len(named) >= 25
    assert named - exported == set()
