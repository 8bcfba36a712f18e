"""No growth after churn (SPEC §7.3): rounds of abrupt Socket.IO and SSE connect, subscribe,
abort (a TCP reset, no goodbye) leave the hub and Engine.IO empty and the process's memory
where the first round left it. The scenario runs in a fresh process (``_churn.py``), so the
RSS is its own and not what earlier tests left in this worker. Prints the RSS per round and
the top ``tracemalloc`` differences of one more round."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults._churn import CYCLES, MAX_GROWTH_MB, ROUNDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("transport", ["socketio", "sse"])
def test_abrupt_stream_churn_leaves_nothing_behind(transport: str, tmp_path: Path) -> None:
    """One transport per test, so the two run side by side in a parallel run."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults._churn", transport],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rss: list[float] = result["rss"]
    growth = rss[-1] - rss[0]
    print(
        f"\nFIGURE churn {transport}: RSS per round (MB) {[round(r, 1) for r in rss]}, "
        f"growth after round 1: {growth:.1f} MB ({ROUNDS} x {CYCLES} abrupt cycles), "
        f"Engine.IO ping {result['ping_interval']} s, sockets released "
        f"{result['released_after']} s after each round"
    )
    print("tracemalloc, what one more round kept, top 10:")
    print("\n".join(result["tracemalloc"]))
    assert result["engine_sockets"] == 0  # Engine.IO forgot every aborted socket too
    assert result["ping_interval"] == 25  # the default: nothing waits for the next ping
    assert growth < MAX_GROWTH_MB
