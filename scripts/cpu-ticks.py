#!/usr/bin/env python3
"""CPU time of a server, for scripts/bench.sh: prints `pid:ticks` for the given process ids
(user + system time from /proc/<pid>/stat, in clock ticks) and, with --postgres, for every
running PostgreSQL process (the backends that serve scimd's pool are children of the
postmaster; their time is the database's share of a request)."""
import os
import sys


def ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def postgres_pids():
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == "postgres":
                        out.append(d)
            except OSError:
                pass
    return out


pids = [p for p in sys.argv[1:] if p != "--postgres"]
if "--postgres" in sys.argv:
    pids += postgres_pids()
print(" ".join(f"{p}:{t}" for p in pids if (t := ticks(p)) is not None))
