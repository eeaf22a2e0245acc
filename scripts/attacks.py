#!/usr/bin/env python3
"""Issue 35's attacks, measured against a release scimd on this machine (stdlib only).

Each attack reports what the issue measured: the server's memory (VmRSS before and after,
VmHWM: its peak so far), the latency of another tenant's request during the attack, and
whether the process survived. Run by scripts/attacks.sh, which starts the server; results go
in docs/security.md ("Measured") and the issue's closing note. Not a test: numbers vary with
the machine.
"""
import http.client, json, os, re, socket, subprocess, sys, threading, time, urllib.parse

PORT, MPORT, PID, WORK, BIN = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                               sys.argv[4], sys.argv[5])
HOST = "127.0.0.1"


def mem():
    status = open(f"/proc/{PID}/status").read()
    get = lambda k: int(re.search(rf"{k}:\s+(\d+)", status).group(1)) // 1024
    return get("VmRSS"), get("VmHWM")


def alive():
    try:
        os.kill(PID, 0)
        return True
    except OSError:
        return False


def request(method, path, body=None, headers=None, port=PORT, timeout=60, source=None):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout,
                                   source_address=(source, 0) if source else None)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheaders(), data


def scimd(*args, env=None):
    e = dict(os.environ, SCIMD_DATABASE_URL=f"sqlite://{WORK}/data/scimd.db", **(env or {}))
    out = subprocess.run([BIN, *args], cwd=WORK, env=e, capture_output=True, text=True)
    return out.stdout + out.stderr


def token(tenant, scope):
    out = scimd("token", "create", "--tenant", tenant, "--name", f"t{time.time_ns()}",
                "--scope", scope)
    return re.search(r"(scimd_\S+)", out).group(1)


def timed_other(results, stop, tok):
    """Another tenant's GET /Users, again and again, while an attack runs."""
    while not stop.is_set():
        t = time.time()
        try:
            request("GET", "/t/other/scim/v2/Users?count=1",
                    headers={"Authorization": f"Bearer {tok}"}, timeout=60)
        except Exception:
            pass
        results.append(time.time() - t)
        time.sleep(0.05)


def attack(name, fn, other_tok):
    rss0, _ = mem()
    lat, stop = [], threading.Event()
    t = threading.Thread(target=timed_other, args=(lat, stop, other_tok))
    t.start()
    started = time.time()
    detail = fn()
    took = time.time() - started
    stop.set()
    t.join()
    rss1, hwm = mem() if alive() else (0, 0)
    worst = max(lat) if lat else 0
    print(f"| {name} | {rss0} → {rss1} MB (peak {hwm}) | {worst*1000:.0f} ms | "
          f"{'yes' if alive() else 'NO'} | {took:.1f} s | {detail} |", flush=True)


class Console:
    def __init__(self):
        self.cookies = {}

    def _headers(self, extra=None):
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        h.update(extra or {})
        return h

    def _keep(self, headers):
        for k, v in headers:
            if k.lower() == "set-cookie":
                name, val = v.split(";")[0].split("=", 1)
                self.cookies[name] = val

    def get(self, path):
        s, h, b = request("GET", path, headers=self._headers())
        self._keep(h)
        return s, b.decode(errors="replace")

    def post(self, path, form, extra=None):
        body = urllib.parse.urlencode(form)
        s, h, b = request("POST", path, body=body, headers=self._headers(
            dict({"Content-Type": "application/x-www-form-urlencoded"}, **(extra or {}))))
        self._keep(h)
        return s, b.decode(errors="replace")

    def csrf(self, page):
        m = re.search(r'name="csrf" value="([^"]*)"', page)
        return m.group(1) if m else ""

    def sign_in(self, user, password, extra=None):
        _, page = self.get("/console/login")
        s, _ = self.post("/console/login", {"csrf": self.csrf(page), "username": user,
                                            "password": password, "next": "/console/"}, extra)
        return s


