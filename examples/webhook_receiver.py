#!/usr/bin/env python3
"""A scimd webhook receiver that verifies every delivery (Standard Webhooks, docs/events.md).

    WEBHOOK_SECRET=whsec_... python3 examples/webhook_receiver.py --port 9000 --out events.jsonl

For each POST it checks, before trusting anything in the body:
- the `webhook-timestamp` is within 5 minutes of now (replayed old messages are refused);
- one of the space-separated `v1,<signature>` values in `webhook-signature` equals
  base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")), compared in constant
  time, where key is the base64-decoded part of the secret after `whsec_` (during a secret
  rotation scimd signs with both secrets, so either may match);
then answers 204 and appends the event to --out once per `webhook-id` (deliveries are at least
once: a repeat has the same id). A bad signature gets 401, a stale timestamp 400.

Standard library only; an independent implementation of the scheme (it shares no code with
scimd).
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time

TOLERANCE_SECS = 5 * 60


def verify(secret, msg_id, timestamp, body, signatures):
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for part in signatures.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    seen = set()
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        sigs = self.headers.get("webhook-signature", "")
        try:
            fresh = abs(time.time() - int(ts)) <= TOLERANCE_SECS
        except ValueError:
            fresh = False
        if not fresh:
            return self.answer(400)
        if not verify(self.server.secret, msg_id, ts, body, sigs):
            return self.answer(401)
        with Handler.lock:
            if msg_id not in Handler.seen:
                Handler.seen.add(msg_id)
                event = json.loads(body)
                with open(self.server.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(event) + "\n")
        self.answer(204)

    def answer(self, code):
        self.send_response(code)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret:
        sys.exit("set WEBHOOK_SECRET to the endpoint's signing secret (whsec_...)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.secret, server.out = secret, a.out
    print(f"listening on 127.0.0.1:{a.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
