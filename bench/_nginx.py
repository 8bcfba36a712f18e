"""nginx as the yardstick for the REST hot path (``bench/http.py --compare-nginx``).

One nginx worker serves the very bytes tokenpulse answered for ``GET /api/v1/ltp?pair=BTC/USD``
(a static file, the same ``Content-Type``) on another loopback port, so wrk measures what a
lean C server does with the same response on the same cores, in the same run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from _server import LOOPBACK, ServerError, http_get, tree_cpu_seconds

CONFIG = """\
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    tcp_nodelay on;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{port};
        location = {path} {{
            default_type application/json;
            alias {dir}/body.json;
        }}
    }}
}}
"""


class Nginx:
    """``nginx -c <generated config>`` in the foreground, serving one file at one path."""

    def __init__(self, directory: Path, port: int, path: str, body: bytes) -> None:
        self.directory = directory
        self.port = port
        self.path = path
        (directory / "body.json").write_bytes(body)
        # Run as root, nginx would hand its worker to ``nobody``, who cannot read the harness's
        # private temporary directory: keep the worker as the user running the benchmark.
        user = "user root;\n" if os.geteuid() == 0 else ""
        config = CONFIG.format(dir=directory, host=LOOPBACK, port=port, path=path, user=user)
        self.config_path = directory / "nginx.conf"
        self.config_path.write_text(config)
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("nginx") is not None

    def __enter__(self) -> Nginx:
        binary = shutil.which("nginx")
        if binary is None:
            raise ServerError("nginx is not installed (Debian: apt-get install nginx-light)")
        self._process = subprocess.Popen(
            [binary, "-p", str(self.directory), "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = (self.directory / "error.log").read_text(errors="replace")
                raise ServerError(f"nginx exited with {self._process.returncode}: {log[-500:]}")
            try:
                status, _ = http_get(self.port, self.path, {}, 2.0)
            except OSError:
                time.sleep(0.05)
                continue
            if status == 200:
                return self
            time.sleep(0.05)
        raise ServerError("nginx did not answer 200 within 10 s")

    def __exit__(self, *_: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)

    def cpu_seconds(self) -> float | None:
        """CPU seconds of the master and its one worker."""
        return None if self._process is None else tree_cpu_seconds(self._process.pid)
