"""The composition root and the runtime: what start-up logs, how bus handler errors count."""

from __future__ import annotations

from structlog.testing import capture_logs

from tests.server import app_settings
from tokenpulse.bootstrap import build_container
from tokenpulse.bus.topics import LTP_TOPIC
from tokenpulse.runtime import Runtime


def _sample(container: object, name: str, topic: str) -> float:
    registry = container.metrics.registry  # type: ignore[attr-defined]
    return registry.get_sample_value(name, {"topic": topic}) or 0.0


async def test_start_logs_one_line_naming_what_runs_and_stop_logs_no_start() -> None:
    # The replay plays bundled data: nothing leaves the machine.
    runtime = Runtime(build_container(app_settings(sources="replay", history_enabled=False)))
    with capture_logs() as started:
        await runtime.start()
    with capture_logs() as stopped:
        await runtime.stop()
    (line,) = [entry for entry in started if entry["event"] == "tokenpulse started"]
    assert line["role"] == "all"
    assert line["ingesting"] is True
    assert line["sources"] == ["replay"]
    assert line["cache"] == "memory"
    assert line["store"] == "disabled"
    assert line["bus"] == "in-process"
    assert "tokens" in line
    assert "pairs" in line
    assert not [entry for entry in stopped if entry["event"] == "tokenpulse started"]


async def test_a_failing_bus_handler_counts_as_a_handler_error_not_a_publish_failure() -> None:
    container = build_container(app_settings(history_enabled=False))

    def broken(topic: str, payload: bytes) -> None:
        raise RuntimeError("subscriber bug")

    container.bus.subscribe(LTP_TOPIC, broken)
    with capture_logs():
        await container.bus.publish(LTP_TOPIC, b"{}")
    assert _sample(container, "tokenpulse_bus_handler_errors_total", LTP_TOPIC) == 1
    assert _sample(container, "tokenpulse_bus_publish_failures_total", LTP_TOPIC) == 0
    await Runtime(container).stop()
