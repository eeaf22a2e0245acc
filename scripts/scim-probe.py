#!/usr/bin/env python3
"""What the package and image checks ask a running scimd (tenant `default`), standard
library only:
  scim-probe.py ready PORT              wait up to 20 s for /readyz; exit 1 if it never answers
  scim-probe.py create PORT TOKEN NAME  POST /Users; prints the HTTP status (201, 409, ...)
  scim-probe.py count PORT TOKEN NAME   prints totalResults of userName eq NAME
A created user's meta.location must be under http://127.0.0.1:PORT/ (the public URL set)."""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def scim(port, token, path, body=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/t/default/scim/v2{path}",
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    return urllib.request.urlopen(req, timeout=10)


def main(argv):
    what, port = argv[1], argv[2]
    if what == "ready":
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                return 0
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        return 1
    token, name = argv[3].strip(), argv[4]
    if what == "create":
        user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name, "active": True}
        try:
            r = scim(port, token, "/Users", user)
        except urllib.error.HTTPError as e:
            print(e.code)
            return 0
        location = json.load(r)["meta"]["location"]
        assert location.startswith(f"http://127.0.0.1:{port}/"), location
        print(r.status)
        return 0
    if what == "count":
        q = urllib.parse.quote(f'userName eq "{name}"')
        print(json.load(scim(port, token, f"/Users?filter={q}"))["totalResults"])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
