"""A small OpenID Connect provider for the browser tests: what Microsoft Entra ID does for a
county, on a local port. Authorization code flow, ID tokens signed with RS256 (joserfc,
which Authlib and Streamlit use themselves), discovery, JWKS, user info and end session.

Its sign-in page asks for an e-mail address and signs that person in, no password: the
tests decide who is at the keyboard. Never for anything but tests.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "ohjaustaulu-test"
CLIENT_SECRET = secrets.token_urlsafe(24)


class Provider:
    """Start with ``Provider().start()``; ``issuer`` is its address."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.signed_in: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Provider:
        threading.Thread(target=self.server.serve_forever, name="oidc-provider", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "email", "name", "preferred_username"],
        }

    def id_token(self, email: str, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": CLIENT_ID, "sub": email, "email": email, "name": email.split("@")[0].title(),
            "preferred_username": email, "iat": now, "exp": now + 3600,
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, value: Any, status: int = 200) -> None:
                self._send(status, json.dumps(value).encode())

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(provider.metadata())
                elif url.path == "/jwks":
                    self._json({"keys": [provider.key.as_dict(private=False)]})
                elif url.path == "/authorize":
                    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in query.items())
                    page = (
                        "<!doctype html><title>Test sign-in</title><form method=post action=/authorize>"
                        f"{fields}<label>Sähköposti <input name=email id=email></label>"
                        "<button type=submit id=continue>Jatka</button></form>"
                    )
                    self._send(200, page.encode(), "text/html; charset=utf-8")
                elif url.path == "/logout":
                    target = query.get("post_logout_redirect_uri", "/")
                    self._send(302, b"", headers={"Location": target.removesuffix("/oauth2callback") or "/"})
                elif url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    email = next((c["email"] for c in provider.codes.values() if c.get("access_token") == token), None)
                    self._json({"sub": email, "email": email} if email else {"error": "invalid_token"}, 200 if email else 401)
                else:
                    self._send(404, b"{}")

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if url.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {"email": form["email"].strip(), "nonce": form.get("nonce"), "redirect_uri": form["redirect_uri"]}
                    provider.signed_in.append(form["email"].strip())
                    target = form["redirect_uri"] + "?" + urlencode({"code": code, "state": form.get("state", "")})
                    self._send(302, b"", headers={"Location": target})
                elif url.path == "/token":
                    client_id, client_secret = form.get("client_id"), form.get("client_secret")
                    basic = self.headers.get("Authorization", "")
                    if basic.startswith("Basic "):
                        client_id, client_secret = base64.b64decode(basic[6:]).decode().split(":", 1)
                    grant = provider.codes.get(form.get("code", ""))
                    if client_id != CLIENT_ID or client_secret != CLIENT_SECRET or grant is None or "access_token" in grant:
                        self._json({"error": "invalid_grant"}, 400)
                        return
                    grant["access_token"] = secrets.token_urlsafe(16)
                    self._json({
                        "access_token": grant["access_token"], "token_type": "Bearer", "expires_in": 3600,
                        "id_token": provider.id_token(grant["email"], grant["nonce"]),
                    })
                else:
                    self._send(404, b"{}")

        return Handler


def secrets_toml(provider: Provider, *, app_port: int) -> str:
    """The [auth] section a county writes for Entra ID, pointed at this provider."""
    return (
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'server_metadata_url = "{provider.issuer}/.well-known/openid-configuration"\n'
    )
