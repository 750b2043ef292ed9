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
        listen 127.0.0.1:{port}{ssl} reuseport backlog=4096;
        root {root};
        location / {{ }}
{extra}    }}
}}
"""


# The HTTPS sets' server: HTTP/1.1 like the plain sets (no http2 on the
# listen line, so ALPN cannot move wget2 or curl to HTTP/2); a session cache
# so that the 16 connections of a run need not each do a full handshake.
TLS_CONF = """\
        ssl_certificate {tls}/server.pem;
        ssl_certificate_key {tls}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:bench:1m;
"""
# The throttled set's server: a cap per connection (per request, in nginx's
# terms), as CDNs and mirrors set one.
RATE_CONF = """\
        limit_rate {rate};
"""


class Server:
    """A server process we started, stopped by its own PID only."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int, tmp: Path | None = None,
                 scheme: str = "http") -> None:
        self.name, self.proc, self.port, self.tmp, self.scheme = name, proc, port, tmp, scheme

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

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


def start_nginx(root: Path, tls: Path | None = None, rate: str = "") -> Server:
    """nginx serving `root`; over HTTPS with the certificate in folder `tls`
    (see make_certificate), each connection capped at `rate` if given."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = Path(tempfile.mkdtemp(prefix="dlbench-nginx-"))
    tmp.chmod(0o755)
    port = free_port()
    conf = tmp / "nginx.conf"
    extra = (TLS_CONF.format(tls=tls) if tls else "") + (RATE_CONF.format(rate=rate) if rate else "")
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root, ssl=" ssl" if tls else "", extra=extra))
    # -e: the startup error log, before the config's error_log is read;
    # otherwise nginx insists on /var/log/nginx/error.log.
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = Server("nginx", proc, port, tmp, "https" if tls else "http")
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



# The CA is self-signed, made for this run; the server's certificate is
# signed by it and names 127.0.0.1. A CA apart from the leaf (rather than one
# self-signed leaf) is what every TLS stack accepts as a trust anchor,
# strict-mode Python and GnuTLS (wget2) included.
_CA_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
_LEAF_EXT = (
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
)


def make_certificate(folder: Path) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it, in `folder`
    (server.pem, server.key for nginx); returns the CA file the tools trust."""
    # nginx's master process reads the key before it drops privileges: the
    # folder and key stay ours (openssl writes keys 0600).
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leaf.ext").write_text(_LEAF_EXT)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=downloader bench CA", "-extensions", "v3", "-config", "ca.cnf"],
        ["req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.pem", "-days", "2", "-extfile", "leaf.ext"],
    ]
    # req -x509 takes its extensions from a config section, not an -extfile.
    (folder / "ca.cnf").write_text("[req]\ndistinguished_name=dn\n[dn]\n[v3]\n" + _CA_EXT)
    for step in steps:
        out = subprocess.run(["openssl", *step], cwd=folder, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"openssl {step[0]} failed: {out.stderr.strip()[-500:]}")
    return folder / "ca.pem"
