"""--load-cookies, .netrc and --user, --proxy and --no-proxy, end to end
against the loopback server (and the loopback forward proxy): what each
server saw, the bytes on disk, exit status, and that no secret shows."""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import trustme

from downloader import cli as cli_module
from downloader import download_all
from httpserver import FaultServer, make_body
from proxyserver import ForwardProxy, proxy_env
from test_https import TLSFaultServer

BODY = make_body(3_000, seed=31)
OTHER = make_body(2_000, seed=32)
FAST = ("--retries", "0", "--retry-wait", "0.01")


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def seen(server: FaultServer, path: str, header: str) -> list[str | None]:
    """``header`` of each request ``server`` got for ``path``."""
    return [r.headers.get(header) for r in server.requests if r.path == path]


def assert_usage_error(proc: subprocess.CompletedProcess, option: str) -> str:
    """Exit 2 and one line, ``downloader: error: OPTION ...``."""
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"downloader: error: {option} "), line
    return line


def assert_hidden(secret: str, proc: subprocess.CompletedProcess, tmp_path: Path) -> None:
    """``secret`` is in no output, report (report.json) or state database (dl/)."""
    places = {"stdout": proc.stdout.encode(), "stderr": proc.stderr.encode()}
    for path in [tmp_path / "report.json", *(tmp_path / "dl" / ".downloader").glob("*")]:
        if path.is_file():
            places[str(path)] = path.read_bytes()
    assert any(name.endswith("report.json") for name in places)
    for where, data in places.items():
        assert secret.encode() not in data, f"{secret!r} shown in {where}"


@pytest.fixture
def other_server() -> Iterator[FaultServer]:
    """A second origin: another port."""
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable of the caller's may route these requests (in-process)."""
    for name, value in proxy_env(None).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)


# -- --load-cookies -----------------------------------------------------------------

SECRET_COOKIE = "c00kie-v4lue-71d3"
HEADER = "# Netscape HTTP Cookie File\n"


def cookie_line(domain: str, path: str, name: str, value: str, *, secure: bool = False,
                expires: str = "0", httponly: bool = False) -> str:
    subdomains = "TRUE" if domain.startswith(".") else "FALSE"
    line = "\t".join([domain, subdomains, path, "TRUE" if secure else "FALSE", expires, name,
                      value])
    return ("#HttpOnly_" if httponly else "") + line + "\n"


def test_loaded_cookies_go_only_to_their_domain_and_path(server, tmp_path, cli):
    """A cookie goes with a request when its domain, path and ``secure``
    flag match, as curl and wget send them; its value is never shown."""
    (tmp_path / "cookies.txt").write_text(HEADER + "".join([
        "# a comment, and a blank line\n", "\n",
        cookie_line("127.0.0.1", "/data", "sid", SECRET_COOKIE),  # a session cookie (expiry 0)
        cookie_line("127.0.0.1", "/", "pref", "dark", expires="4102444800", httponly=True),
        cookie_line("127.0.0.1", "/private", "other_path", "x1"),
        cookie_line(".example.org", "/", "other_domain", "x2"),
        cookie_line("127.0.0.1", "/", "https_only", "x3", secure=True),
        cookie_line("127.0.0.1", "/", "expired", "x4", expires="1000000000"),
    ]))
    data = server.add("/data/f.bin", BODY, require_cookie=f"sid={SECRET_COOKIE}")
    elsewhere = server.add("/g.bin", OTHER)

    proc = cli(data, elsewhere, "--load-cookies", "cookies.txt", "-d", "dl", "-v",
               "--report", "report.json", *FAST)

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert (tmp_path / "dl" / "g.bin").read_bytes() == OTHER
    (to_data,) = seen(server, "/data/f.bin", "Cookie")
    assert sorted(to_data.split("; ")) == ["pref=dark", f"sid={SECRET_COOKIE}"]
    assert seen(server, "/g.bin", "Cookie") == ["pref=dark"]
    assert_hidden(SECRET_COOKIE, proc, tmp_path)


