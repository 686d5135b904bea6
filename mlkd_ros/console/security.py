"""Who may open the console: loopback by default; any other bind needs the access token.

The token reaches the server as `?token=` once (the page then gets an HttpOnly, SameSite=Strict
cookie and is redirected to a clean URL), as that cookie, or as `Authorization: Bearer`. Requests
whose Origin is not the console's own are refused (a page on another site cannot drive the drone),
and on a loopback bind the Host must be a loopback name (DNS rebinding: evil.example -> 127.0.0.1).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

log = logging.getLogger("mlkd.console")

COOKIE = "mlkd_console_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


class TokenError(ValueError):
    """The token file cannot be used (missing, unreadable, empty)."""


def is_loopback(address: str) -> bool:
    if address.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: treat as reachable from outside


def resolve_token(bind_address: str, token: str, token_file: str) -> tuple[str | None, str]:
    """(token or None, where it came from). A non-loopback bind always gets one."""
    if token:
        return token, "parameter"
    if token_file:
        try:
            text = Path(token_file).read_text().strip()
        except OSError as exc:
            raise TokenError(f"cannot read token_file {token_file}: {exc}") from exc
        if not text:
            raise TokenError(f"token_file {token_file} is empty")
        return text, f"file {token_file}"
    if is_loopback(bind_address):
        return None, "none (loopback bind)"
    return secrets.token_urlsafe(24), "generated"


def _host_name(host: str) -> str:
    """Host header without the port ('[::1]:8080' -> '[::1]', 'a:80' -> 'a')."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass
class Guard:
    token: str | None
    loopback: bool
    allowed_origins: set[str] = field(default_factory=set)
    _logged: set[tuple[str, str]] = field(default_factory=set)  # (peer, reason) already logged

    def given_token(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:].strip()
        return request.query.get("token") or request.cookies.get(COOKIE, "")

    def check(self, request: web.Request) -> str | None:
        """None when the request may pass, else why it is refused (the reply says it too)."""
        if self.loopback and _host_name(request.host) not in LOOPBACK_NAMES:
            return f"host {request.host!r} refused: this console is bound to loopback"
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}" and origin not in self.allowed_origins:
            return f"cross-origin request from {origin!r} refused"
        if self.token is not None:
            given = self.given_token(request)
            if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
                return "access token required: open the address with ?token= printed in the operator_console log"
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        why = self.check(request)
        if why is not None:
            status = 401 if why.startswith("access token") else 403
            if len(self._logged) < 1000 and (request.remote, why) not in self._logged:  # a scan cannot flood the log
                self._logged.add((request.remote, why))
                log.warning("refused %s %s from %s: %s", request.method, request.path, request.remote, why)
            return web.Response(status=status, text=why + "\n")
        if self.token is not None and "token" in request.query and request.path == "/":
            # Swap the token in the URL for a cookie, so it leaves the address bar and the history.
            resp = web.HTTPFound("/")
            resp.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
            return resp
        return await handler(request)
