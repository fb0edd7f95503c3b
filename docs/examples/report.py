#!/usr/bin/env python3
"""Write a report while holding a DoubleDutch lock, fenced by its token.

The README's Python example, complete: it takes the lock "reports" through
the original DoubleDutch API, writes the report through a resource that
refuses writes with a lower fencing token than it has seen, and releases
the lock. Any node will do: a follower answers 307 and requests follows it
to the leader, keeping the method (DELETE stays DELETE).

    python3 docs/examples/report.py                       # the cluster of scripts/cluster.sh
    python3 docs/examples/report.py --url http://127.0.0.1:8001 --key KEY   # dev

Needs the requests package (Debian: apt-get install python3-requests).
Exit status: 0 written, 1 error, 2 the lock was busy.
"""
import argparse
import os
import sys

import requests


class StaleTokenError(Exception):
    """The resource has seen a newer fencing token: this writer's lock has
    expired and been granted to someone else meanwhile."""


def write_report(fencing_token, out_dir="reports"):
    """The protected resource: a folder with the report and the highest
    fencing token that has written to it. A write with a lower token is
    refused, which is what keeps a paused client (GC, swap, a stopped VM)
    whose lock expired from overwriting its successor's work."""
    os.makedirs(out_dir, exist_ok=True)
    fence_path = os.path.join(out_dir, "fence")
    try:
        with open(fence_path) as f:
            highest = int(f.read().strip() or 0)
    except FileNotFoundError:
        highest = 0
    if fencing_token < highest:
        raise StaleTokenError(f"token {fencing_token} is older than {highest}")
    report = os.path.join(out_dir, "report.txt")
    with open(report + ".tmp", "w") as f:
        f.write(f"report written under fencing token {fencing_token}\n")
    os.replace(report + ".tmp", report)
    with open(fence_path, "w") as f:
        f.write(f"{fencing_token}\n")
    return report


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=os.environ.get("DOUBLEDUTCH_URL", "https://localhost:8001"),
                   help="any node's API URL (env DOUBLEDUTCH_URL)")
    p.add_argument("--key", default=os.environ.get("DOUBLEDUTCH_API_KEY"),
                   help="API key (env DOUBLEDUTCH_API_KEY; default: first line of --key-file)")
    p.add_argument("--key-file", default="certs/api-key.txt", help="file whose first line is the API key")
    p.add_argument("--ca", default=os.environ.get("DOUBLEDUTCH_CA", "certs/ca.crt"),
                   help="CA that signed the nodes' certificates (ignored for http:// URLs)")
    p.add_argument("--out", default="reports", help="folder of the protected report")
    return p.parse_args()


def main():
    args = parse_args()
    base = args.url.rstrip("/")
    key = args.key or open(args.key_file).readline().strip()
    verify = args.ca if base.startswith("https:") else True

    r = requests.get(f"{base}/getlock", params={"auth": key, "lockname": "reports", "lifetime": 20, "timeout": 3},
                     verify=verify)
    r.raise_for_status()
    lock = r.json()          # {"servername", "lockname", "sessiontoken", "lockacquired", "fencingtoken"}
    if not lock["lockacquired"]:
        print("the lock 'reports' is busy; try again later")
        return 2
    try:
        path = write_report(fencing_token=lock["fencingtoken"], out_dir=args.out)   # the resource refuses lower tokens
        print(f"wrote {path} with fencing token {lock['fencingtoken']}")
    finally:
        r = requests.delete(f"{base}/releaselock",
                            params={"lockname": "reports", "token": lock["sessiontoken"]}, verify=verify)
    if not (r.ok and r.json().get("lockreleased")):
        print(f"release failed: {r.status_code} {r.text}", file=sys.stderr)
        return 1
    print("released")
    return 0


if __name__ == "__main__":
    sys.exit(main())