def test_cookies_follow_the_host_name(server, other_server, tmp_path):
    """127.0.0.1 and localhost are two hosts: each gets its own cookie, and
    a redirect to the other does not take the first one's along."""
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(HEADER + cookie_line("127.0.0.1", "/", "ip", "1")
                       + cookie_line("localhost", "/", "name", "2"))
    server.add("/a.bin", BODY)
    target = other_server.add("/b.bin", OTHER).replace("127.0.0.1", "localhost")
    moved = server.add("/moved.bin", redirect_to=target)
    urls = [server.url("/a.bin"), server.url("/a.bin").replace("127.0.0.1", "localhost"), moved]

    summary = download_all([{"url": url, "out": f"{n}.bin"} for n, url in enumerate(urls)],
                           tmp_path / "dl", load_cookies=cookies, retries=0)

    assert summary.ok, [r.error for r in summary.failed]
    assert sorted(seen(server, "/a.bin", "Cookie")) == ["ip=1", "name=2"]
    assert seen(server, "/moved.bin", "Cookie") == ["ip=1"]
    assert seen(other_server, "/b.bin", "Cookie") == ["name=2"]


BAD_COOKIE_FILES = {
    "missing": (None, "cannot read it"),
    "a folder": ("", "cannot read it"),
    "a JSON export": ('[{"domain": ".example.org", "value": "SECRET"}]\n', "Netscape"),
    "six fields": (HEADER + "127.0.0.1\tFALSE\t/\tFALSE\t0\tsid=SECRET\n", "line 2"),
    "subdomains flag": (HEADER + "\n" + cookie_line("127.0.0.1", "/", "sid", "SECRET")
                        .replace("FALSE", "TRUE", 1), "line 3"),
    "expiry": (HEADER + cookie_line("127.0.0.1", "/", "sid", "SECRET", expires="soon"),
               "line 2: the expiry"),
}


@pytest.mark.parametrize("content, problem", list(BAD_COOKIE_FILES.values()),
                         ids=list(BAD_COOKIE_FILES))
def test_a_bad_cookie_file_is_a_usage_error(server, tmp_path, cli, content, problem):
    """Exit 2 before any request, naming the option, the file and what is
    wrong (a bad line by number: its text may be a secret)."""
    if content == "":
        (tmp_path / "cookies.txt").mkdir()
    elif content is not None:
        (tmp_path / "cookies.txt").write_text(content)

    proc = cli(server.add("/f.bin", BODY), "--load-cookies", "cookies.txt", "-d", "dl")

    line = assert_usage_error(proc, "--load-cookies")
    assert "cookies.txt" in line and problem in line
    assert "SECRET" not in line
    assert server.requests == []
    assert not (tmp_path / "dl").exists()


def test_library_names_load_cookies_for_a_bad_file(tmp_path):
    (tmp_path / "cookies.txt").write_text("not cookies\n")
    with pytest.raises(ValueError, match=r"^load_cookies .*cookies\.txt.*Netscape"):
        download_all([], tmp_path / "dl", load_cookies=tmp_path / "cookies.txt")
    assert not (tmp_path / "dl").exists()


# -- .netrc and --user ---------------------------------------------------------------

PASSWORD = "pa55-w0rd-8c1e"


def write_netrc(tmp_path: Path, host: str, login: str, password: str) -> dict[str, str]:
    """A .netrc for ``host``; the environment that makes requests read it."""
    path = tmp_path / "netrc"
    path.write_text(f"machine {host}\n  login {login}\n  password {password}\n")
    path.chmod(0o600)
    return {"NETRC": str(path)}


