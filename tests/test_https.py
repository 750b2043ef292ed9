"""HTTPS with a private CA: verification fails closed, --ca-bundle trusts it,
--insecure skips verification and says so once."""
from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Iterator

import certifi
import pytest
import trustme

from downloader import download_all
from httpserver import FaultServer, make_body

BODY = make_body(20_000, seed=5)


class TLSFaultServer(FaultServer):
    """A FaultServer whose listening socket speaks TLS."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        # Handshake in the handler thread, so a client that rejects the
        # certificate never stalls the accept loop.
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True,
                                                 do_handshake_on_connect=False)
        self.base = f"https://127.0.0.1:{self.port}"


@pytest.fixture(autouse=True, params=["clean-env", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def env_bundle(request, monkeypatch) -> None:
    """Many machines point requests at a system bundle through the environment;
    --ca-bundle and --insecure must still mean what they say there."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    if request.param != "clean-env":
        monkeypatch.setenv(request.param, certifi.where())


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_pem(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[TLSFaultServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = TLSFaultServer(context).start()
    try:
        yield server
    finally:
        server.stop()


def test_untrusted_certificate_fails_at_once(tls_server, tmp_path, cli):
    url = tls_server.add("/f.bin", BODY)
    proc = cli(url, "-d", "dl", "--retries", "3", "--retry-wait", "0.01", "--report", "-")

    assert proc.returncode == 1
    (entry,) = json.loads(proc.stdout)["results"]
    assert (entry["status"], entry["attempts"]) == ("failed", 1)  # not worth retrying
    assert "certificate" in entry["error"].lower()
    assert entry["error"] in proc.stderr
    assert tls_server.requests == []  # no HTTP request went over the untrusted channel
    assert not (tmp_path / "dl" / "f.bin").exists()


def test_ca_bundle_trusts_the_private_ca(tls_server, tmp_path, cli, ca_pem):
    url = tls_server.add("/f.bin", BODY)
    proc = cli(url, "-d", "dl", "--ca-bundle", ca_pem, "--retry-wait", "0.01", "-q")

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY


def test_library_ca_bundle(tls_server, tmp_path, ca_pem):
    url = tls_server.add("/f.bin", BODY)
    summary = download_all([url], tmp_path / "dl", ca_bundle=str(ca_pem), retry_wait=0.01)

    assert summary.ok
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY


def test_insecure_downloads_and_warns_once(tls_server, tmp_path, cli):
    urls = [tls_server.add("/a.bin", BODY), tls_server.add("/b.bin", BODY[::-1])]
    proc = cli(*urls, "-d", "dl", "--insecure", "--retry-wait", "0.01", "--progress", "none")

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "a.bin").read_bytes() == BODY
    assert (tmp_path / "dl" / "b.bin").read_bytes() == BODY[::-1]
    notices = [line for line in proc.stderr.splitlines()
               if "verif" in line.lower() or "insecure" in line.lower()]
    assert len(notices) == 1, proc.stderr
