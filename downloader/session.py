"""Each worker's ``requests.Session``: its settings, and a handle on the
socket it is using so the main thread can cut a transfer short."""
from __future__ import annotations

import copy
import os
import socket
import threading
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from requests.utils import get_netrc_auth
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .limits import origin
from .settings import Settings

# One worker runs one request at a time; a few idle connections per host
# let it come back to hosts it has seen without reconnecting.
POOL_HOSTS = 16
POOL_PER_HOST = 2


class InvalidRedirect(requests.exceptions.InvalidURL):
    """A redirect the downloader will not follow; ``str()`` is the reason."""


def check_redirect(base: str, location: str) -> None:
    """Raise ``InvalidRedirect`` unless ``location`` (relative to ``base``)
    is an http(s) URL with a host that urllib3 can connect to."""
    try:
        target = urljoin(base, location)
        parts = urlsplit(target)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        urllib3.util.parse_url(target)
    except ValueError:  # urllib3's LocationParseError is one too
        raise InvalidRedirect("invalid HTTP response: bad redirect location") from None
    if parts.scheme not in ("http", "https"):
        # urlsplit leaves only letters, digits and "+-." in a scheme.
        raise InvalidRedirect(f"redirect to an unsupported scheme ({parts.scheme[:20]})")
    if not parts.hostname:
        raise InvalidRedirect("invalid HTTP response: bad redirect location")


