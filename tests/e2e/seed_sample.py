"""The seed document's sample server flow, run as written against a real peernetd.

The sample posts a body that is not valid JSON (its unique_id string is never closed); the
daemon must answer 400 with a message that says so. The same request completed must register a
server in the default room, since the sample names no room and sends no Content-Type.
"""
import os
import sys

import requests

BASE = os.environ["PEERNET"]


def run_seed_sample():
    # The seed's sample, verbatim but for the URL (the seed's own host is not ours).
    url = 'https://myserver.local'
    url = BASE

    response = requests.post(url + '/server', '''
{
  "unique_id": "
}
''')
    return response


def main():
    failures = []

    response = run_seed_sample()
    body = response.json()
    if response.status_code != 400:
        failures.append(f"seed sample: expected 400, got {response.status_code} {response.text}")
    if body.get("code") != "invalid_argument" or "invalid JSON" not in body.get("message", ""):
        failures.append(f"seed sample: error body does not name the problem: {body}")
    if "Content-Type" in response.request.headers:
        failures.append("seed sample: requests sent a Content-Type; the sample is meant to send none")

    completed = requests.post(BASE + '/server', '''
{
  "unique_id": "seed-camera"
}
''')
    if completed.status_code != 201:
        failures.append(f"completed sample: expected 201, got {completed.status_code} {completed.text}")
    else:
        created = completed.json()
        if created["server"]["room"] != "default" or not created.get("token"):
            failures.append(f"completed sample: not in the default room with a token: {created}")
        listing = requests.get(BASE + '/rooms/default/servers').json()
        ids = [s["unique_id"] for s in listing.get("servers", [])]
        if ids != ["seed-camera"]:
            failures.append(f"listing of the default room: expected ['seed-camera'], got {ids}")
        if "token" in str(listing):
            failures.append("listing leaks a token")

    for failure in failures:
        print("FAIL:", failure)
    checks = 6
    print(f"seed sample: {checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
