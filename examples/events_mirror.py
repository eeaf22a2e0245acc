#!/usr/bin/env python3
"""Mirror a scimd tenant into a SQLite database through the events API (docs/events.md).

Each page of events is applied in one SQLite transaction together with the new cursor, so
after a crash the mirror resumes exactly where its last committed page ended: nothing is
applied twice, nothing is skipped.

    SCIMD_EVENTS_TOKEN=scimd_... python3 examples/events_mirror.py \
        --url http://127.0.0.1:8080 --tenant default --db mirror.db [--once] [--dump]

--once   stop when caught up (default: follow with long polling until interrupted)
--dump   print the mirror as JSON and exit

Standard library only (urllib, sqlite3, json).
"""

import argparse
import json
import os
import sqlite3
import sys
import urllib.error
import urllib.parse
import urllib.request

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, user_name TEXT NOT NULL,
                                  active INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, display_name TEXT NOT NULL,
                                   data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (group_id TEXT NOT NULL, member_id TEXT NOT NULL,
                                        PRIMARY KEY (group_id, member_id));
CREATE TABLE IF NOT EXISTS feed_cursor (one INTEGER PRIMARY KEY CHECK (one = 1),
                                        after INTEGER NOT NULL);
"""


def apply(db, e):
    kind, rid, data = e["type"], e["resource_id"], e["data"]
    if kind in ("user.created", "user.updated", "user.deactivated", "user.reactivated"):
        db.execute(
            "INSERT INTO users (id, user_name, active, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET user_name = excluded.user_name, "
            "active = excluded.active, data = excluded.data",
            (rid, data["userName"], 0 if data.get("active") is False else 1, json.dumps(data)),
        )
    elif kind == "user.deleted":
        # A deleted user leaves every group (scimd sends no member_removed for it).
        db.execute("DELETE FROM users WHERE id = ?", (rid,))
        db.execute("DELETE FROM memberships WHERE member_id = ?", (rid,))
    elif kind in ("group.created", "group.updated"):
        db.execute(
            "INSERT INTO groups (id, display_name, data) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, "
            "data = excluded.data",
            (rid, data["displayName"], json.dumps(data)),
        )
    elif kind == "group.deleted":
        db.execute("DELETE FROM groups WHERE id = ?", (rid,))
        db.execute("DELETE FROM memberships WHERE group_id = ? OR member_id = ?", (rid, rid))
    elif kind == "group.member_added":
        db.execute(
            "INSERT OR IGNORE INTO memberships (group_id, member_id) VALUES (?, ?)",
            (data["group_id"], data["member_id"]),
        )
    elif kind == "group.member_removed":
        db.execute(
            "DELETE FROM memberships WHERE group_id = ? AND member_id = ?",
            (data["group_id"], data["member_id"]),
        )
    # Types added later are skipped, and the cursor moves past them.


def fetch(url, tenant, token, after, wait):
    q = urllib.parse.urlencode({"after": after, "limit": 500, "wait": wait})
    req = urllib.request.Request(
        f"{url.rstrip('/')}/t/{tenant}/events?{q}",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        if e.code == 410:
            sys.exit(
                "the mirror is older than the feed's retention: take ?after=latest, "
                "re-read every user and group through the SCIM API, then follow from there.\n"
                + body
            )
        sys.exit(f"events API answered {e.code}: {body}")


def dump(db):
    users = {r[0]: {"userName": r[1], "active": bool(r[2])} for r in db.execute("SELECT id, user_name, active FROM users")}
    groups = {r[0]: r[1] for r in db.execute("SELECT id, display_name FROM groups")}
    members = sorted([list(r) for r in db.execute("SELECT group_id, member_id FROM memberships")])
    after = db.execute("SELECT after FROM feed_cursor").fetchone()
    print(json.dumps({"users": users, "groups": groups, "members": members,
                      "after": after[0] if after else 0}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="scimd's public URL")
    p.add_argument("--tenant", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--once", action="store_true")
    p.add_argument("--dump", action="store_true")
    a = p.parse_args()
    db = sqlite3.connect(a.db, isolation_level=None)
    db.executescript(SCHEMA)
    if a.dump:
        dump(db)
        return
    token = os.environ.get("SCIMD_EVENTS_TOKEN")
    if not token:
        sys.exit("set SCIMD_EVENTS_TOKEN to a token with the events:r scope")
    row = db.execute("SELECT after FROM feed_cursor").fetchone()
    after = row[0] if row else 0
    while True:
        page = fetch(a.url, a.tenant, token, after, 0 if a.once else 25)
        db.execute("BEGIN")
        for e in page["data"]:
            apply(db, e)
        after = page["next_after"]
        db.execute(
            "INSERT INTO feed_cursor (one, after) VALUES (1, ?) "
            "ON CONFLICT (one) DO UPDATE SET after = excluded.after",
            (after,),
        )
        db.execute("COMMIT")
        if a.once and not page["has_more"]:
            print(f"caught up at {after}", file=sys.stderr)
            return


if __name__ == "__main__":
    main()