class SocketHandle:
    """One worker's current job, as far as another thread may touch it: its
    socket and its ``--max-time`` deadline.

    The worker begins and ends each job here; the main thread cuts the
    socket when the run is cancelled or the deadline has passed. One lock
    makes each of those a single step, so a cut meant for one job can never
    land on the next job's connection.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._deadline: float | None = None
        self.was_cut = False

    def begin(self, deadline: float | None) -> None:
        with self._lock:
            self._deadline = deadline
            self._sock = None
            self.was_cut = False

    def end(self) -> None:
        with self._lock:
            self._deadline = None
            self._sock = None

    def attach(self, sock: socket.socket) -> None:
        """The job now reads from ``sock`` (a new or kept-alive connection)."""
        with self._lock:
            self._sock = sock

    def cut(self) -> None:
        """Make any blocked read of the current job return at once."""
        with self._lock:
            self._cut()

    def expire(self, now: float) -> None:
        """Cut the current job if its deadline has passed."""
        with self._lock:
            if self._deadline is not None and now > self._deadline:
                self._cut()

    def _cut(self) -> None:
        self.was_cut = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _tracked_pools(handle: SocketHandle, insecure: bool) -> dict[str, type]:
    """Pool classes whose connections report their socket to ``handle``."""

    def track(base: type, **extra: Any) -> type:
        def _new_conn(self: Any) -> socket.socket:
            sock = base._new_conn(self)  # type: ignore[attr-defined]
            handle.attach(sock)
            return sock

        def request(self: Any, *args: Any, **kwargs: Any) -> Any:
            if self.sock is not None:  # a kept-alive connection
                handle.attach(self.sock)
            return base.request(self, *args, **kwargs)  # type: ignore[attr-defined]

        return type(f"Tracked{base.__name__}", (base,), {"_new_conn": _new_conn,
                                                         "request": request, **extra})

    https_extra: dict[str, Any] = {}
    if insecure:
        def connect(self: Any) -> None:
            HTTPSConnection.connect(self)
            # The user chose --insecure and was told so once. urllib3 reads
            # this flag only to warn on every request, and silencing that
            # would take a warnings filter for the whole process.
            self.is_verified = True

        https_extra["connect"] = connect
    return {
        "http": type("TrackedHTTPConnectionPool", (HTTPConnectionPool,),
                     {"ConnectionCls": track(HTTPConnection)}),
        "https": type("TrackedHTTPSConnectionPool", (HTTPSConnectionPool,),
                      {"ConnectionCls": track(HTTPSConnection, **https_extra)}),
    }


class _Adapter(HTTPAdapter):
    def __init__(self, handle: SocketHandle, insecure: bool) -> None:
        self._pool_classes = _tracked_pools(handle, insecure)
        super().__init__(pool_connections=POOL_HOSTS, pool_maxsize=POOL_PER_HOST,
                         max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme") and not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = self._pool_classes
        return manager


class _Session(requests.Session):
    """Drops the user's ``-H`` headers when a redirect leaves the origin, and
    follows only redirects to http(s) URLs that parse."""

    def __init__(self, private_headers: frozenset[str]) -> None:
        super().__init__()
        self._private_headers = private_headers

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        headers = prepared_request.headers
        if origin(prepared_request.url) != origin(response.request.url):
            for name in self._private_headers:
                headers.pop(name, None)
            headers.pop("Authorization", None)
        # As requests does, with two changes: .netrc counts whatever
        # trust_env says (--proxy and --no-proxy turn that off for the proxy
        # variables), and it does not replace credentials kept on a redirect
        # within the origin (--user's, or the URL's).
        if "Authorization" not in headers:
            auth = get_netrc_auth(prepared_request.url)
            if auth is not None:
                prepared_request.prepare_auth(auth)

    def get_redirect_target(self, resp: Any) -> str | None:
        # Checked here, before requests parses it (a ValueError escaping
        # from there would be an "internal error") or looks for an adapter.
        location = super().get_redirect_target(resp)
        if location is not None:
            check_redirect(resp.url, location)
        return location


class Requester:
    """Sends GETs through one worker's ``Session``.

    ``Session.request`` re-reads the proxy variables and ``.netrc`` and
    re-merges every setting on each call: most of a small file's CPU. Here
    that is done once per origin, and the request goes straight to the
    session's adapter; cookies, auth, proxies and redirects behave as with
    ``Session.request`` (response hooks, which the downloader never sets,
    are not run).
    """

    def __init__(self, session: requests.Session) -> None:
        self.session = session
        self._origins: dict[tuple[str, str, int], tuple[dict[str, Any], Any, Any]] = {}

    def _for_origin(self, url: str) -> tuple[dict[str, Any], Any, Any]:
        """(send settings, auth, adapter) for ``url``'s origin."""
        key = origin(url)
        known = self._origins.get(key)
        if known is None:
            session = self.session
            # proxies, verify, cert, and stream=True (never load a body whole)
            # An explicit --ca-bundle / --insecure must win over
            # REQUESTS_CA_BUNDLE, which requests prefers to session.verify.
            verify = None if session.verify is True else session.verify
            settings = session.merge_environment_settings(url, {}, True, verify, None)
            auth = session.auth
            if auth is None:  # whatever trust_env says: see _Session.rebuild_auth
                auth = get_netrc_auth(url)
            known = (settings, auth, session.get_adapter(url))
            self._origins[key] = known
        return known

    def get(self, url: str, headers: dict[str, str],
            timeout: tuple[float, float]) -> requests.Response:
        session = self.session
        settings, auth, adapter = self._for_origin(url)
        request = PreparedRequest()
        request.method = "GET"
        request.prepare_url(url, None)
        merged: CaseInsensitiveDict[str | bytes] = CaseInsensitiveDict(session.headers)
        merged.update(headers)
        request.headers = merged
        if session.cookies:  # a server has set some: send what matches
            request.prepare_cookies(session.cookies)
        if "@" in url and urlsplit(url).username is not None:
            auth = None  # the URL's own user:password is the most specific: requests takes it
        if auth is not None or "@" in url:
            request.prepare_auth(auth, url)
        # What Session.send does, minus what a GET of ours never needs
        # (hooks, timing, the cookie jar when no cookie came back).
        response = adapter.send(request, timeout=timeout, **settings)
        if "set-cookie" in response.headers:
            extract_cookies_to_jar(session.cookies, request, response.raw)
        if response.is_redirect:
            if request._cookies is None:  # resolve_redirects keeps a jar per request
                request.prepare_cookies(RequestsCookieJar())
            history = [response, *session.resolve_redirects(response, request, timeout=timeout,
                                                            **settings)]
            response = history.pop()
            response.history = history
        return response


def make_session(settings: Settings, handle: SocketHandle) -> requests.Session:
    session = _Session(frozenset(name for name, _ in settings.headers))
    adapter = _Adapter(handle, settings.insecure)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = settings.user_agent
    # Bytes on disk are the bytes the server sent: ask for no encoding.
    session.headers["Accept-Encoding"] = "identity"
    for name, value in settings.headers:
        session.headers[name] = value
    if settings.user is not None:
        session.auth = settings.user.basic_auth()
    if settings.load_cookies is not None:
        for cookie in settings.load_cookies.cookies:
            session.cookies.set_cookie(copy.copy(cookie))  # each worker's jar is its own
    if settings.proxy is not None or settings.no_proxy:
        # requests reads the proxy variables (and the system's proxy
        # settings) only with trust_env, which also governs .netrc and the
        # CA bundle variables: those two are read here and in the Requester.
        session.trust_env = False
        proxy = settings.proxy
        session.proxies = {"http": proxy, "https": proxy} if proxy is not None else {}
    if settings.insecure:
        session.verify = False
    elif settings.ca_bundle:
        session.verify = settings.ca_bundle
    elif not session.trust_env:
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or \
            os.environ.get("CURL_CA_BUNDLE") or True
    return session
