#!/usr/bin/env python3
"""Create->knock->expire cycles against a peernetd on loopback, for bench/churn.sh.

A cycle registers a server with a random id and knocks on it once; both are left to expire.
Cycles run in `processes` processes of `threads` threads, each thread on one kept-alive
http.client connection. Stops after `cycles` cycles or `seconds` seconds, whichever comes first,
and prints one line: "cycles=N errors=E seconds=S".
"""
import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import sys
import threading
import time

KNOCK = json.dumps({"protocol": "peernet.camera", "offer": "v=0 offer"})
HEADERS = {"Content-Type": "application/json"}


def post(conn, target, body):
    conn.request("POST", target, body, HEADERS)
    response = conn.getresponse()
    response.read()
    return response.status


def worker(port, claim, deadline, tally, lock):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    done = errors = 0
    while time.monotonic() < deadline and claim():
        server_id = "churn-" + secrets.token_hex(8)
        server = json.dumps({"unique_id": server_id,
                             "services": [{"protocol": "peernet.camera", "version": "1"}]})
        try:
            if post(conn, "/servers", server) != 201 or \
               post(conn, "/servers/" + server_id + "/knocks", KNOCK) != 201:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()  # http.client reconnects on the next request
        done += 1
    conn.close()
    with lock:
        tally[0] += done
        tally[1] += errors


def process(port, quota, deadline, threads, out):
    lock = threading.Lock()
    left = [quota]

    def claim():
        with lock:
            if left[0] <= 0:
                return False
            left[0] -= 1
            return True

    tally = [0, 0]
    pool = [threading.Thread(target=worker, args=(port, claim, deadline, tally, lock))
            for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(tuple(tally))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cycles", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    start = time.monotonic()
    deadline = start + args.seconds
    out = multiprocessing.Queue()
    base, extra = divmod(args.cycles, args.processes)
    procs = [multiprocessing.Process(target=process,
                                     args=(args.port, base + (i < extra), deadline,
                                           args.threads, out))
             for i in range(args.processes)]
    for p in procs:
        p.start()
    cycles = errors = 0
    for _ in procs:
        c, e = out.get(timeout=args.seconds + 60)
        cycles += c
        errors += e
    for p in procs:
        p.join(timeout=10)
    print(f"cycles={cycles} errors={errors} seconds={time.monotonic() - start:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
