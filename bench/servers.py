"""The servers a data set is fetched from, each a process of our own."""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from common import BENCH, PY
from datasets import DataSet
from tiny_server import STATS_PATH


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NGINX_CONF = """\
# Written by bench/bench.py for one benchmark run; not a system config.
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;

events {{
    worker_connections 8192;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    types {{ }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {root};
        location / {{ }}
    }}
}}
"""


class Server:
    """A server process we started, stopped by its own PID only."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int, tmp: Path | None = None) -> None:
        self.name, self.proc, self.port, self.tmp = name, proc, port, tmp

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def has_stats(self) -> bool:
        """Whether it answers STATS_PATH (our Python servers; nginx does not)."""
        return self.name != "nginx"

    def stats(self) -> dict[str, float | int | None]:
        """Requests since the last call and the monotonic time of the first one
        (see bench/tiny_server.py); the count starts afresh."""
        # http.client, not urllib: no proxy from the environment can get in
        # the way of a loopback request.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", STATS_PATH)
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()

    def cpu(self) -> float:
        """The server process's user + system seconds so far."""
        with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat; 12 and 13 after the ")".
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            # nginx: SIGQUIT is the graceful shutdown of master and workers;
            # the latency server treats SIGTERM the same way.
            self.proc.send_signal(signal.SIGQUIT if self.name == "nginx" else signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def start_nginx(root: Path) -> Server:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = Path(tempfile.mkdtemp(prefix="dlbench-nginx-"))
    tmp.chmod(0o755)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
    # -e: the startup error log, before the config's error_log is read;
    # otherwise nginx insists on /var/log/nginx/error.log.
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = Server("nginx", proc, port, tmp)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
            server.stop()
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            pidfile = tmp / "nginx.pid"
            if pidfile.exists() and int(pidfile.read_text()) != proc.pid:
                raise RuntimeError("nginx.pid names another process: a stray nginx owns the port?")
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("nginx did not start listening within 10 s")


def start_python_server(ds: DataSet) -> Server:
    """The latency or the tiny server for `ds`, in a process of its own."""
    if ds.server == "latency":
        argv = [PY, str(BENCH / "latency_server.py"), "--port", "0", "--size", str(ds.size), "--delay", str(ds.delay)]
    else:
        argv = [PY, str(BENCH / "tiny_server.py"), "--port", "0"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("LISTENING "):
        Server(ds.server, proc, 0).stop()
        raise RuntimeError(f"{ds.server} server did not start: {line!r}")
    return Server(ds.server, proc, int(line.split()[1]))