@pytest.mark.parametrize("route", ["direct", "--no-proxy", "--proxy"])
def test_netrc_credentials_go_to_their_host_only(server, other_server, proxy, tmp_path, cli,
                                                 route):
    """requests reads .netrc (NETRC names it) for the URL's host, also
    with --no-proxy (which turns off requests' trust_env) and --proxy; a
    redirect to another host (localhost) does not take them along."""
    protected = server.add("/protected.bin", BODY, require_auth=f"alice:{PASSWORD}")
    target = other_server.add("/target.bin", OTHER)
    moved = server.add("/moved.bin", require_auth=f"alice:{PASSWORD}",
                       redirect_to=target.replace("127.0.0.1", "localhost"))
    env = {**proxy_env(None), **write_netrc(tmp_path, "127.0.0.1", "alice", PASSWORD)}
    options = {"direct": [], "--no-proxy": ["--no-proxy"],
               "--proxy": ["--proxy", proxy.base]}[route]
    urls = [protected] if route == "--proxy" else [protected, moved]  # it relays to 127.0.0.1 only

    proc = cli(*urls, *options, "-d", "dl", "-v", "--report", "report.json", *FAST, env=env)

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "protected.bin").read_bytes() == BODY
    assert seen(server, "/protected.bin", "Authorization") == [basic(f"alice:{PASSWORD}")]
    if route == "--proxy":
        assert proxy.urls() == [protected]
    else:
        assert (tmp_path / "dl" / "moved.bin").read_bytes() == OTHER
        assert seen(other_server, "/target.bin", "Authorization") == [None]
    assert_hidden(PASSWORD, proc, tmp_path)


@pytest.mark.parametrize("target", ["same origin", "another port", "localhost"])
def test_user_is_sent_to_the_urls_origin_only(server, other_server, tmp_path, cli, target):
    """--user's credentials go to the URL's origin, and stay with a
    redirect within it; a redirect to another port or to localhost (the
    same server by another name) does not get them."""
    where = {"same origin": server.url("/target.bin"),
             "another port": other_server.url("/target.bin"),
             "localhost": server.url("/target.bin").replace("127.0.0.1", "localhost")}[target]
    target_server = other_server if target == "another port" else server
    needs = f"alice:{PASSWORD}" if target == "same origin" else None
    target_server.add("/target.bin", OTHER, require_auth=needs)
    protected = server.add("/protected.bin", BODY, require_auth=f"alice:{PASSWORD}")
    moved = server.add("/moved.bin", require_auth=f"alice:{PASSWORD}", redirect_to=where)

    proc = cli(protected, moved, "--user", f"alice:{PASSWORD}", "-d", "dl", "-v",
               "--report", "report.json", *FAST, env={"NETRC": str(tmp_path / "no-netrc")})

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "protected.bin").read_bytes() == BODY
    assert (tmp_path / "dl" / "moved.bin").read_bytes() == OTHER
    assert seen(server, "/moved.bin", "Authorization") == [basic(f"alice:{PASSWORD}")]
    sent_on = seen(target_server, "/target.bin", "Authorization")
    assert sent_on == [basic(f"alice:{PASSWORD}") if target == "same origin" else None]
    assert_hidden(PASSWORD, proc, tmp_path)