def main():
    default_tok = open(f"{WORK}/bootstrap.token").read().strip()
    scimd("tenant", "create", "other")
    other_tok = token("other", "users:rw")
    events_tok = token("default", "events:r")
    scimd("admin", "create", "alice", env={"SCIMD_ADMIN_PASSWORD": "correct horse battery staple"})
    print("| attack | memory | other tenant's worst latency | survived | took | detail |")
    print("|---|---|---|---|---|---|")

    def methods():
        for i in range(300):
            s = socket.create_connection((HOST, PORT))
            s.sendall(f"X{i}{'A' * 100_000} /healthz HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            try:
                s.recv(100)
            except OSError:
                pass
            s.close()
        _, _, body = request("GET", "/metrics", port=MPORT)
        return f"/metrics {len(body)} bytes after 300 × 100 KB methods"
    attack("1. metrics label bomb", methods, other_tok)

    con = Console()
    con.sign_in("alice", "correct horse battery staple")
    _, page = con.get("/console/tenants")
    csrf = con.csrf(page)
    con.post("/console/apps/new", {"csrf": csrf, "action": "create", "name": "hr",
                                   "source_kind": "tenant", "source_tenant": "other",
                                   "target_url": f"http://{HOST}:{PORT}/t/default/scim/v2",
                                   "token": default_tok})
    nest = "[userName]"
    for _ in range(10):
        nest = f'Replace({nest}, "a", , , "aaaaaaaaaa", , )'

    def expression():
        s, page = con.get("/console/apps/hr/mappings?expression=" + urllib.parse.quote(nest))
        return f"tester {s}: {'refused' if 'over the limit' in page else 'not refused'}"
    attack("2. nested Replace in the tester", expression, other_tok)

    def sockets(sources):
        held = []
        for src in sources:
            try:
                s = socket.create_connection((HOST, PORT), source_address=(src, 0))
                held.append(s)
            except OSError:
                pass
        t = time.time()
        request("GET", "/healthz", timeout=60)
        took = time.time() - t
        for s in held:
            s.close()
        return f"/healthz in {took*1000:.0f} ms with {len(held)} sockets open"
    attack("4a. 1,100 idle sockets, one address", lambda: sockets(["127.0.0.1"] * 1100), other_tok)
    many = [f"127.0.{i // 200}.{2 + i % 200}" for i in range(1100)]
    attack("4b. 1,100 idle sockets, 1,100 addresses", lambda: sockets(many), other_tok)

    def long_polls():
        head = json.loads(request("GET", "/t/default/events?after=latest",
                                  headers={"Authorization": f"Bearer {events_tok}"})[2])["next_after"]
        codes = {}
        lock = threading.Lock()

        def one():
            try:
                s, _, _ = request("GET", f"/t/default/events?after={head}&wait=20",
                                  headers={"Authorization": f"Bearer {events_tok}"})
            except Exception:
                s = "error"
            with lock:
                codes[s] = codes.get(s, 0) + 1
        ts = [threading.Thread(target=one) for _ in range(1100)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return f"answers {codes}"
    attack("4c. 1,100 long polls, one token", long_polls, other_tok)

    def hostile_target():
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((HOST, 0))
        srv.listen(16)
        port = srv.getsockname()[1]

        def serve():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                c.recv(65536)
                try:
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\n\r\n")
                    chunk = b" " * (1 << 20)
                    for _ in range(1024):
                        c.sendall(chunk)
                except OSError:
                    pass
                c.close()
        threading.Thread(target=serve, daemon=True).start()
        s, page = con.post("/console/apps/new", {
            "csrf": csrf, "action": "test", "name": "hostile", "source_kind": "tenant",
            "source_tenant": "other", "target_url": f"http://{HOST}:{port}/scim/v2",
            "token": "x"})
        srv.close()
        return f"Test connection {s}: {'refused past the limit' if 'larger than' in page else page[-200:]}"
    attack("6a. target streaming 1 GiB", hostile_target, other_tok)

    big = "x" * 60_000
    for i in range(300):
        request("POST", "/t/default/scim/v2/Users",
                body=json.dumps({"userName": f"big{i}@example.com", "title": big}),
                headers={"Authorization": f"Bearer {default_tok}",
                         "Content-Type": "application/scim+json"})

    def big_pages():
        sizes = []
        def one():
            _, _, b = request("GET", "/t/default/scim/v2/Users?count=1000",
                              headers={"Authorization": f"Bearer {default_tok}"})
            sizes.append((len(b), json.loads(b)["itemsPerPage"]))
        ts = [threading.Thread(target=one) for _ in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return f"6 pages: {sorted(set(sizes))} (bytes, itemsPerPage) of 300 users × 60 KB"
    attack("6b. 6 × GET /Users?count=1000", big_pages, other_tok)

    def uploads():
        boundary = "----scimdAttack"
        rows = "id,userName\n" + "".join(f"{i},user{i}@example.com{'x' * 20}\n" for i in range(700_000))
        rows = rows[: 31 << 20]
        codes = []
        def one(n):
            c2 = Console()
            c2.cookies = dict(con.cookies)
            fields = {"csrf": csrf, "action": "test-source", "name": f"up{n}", "source_kind": "upload",
                      "source_id": "id"}
            body = b"".join(
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                for k, v in fields.items())
            body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"source_file\"; "
                     f"filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
            body += rows.encode() + f"\r\n--{boundary}--\r\n".encode()
            s, _, _ = request("POST", "/console/apps/new", body=body, headers=c2._headers(
                {"Content-Type": f"multipart/form-data; boundary={boundary}"}), timeout=120)
            codes.append(s)
        ts = [threading.Thread(target=one, args=(n,)) for n in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return f"4 × 31 MiB uploads: answers {sorted(codes)}"
    attack("6c. 4 parallel 31 MiB uploads", uploads, other_tok)

    def spray():
        known = Console()
        known.sign_in("alice", "correct horse battery staple")
        known.post("/console/logout", {"csrf": known.csrf(known.get("/console/tenants")[1])})
        results, lock = {}, threading.Lock()
        def guess(i):
            src = f"127.0.1.{1 + i % 250}"
            c = Console()
            try:
                _, h, b = request("GET", "/console/login", source=src)
                c._keep(h)
                body = urllib.parse.urlencode({"csrf": c.csrf(b.decode()), "username": "alice",
                                               "password": "wrong", "next": "/console/"})
                s, _, _ = request("POST", "/console/login", body=body, headers=c._headers(
                    {"Content-Type": "application/x-www-form-urlencoded"}), source=src)
            except Exception:
                s = "error"
            with lock:
                results[s] = results.get(s, 0) + 1
        end = time.time() + 30
        i = 0
        while time.time() < end:
            threading.Thread(target=guess, args=(i,)).start()
            i += 1
            time.sleep(0.05)
        time.sleep(2)
        ok = 0
        for _ in range(5):
            if known.sign_in("alice", "correct horse battery staple") == 303:
                ok += 1
                known.post("/console/logout", {"csrf": known.csrf(known.get("/console/tenants")[1])})
        return f"{i} guesses at 20/s from 250 addresses: {results} (401 = checked); the operator's browser: {ok}/5 sign-ins"
    attack("7. sign-in spray", spray, other_tok)


main()
