#!/usr/bin/env python3
"""A stand-in for the GitHub Actions OIDC token service, on 127.0.0.1 only (for tests).

Usage: serve.py PORT BEARER ISSUER SUBJECT

Answers as the service behind ACTIONS_ID_TOKEN_REQUEST_URL does: `GET <path>?...&audience=AUD`
with `Authorization: bearer BEARER` gets `{"value": JWT}`, a JWT whose `aud` is AUD, `iss`
ISSUER and `sub` SUBJECT, valid for ten minutes. Its signature is a placeholder: the local
Fulcio test double (tools/sigstore-mock) does not verify tokens. A wrong or missing bearer
token gets 401, a request without `audience` 400. Each request is logged on stdout as one
line: `GET PATH audience=AUD auth=ok|bad STATUS`.
"""
import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict) -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(b'not-a-signature')}"


def main() -> None:
    port, bearer, issuer, subject = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            url = urlsplit(self.path)
            audience = parse_qs(url.query).get("audience", [None])[0]
            scheme, _, given = self.headers.get("Authorization", "").partition(" ")
            auth_ok = scheme.lower() == "bearer" and given == bearer
            if not auth_ok:
                status, body = 401, {"message": "Bad credentials"}
            elif not audience:
                status, body = 400, {"message": "the audience query parameter is required"}
            else:
                now = int(time.time())
                claims = {"iss": issuer, "sub": subject, "aud": audience,
                          "iat": now, "nbf": now, "exp": now + 600}
                status, body = 200, {"count": 1, "value": jwt(claims)}
            print(f"GET {url.path} audience={audience} auth={'ok' if auth_ok else 'bad'} {status}",
                  flush=True)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet: one line per request, printed above
            pass

    HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