def test_url_credentials_then_user_then_netrc(server, tmp_path, cli):
    """The most specific credentials win: a URL's own user:password, then
    --user, then .netrc; also after a redirect within the origin."""
    from_url = server.add("/url.bin", BODY, require_auth="carol:from-url")
    from_user = server.add("/user.bin", OTHER, require_auth="bob:from-user")
    server.add("/target.bin", BODY[::-1], require_auth="bob:from-user")
    moved = server.add("/moved.bin", require_auth="bob:from-user",
                       redirect_to=server.url("/target.bin"))
    with_credentials = from_url.replace("http://", "http://carol:from-url@")
    env = write_netrc(tmp_path, "127.0.0.1", "alice", "from-netrc")

    proc = cli(with_credentials, from_user, moved, "--user", "bob:from-user", "-d", "dl",
               *FAST, env=env)

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "url.bin").read_bytes() == BODY
    assert (tmp_path / "dl" / "user.bin").read_bytes() == OTHER
    assert (tmp_path / "dl" / "moved.bin").read_bytes() == BODY[::-1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_user_without_password_asks_on_the_terminal(server, tmp_path, monkeypatch, capsys):
    prompts = []

    def getpass(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr(cli_module.getpass, "getpass", getpass)
    monkeypatch.setattr(sys, "stdin", _Terminal())
    url = server.add("/f.bin", BODY, require_auth=f"alice:{PASSWORD}")

    status = cli_module.main([url, "--user", "alice", "-d", str(tmp_path / "dl"), "-q", *FAST])

    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert len(prompts) == 1 and "alice" in prompts[0]
    assert PASSWORD not in "".join(capsys.readouterr())


def test_user_without_password_and_no_terminal_is_a_usage_error(server, tmp_path, cli):
    proc = cli(server.add("/f.bin", BODY), "--user", "alice", "-d", "dl", input="")

    line = assert_usage_error(proc, "--user")
    assert "alice" in line and "USER:PASSWORD" in line
    assert server.requests == []


def test_a_typo_elsewhere_is_reported_before_asking_for_a_password(server, tmp_path,
                                                                   monkeypatch, capsys):
    monkeypatch.setattr(cli_module.getpass, "getpass", pytest.fail)
    monkeypatch.setattr(sys, "stdin", _Terminal())

    status = cli_module.main([server.url("/f.bin"), "--user", "alice", "-j", "0"])

    assert status == 2
    assert capsys.readouterr().err.startswith("downloader: error: --workers ")


@pytest.mark.parametrize("value", [f":{PASSWORD}", ""])
def test_user_with_no_name_is_a_usage_error(server, tmp_path, cli, value):
    proc = cli(server.add("/f.bin", BODY), "--user", value, "-d", "dl", input="")

    assert PASSWORD not in assert_usage_error(proc, "--user")
    assert server.requests == []


@pytest.mark.parametrize("user", [f"alice:{PASSWORD}", ("alice", PASSWORD), "jörg:pässwörd"],
                         ids=["string", "pair", "utf-8"])
def test_library_user(server, tmp_path, user):
    """Also a name or password outside Latin-1: sent as UTF-8, as browsers and curl do."""
    credentials = user if isinstance(user, str) else ":".join(user)
    url = server.add("/f.bin", BODY, require_auth=credentials)

    summary = download_all([url], tmp_path / "dl", user=user, retries=0)

    assert summary.ok, summary.failed[0].error
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY


@pytest.mark.parametrize("user", ["alice", f":{PASSWORD}", ("alice",), 42])
def test_library_refuses_a_user_without_name_and_password(tmp_path, user):
    with pytest.raises(ValueError, match="^user ") as caught:
        download_all([], tmp_path / "dl", user=user)
    assert PASSWORD not in str(caught.value)


# -- --proxy and --no-proxy ----------------------------------------------------------

@pytest.fixture
def env_proxy() -> Iterator[ForwardProxy]:
    """A second proxy: the one the environment names."""
    srv = ForwardProxy().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.parametrize("written", ["URL", "HOST:PORT"])
def test_proxy_wins_over_the_environment(server, proxy, env_proxy, tmp_path, cli, written):
    """Every request goes through --proxy, whatever HTTP_PROXY and NO_PROXY
    say; HOST:PORT means an http:// proxy, as in curl."""
    url = server.add("/f.bin", BODY)
    given = proxy.base if written == "URL" else proxy.base.replace("http://", "")

    proc = cli(url, "--proxy", given, "-d", "dl", *FAST,
               env=proxy_env(env_proxy.base, no_proxy="127.0.0.1"))

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert proxy.urls() == [url]
    assert env_proxy.urls() == []


def test_no_proxy_ignores_the_environment_also_after_a_redirect(server, other_server, proxy,
                                                                tmp_path, cli):
    target = other_server.add("/target.bin", OTHER)
    moved = server.add("/moved.bin", redirect_to=target)

    proc = cli(moved, "--no-proxy", "-d", "dl", *FAST, env=proxy_env(proxy.base))

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "moved.bin").read_bytes() == OTHER
    assert proxy.urls() == []
    assert [r.path for r in other_server.requests] == ["/target.bin"]


def test_proxy_password_goes_to_the_proxy_and_is_never_shown(server, proxy, tmp_path, cli):
    """The proxy gets Proxy-Authorization; outputs show user:***@ at most."""
    url = server.add("/f.bin", BODY)
    gone = server.url("/gone.bin")
    with_credentials = proxy.base.replace("http://", f"http://bob:{PASSWORD}@")

    proc = cli(url, gone, "--proxy", with_credentials, "-d", "dl", "-v",
               "--report", "report.json", *FAST, env=proxy_env(None))

    assert proc.returncode == 1  # the 404
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
    assert [headers.get("Proxy-Authorization") for _, headers in proxy.seen] == \
        [basic(f"bob:{PASSWORD}")] * 2
    assert all("Proxy-Authorization" not in r.headers for r in server.requests)
    assert_hidden(PASSWORD, proc, tmp_path)


def test_an_unreachable_proxy_is_named_in_the_failure(tmp_path, cli):
    """A port nothing listens on (a closed listener's): each entry fails,
    saying the proxy is at fault, without its password."""
    with FaultServer() as closed:
        port = closed.port
    proc = cli("http://127.0.0.1:9/f.bin", "--proxy", f"http://bob:{PASSWORD}@127.0.0.1:{port}",
               "-d", "dl", "--report", "report.json", *FAST)

    assert proc.returncode == 1
    (result,) = json.loads((tmp_path / "report.json").read_text())["results"]
    assert result["error"].startswith("connection to the proxy failed"), result["error"]
    assert_hidden(PASSWORD, proc, tmp_path)


BAD_PROXIES = {
    "scheme": f"ftp://bob:{PASSWORD}@127.0.0.1:3128",
    "port": f"http://bob:{PASSWORD}@127.0.0.1:port",
    "no host": "http://:3128",
}


@pytest.mark.parametrize("value", list(BAD_PROXIES.values()), ids=list(BAD_PROXIES))
def test_a_bad_proxy_is_a_usage_error_with_the_password_hidden(server, tmp_path, cli, value):
    proc = cli(server.add("/f.bin", BODY), "--proxy", value, "-d", "dl")

    line = assert_usage_error(proc, "--proxy")
    assert PASSWORD not in line
    if "bob" in value:
        assert "bob:***@" in line
    assert server.requests == []


def test_a_socks_proxy_without_pysocks_is_a_usage_error(server, tmp_path, cli):
    if importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed")
    proc = cli(server.add("/f.bin", BODY), "--proxy", "socks5h://127.0.0.1:1080", "-d", "dl")

    assert "requests[socks]" in assert_usage_error(proc, "--proxy")


def test_proxy_and_no_proxy_contradict_each_other(server, proxy, tmp_path, cli):
    proc = cli(server.add("/f.bin", BODY), "--proxy", proxy.base, "--no-proxy", "-d", "dl")

    assert assert_usage_error(proc, "--proxy").endswith("cannot be used with --no-proxy")


def test_library_proxy_and_no_proxy(server, proxy, env_proxy, tmp_path, monkeypatch,
                                    no_proxy_env):
    monkeypatch.setenv("HTTP_PROXY", env_proxy.base)
    first, second = server.add("/a.bin", BODY), server.add("/b.bin", OTHER)

    assert download_all([first], tmp_path / "dl", proxy=proxy.base, retries=0).ok
    assert download_all([second], tmp_path / "dl", no_proxy=True, retries=0).ok

    assert proxy.urls() == [first]
    assert env_proxy.urls() == []
    assert [r.path for r in server.requests] == ["/a.bin", "/b.bin"]
    with pytest.raises(ValueError, match="^proxy and no_proxy contradict"):
        download_all([], tmp_path / "dl", proxy=proxy.base, no_proxy=True)


def test_no_proxy_keeps_the_ca_bundle_variable(tmp_path, cli):
    """requests reads REQUESTS_CA_BUNDLE only with trust_env, which
    --no-proxy turns off: the downloader reads it itself."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with TLSFaultServer(context) as tls_server:
        url = tls_server.add("/f.bin", BODY)
        proc = cli(url, "--no-proxy", "-d", "dl", *FAST,
                   env={"REQUESTS_CA_BUNDLE": str(tmp_path / "ca.pem"), "CURL_CA_BUNDLE": None})

    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dl" / "f.bin").read_bytes() == BODY
