#!/usr/bin/env python3
"""A guestbook: a small web site behind nonstop, in Python's standard library only.

Server-rendered HTML, a form, a session cookie, its own SQLite database. It runs as an upstream
of the core (core config `upstreams`), so every request reaches it validated by the broker and
carries the core's headers: X-Request-Id and Idempotency-Key (the request id). A signing is
stored with that key, so a request the core delivers twice signs once. Its stylesheet is a
static file the gateway serves itself (/assets/).

    python3 server.py --port 3000 --db guestbook.sqlite3 [--host 127.0.0.1] [--secure-cookies]

Prints one JSON line {"listening": port} once it accepts connections.
"""

import argparse
import hashlib
import html
import json
import secrets
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

SESSION_COOKIE = "gb_session"
MAX_BODY = 16 * 1024
MAX_NAME = 40
MAX_MESSAGE = 500
SHOWN = 50

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  message TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at REAL NOT NULL
);
-- What each request id did: a delivery of the same id answers the same, and signs nothing.
CREATE TABLE IF NOT EXISTS requests (
  key TEXT PRIMARY KEY,
  session TEXT NOT NULL,
  created_at REAL NOT NULL
);
"""


class Store:
    """The site's state; one connection, one lock (SQLite serialises writers anyway)."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def entries(self):
        with self.lock:
            return self.db.execute(
                "SELECT name, message, created_at FROM entries ORDER BY id DESC LIMIT ?", (SHOWN,)
            ).fetchall()

    def session_name(self, session):
        if session is None:
            return None
        with self.lock:
            row = self.db.execute("SELECT name FROM sessions WHERE id = ?", (session,)).fetchone()
        return row[0] if row else None

    def sign(self, key, session, name, message):
        """Signs once per request key; returns the session the signing belongs to."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                done = None
                if key:
                    done = self.db.execute("SELECT session FROM requests WHERE key = ?", (key,)).fetchone()
                if done:
                    self.db.execute("COMMIT")
                    return done[0]
                now = time.time()
                if session is None or not self.db.execute(
                    "SELECT 1 FROM sessions WHERE id = ?", (session,)
                ).fetchone():
                    session = secrets.token_urlsafe(24)
                    self.db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (session, name, now))
                else:
                    self.db.execute("UPDATE sessions SET name = ? WHERE id = ?", (name, session))
                self.db.execute(
                    "INSERT INTO entries (name, message, created_at) VALUES (?, ?, ?)", (name, message, now)
                )
                if key:
                    self.db.execute("INSERT INTO requests VALUES (?, ?, ?)", (key, session, now))
                self.db.execute("COMMIT")
                return session
            except BaseException:
                self.db.execute("ROLLBACK")
                raise


def page(entries, name, problem=None, form=None):
    form = form or {}
    esc = html.escape
    items = "\n".join(
        f'<li><strong>{esc(n)}</strong> <time>{time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))}</time>'
        f"<p>{esc(m)}</p></li>"
        for n, m, t in entries
    )
    greeting = f"<p class=welcome>Welcome back, {esc(name)}.</p>" if name else ""
    error = f'<p class=problem role=alert>{esc(problem)}</p>' if problem else ""
    return f"""<!doctype html>
<html lang=en>
<head>
<meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>Guestbook</title>
<link rel=stylesheet href="/assets/guestbook.css">
</head>
<body>
<main>
<h1>Guestbook</h1>
{greeting}
{error}
<form method=post action="/entries">
<label>Name <input name=name required maxlength={MAX_NAME} value="{esc(form.get("name", name or ""))}"></label>
<label>Message <textarea name=message required maxlength={MAX_MESSAGE}>{esc(form.get("message", ""))}</textarea></label>
<button type=submit>Sign</button>
</form>
<ol class=entries>
{items}
</ol>
</main>
</body>
</html>
"""


class Handler(BaseHTTPRequestHandler):
    server_version = "guestbook"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        # One JSON line per request, never a body or a cookie.
        sys.stderr.write(
            json.dumps({"msg": "request", "line": fmt % args, "requestId": self.headers.get("x-request-id")})
            + "\n"
        )

    def session(self):
        for part in (self.headers.get("cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE and value:
                return value
        return None

    def send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            if isinstance(v, list):
                for item in v:
                    self.send_header(k, item)
            else:
                self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def html(self, status, text, headers=None):
        body = text.encode("utf-8")
        self.send(
            status,
            body,
            {
                "content-type": "text/html; charset=utf-8",
                "content-security-policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
                "referrer-policy": "same-origin",
                **(headers or {}),
            },
        )

    def do_GET(self):
        if self.path == "/healthz":
            return self.send(200, b"ok\n", {"content-type": "text/plain; charset=utf-8"})
        if self.path.split("?")[0] != "/":
            return self.html(404, "<!doctype html><title>Not found</title><h1>Not found</h1>")
        text = page(self.server.store.entries(), self.server.store.session_name(self.session()))
        etag = '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'
        # Per visitor (it greets by name): a browser may keep it, but asks again each time.
        self.html(200, text, {"etag": etag, "cache-control": "private, no-cache", "vary": "Cookie"})

    do_HEAD = do_GET

    def do_POST(self):
        if self.path != "/entries":
            return self.html(404, "<!doctype html><title>Not found</title><h1>Not found</h1>")
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            return self.html(413, "<!doctype html><title>Too large</title><h1>Too large</h1>")
        if not (self.headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
            return self.html(415, "<!doctype html><title>Unsupported</title><h1>Send the form</h1>")
        fields = parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
        form = {k: v[0].strip() for k, v in fields.items() if v}
        name, message = form.get("name", ""), form.get("message", "")
        problem = None
        if not 1 <= len(name) <= MAX_NAME:
            problem = f"Your name takes 1 to {MAX_NAME} characters."
        elif not 1 <= len(message) <= MAX_MESSAGE:
            problem = f"A message takes 1 to {MAX_MESSAGE} characters."
        if problem:
            text = page(self.server.store.entries(), self.server.store.session_name(self.session()), problem, form)
            return self.html(400, text, {"cache-control": "no-store"})
        key = self.headers.get("idempotency-key")
        session = self.server.store.sign(key, self.session(), name, message)
        cookie = f"{SESSION_COOKIE}={session}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"
        if self.server.secure_cookies:
            cookie += "; Secure"
        # Post/redirect/get: a reload of the page after signing does not sign again.
        self.send(303, b"", {"location": "/", "set-cookie": [cookie], "cache-control": "no-store"})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--db", required=True)
    parser.add_argument("--secure-cookies", action="store_true")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.store = Store(args.db)
    server.secure_cookies = args.secure_cookies
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
