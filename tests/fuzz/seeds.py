#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (tests/fuzz/corpus/<target>/seed-*).

    python3 tests/fuzz/seeds.py

Files the fuzzer added to the corpora (named by their SHA-1) are left alone. Standard library
only: the protobuf encoding is written out by hand below.

request_fuzz replaces placeholders in its input with live ids and tokens before parsing (see
request_fuzz.cpp). A placeholder is shorter than what replaces it, so every length written here
(Content-Length, chunk sizes, protobuf length prefixes) counts the bytes after replacement.
"""

import os
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

ID_LENGTH = 22  # random_id(): 16 random bytes in base64url
TOKEN_LENGTH = 43  # random_token(): 32 random bytes in base64url
PLACEHOLDERS = {
    b"TOKEN_ROOM": TOKEN_LENGTH,
    b"TOKEN_SERVER": TOKEN_LENGTH,
    b"TOKEN_KNOCK": TOKEN_LENGTH,
    b"ROOM_ID": ID_LENGTH,
    b"SERVER_ID": ID_LENGTH,
    b"KNOCK_ID": ID_LENGTH,
}


# Whether lengths count placeholders as replaced: true for request_fuzz, false for the decoding
# targets, which replace nothing.
LIVE = True


def live_length(data: bytes) -> int:
    """The length of `data` once request_fuzz has replaced its placeholders (when LIVE)."""
    n = len(data)
    if not LIVE:
        return n
    for placeholder, real in PLACEHOLDERS.items():
        n += data.count(placeholder) * (real - len(placeholder))
    return n


# ---- protobuf, by hand ------------------------------------------------------------------------


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def v(number: int, value: int) -> bytes:
    """A varint field (integers, bools, enums)."""
    return key(number, 0) + varint(value)


def s(number: int, value) -> bytes:
    """A length-delimited field: a string, bytes or an encoded message."""
    data = value.encode() if isinstance(value, str) else value
    return key(number, 2) + varint(live_length(data)) + data


def m(number: int, *fields: bytes) -> bytes:
    return s(number, b"".join(fields))


def fixed32(number: int, value: int) -> bytes:
    return key(number, 5) + struct.pack("<I", value)


def fixed64(number: int, value: int) -> bytes:
    return key(number, 1) + struct.pack("<Q", value)


OFFER = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\n"
ANSWER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n"
CANDIDATE = "candidate:842163049 1 udp 1677729535 192.0.2.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0"


def pb_candidate(candidate=CANDIDATE, mid="0", index=0, ufrag="EsAw"):
    return s(1, candidate) + s(2, mid) + v(3, index) + s(4, ufrag)


def pb_timestamp(seconds, nanos=0):
    return v(1, seconds) + (v(2, nanos) if nanos else b"")


def pb_service_camera():
    # camera.proto: codec = 100, width = 101, height = 102, frame_rate = 103, snapshot = 104
    return (s(1, "peernet.camera") + s(2, "1") + s(100, "h264") + v(101, 1920) + v(102, 1080) +
            v(103, 30) + v(104, 1))


def pb_service_sensor():
    # sensor.proto: sensors = 200 (SensorInfo id, kind, unit, name), history_seconds = 201
    return (s(1, "peernet.sensor") + s(2, "2") +
            m(200, s(1, "t1"), v(2, 1), s(3, "C"), s(4, "kitchen")) +
            m(200, s(1, "h1"), v(2, 2), s(3, "%")) + v(201, 3600))


def pb_service_unknown_extension():
    # Extension fields nobody here can name: kept byte for byte, returned to binary readers.
    return (s(1, "vendor.thing") + s(2, "7") + s(5000, b"\x01\x02opaque") + v(5001, 42) +
            fixed64(5002, 7) + fixed32(5003, 9))


def pb_server(unique_id="SERVER_ID", room="ROOM_ID"):
    return (s(1, unique_id) + s(2, room) + s(3, "Porch camera") + m(4, pb_service_camera()) +
            m(4, pb_service_sensor()) + v(5, 60) + m(6, pb_timestamp(1780000000, 5)))


def pb_knock():
    return (m(1, pb_candidate()) + s(4, "peernet.camera") + s(5, "1") + s(6, OFFER) +
            m(1, pb_candidate("", "0", 0, "")))


# The requests of every RPC as (method, token, JSON body, binary body); the binary body is made
# when asked for, so that its lengths follow LIVE.
RPCS = [
    ("CreateRoom", None,
     '{"room":{"unique_id":"living-room","display_name":"Living room"}}',
     lambda: m(1, s(1, "living-room"), s(2, "Living room"))),
    ("GetRoom", None, '{"room":"ROOM_ID"}', lambda: s(1, "ROOM_ID")),
    ("DeleteRoom", "TOKEN_ROOM", '{"room":"ROOM_ID"}', lambda: s(1, "ROOM_ID")),
    ("CreateServer", None,
     '{"server":{"unique_id":"porch-cam","room":"ROOM_ID","display_name":"Porch camera",'
     '"ttl_seconds":60,"services":[{"protocol":"peernet.camera","version":"1",'
     '"[peernet.camera.codec]":"h264","[peernet.camera.width]":1920,'
     '"[peernet.camera.height]":1080},{"protocol":"peernet.sensor",'
     '"[peernet.sensor.sensors]":[{"id":"t1","kind":"SENSOR_KIND_TEMPERATURE","unit":"C"}]}]}}',
     lambda: m(1, pb_server("porch-cam"))),
    ("GetServer", "TOKEN_SERVER", '{"server":"SERVER_ID"}', lambda: s(1, "SERVER_ID")),
    ("DeleteServer", "TOKEN_SERVER", '{"server":"SERVER_ID"}', lambda: s(1, "SERVER_ID")),
    ("ListServers", None, '{"room":"ROOM_ID","protocol":"peernet.camera","version":"1"}',
     lambda: s(1, "ROOM_ID") + s(2, "peernet.camera") + s(3, "1")),
    ("CreateService", "TOKEN_SERVER",
     '{"server":"SERVER_ID","service":{"protocol":"peernet.extra","version":"2",'
     '"[peernet.file.share_name]":"docs","[peernet.file.writable]":false}}',
     lambda: s(1, "SERVER_ID") + m(2, s(1, "peernet.extra"), s(2, "2"), s(300, "docs"),
                   v(301, 0))),
    ("DeleteService", "TOKEN_SERVER", '{"server":"SERVER_ID","protocol":"peernet.file"}',
     lambda: s(1, "SERVER_ID") + s(2, "peernet.file")),
    ("UpdateService", "TOKEN_SERVER",
     '{"server":"SERVER_ID","service":{"protocol":"peernet.file","[peernet.file.writable]":true}}',
     lambda: s(1, "SERVER_ID") + m(2, pb_service_unknown_extension())),
    ("CreateKnock", None,
     '{"server":"SERVER_ID","knock":{"protocol":"peernet.camera","version":"1","offer":'
     '"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n","ice_candidates":'
     '[{"candidate":"' + CANDIDATE + '","sdpMid":"0","sdpMLineIndex":0}]},"wait_seconds":2}',
     lambda: s(1, "SERVER_ID") + m(2, pb_knock()) + v(3, 2)),
    ("DeleteKnock", "TOKEN_KNOCK", '{"knock":"KNOCK_ID"}', lambda: s(1, "KNOCK_ID")),
    ("GetKnock", "TOKEN_KNOCK", '{"knock":"KNOCK_ID","wait_seconds":5,"since":"1"}',
     lambda: s(1, "KNOCK_ID") + v(2, 5) + v(3, 1)),
    ("ListKnocks", "TOKEN_SERVER", '{"server":"SERVER_ID","wait_seconds":10,"since":"0"}',
     lambda: s(1, "SERVER_ID") + v(2, 10) + v(3, 0)),
    ("UpdateKnock", "TOKEN_SERVER",
     '{"knock":"KNOCK_ID","answer":"v=0\\r\\ns=-\\r\\n","ice_candidates":[{"candidate":"'
     + CANDIDATE + '","sdp_mid":"0","sdp_line_index":0}],"next_poll":{"wait_seconds":3,'
     '"since":"1"}}',
     lambda: s(1, "KNOCK_ID") + s(2, ANSWER) + m(5, pb_candidate()) + m(6, v(2, 3), v(3, 1))),
]


# ---- HTTP ------------------------------------------------------------------------------------


def clear_of_placeholders(data: bytes, cut: int) -> int:
    """Moves a cut in `data` past any placeholder it would split: request_fuzz replaces whole
    placeholders only, and chunk framing between the halves would hide one."""
    for placeholder in PLACEHOLDERS:
        start = data.find(placeholder)
        while start != -1:
            if start < cut < start + len(placeholder):
                cut = start + len(placeholder)
            start = data.find(placeholder, start + 1)
    return cut


def http(method, target, body=b"", token=None, content_type=None, headers=(), version="1.1",
         chunks=None):
    """One request. With `chunks`, the body is sent chunked in pieces of those sizes."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {target} HTTP/{version}", "Host: peernet.local"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines += list(headers)
    if chunks:
        lines.append("Transfer-Encoding: chunked")
    elif body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {live_length(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if not chunks:
        return head + body
    out = bytearray(head)
    rest = body
    for size in chunks:
        size = clear_of_placeholders(rest, size)
        piece, rest = rest[:size], rest[size:]
        out += f"{live_length(piece):x}\r\n".encode() + piece + b"\r\n"
    if rest:
        out += f"{live_length(rest):x};ext=1\r\n".encode() + rest + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


def request_seeds():
    seeds = {}
    for method, token, json_body, binary in RPCS:
        binary_body = binary()
        target = f"/peernet.PeerNetService/{method}"
        name = method.lower()
        seeds[f"connect-json-{name}"] = http("POST", target, json_body, token, "application/json")
        seeds[f"connect-proto-{name}"] = http("POST", target, binary_body, token,
                                              "application/proto")

    j = "application/json"
    p = "application/x-protobuf"
    camera = ('{"protocol":"peernet.camera","version":"1","[peernet.camera.codec]":"vp8",'
              '"[peernet.camera.snapshot]":true}')
    rest = {
        "rest-create-room": http("POST", "/rooms", '{"display_name":"Kitchen"}', None, j),
        "rest-create-room-named-proto": http("POST", "/rooms", s(1, "attic") + s(2, "Attic"),
                                             None, p, ["Accept: application/x-protobuf"]),
        "rest-get-room": http("GET", "/rooms/ROOM_ID"),
        "rest-get-default-room": http("GET", "/rooms/default", headers=["Accept: */*"]),
        "rest-delete-room": http("DELETE", "/rooms/ROOM_ID", token="TOKEN_ROOM"),
        "rest-list-servers": http("GET", "/rooms/ROOM_ID/servers?protocol=peernet.camera&version=1"),
        "rest-list-servers-default": http("GET", "/rooms/default/servers"),
        "rest-create-server": http(
            "POST", "/servers",
            '{"uniqueId":"garage","room":"ROOM_ID","displayName":"Garage","ttlSeconds":30,'
            '"services":[' + camera + ']}', None, j),
        "rest-create-server-proto": http("POST", "/server", pb_server("shed"), None, p,
                                         ["Accept: application/json"]),
        "rest-refresh-server": http(
            "POST", "/servers", '{"unique_id":"SERVER_ID","room":"ROOM_ID","services":[' + camera +
            ']}', "TOKEN_SERVER", j),
        "rest-get-server": http("GET", "/servers/SERVER_ID", token="TOKEN_SERVER"),
        "rest-delete-server": http("DELETE", "/servers/SERVER_ID", token="TOKEN_SERVER"),
        "rest-create-service": http("POST", "/servers/SERVER_ID/services",
                                    '{"protocol":"peernet.extra","version":"3"}', "TOKEN_SERVER", j),
        "rest-put-service": http("PUT", "/servers/SERVER_ID/services/peernet.camera", camera,
                                 "TOKEN_SERVER", j),
        "rest-put-service-proto": http("PUT", "/servers/SERVER_ID/services/vendor.thing",
                                       pb_service_unknown_extension(), "TOKEN_SERVER", p,
                                       ["Accept: application/x-protobuf"]),
        "rest-delete-service": http("DELETE", "/servers/SERVER_ID/services/peernet.file",
                                    token="TOKEN_SERVER"),
        "rest-create-knock": http(
            "POST", "/servers/SERVER_ID/knocks?wait=3",
            '{"protocol":"peernet.sensor","offer":"v=0\\r\\n","ice_candidates":[{"candidate":"'
            + CANDIDATE + '","sdpMLineIndex":0,"sdpMid":"0"}]}', None, j),
        "rest-create-knock-proto": http("POST", "/servers/SERVER_ID/knocks", pb_knock(), None, p),
        "rest-list-knocks": http("GET", "/servers/SERVER_ID/knocks?wait=5&since=0",
                                 token="TOKEN_SERVER"),
        "rest-list-knocks-now": http("GET", "/servers/SERVER_ID/knocks", token="TOKEN_SERVER",
                                     headers=["Accept: application/x-protobuf"]),
        "rest-get-knock-knocker": http("GET", "/knocks/KNOCK_ID?wait=4&since=1",
                                       token="TOKEN_KNOCK"),
        "rest-get-knock-server": http("GET", "/knocks/KNOCK_ID", token="TOKEN_SERVER"),
        "rest-answer-knock": http(
            "PATCH", "/knocks/KNOCK_ID?wait=2&since=1",
            '{"answer":"v=0\\r\\ns=-\\r\\n","ice_candidates":[{"candidate":"' + CANDIDATE +
            '","sdp_mid":"0"}]}', "TOKEN_SERVER", j),
        "rest-reject-knock": http("PATCH", "/knocks/KNOCK_ID", '{"reject":true,"reason":"busy"}',
                                  "TOKEN_SERVER", j),
        "rest-trickle-knocker": http(
            "PATCH", "/knocks/KNOCK_ID",
            m(5, pb_candidate()) + m(5, pb_candidate("", "", 0, "")), "TOKEN_KNOCK", p),
        "rest-delete-knock": http("DELETE", "/knocks/KNOCK_ID", token="TOKEN_KNOCK"),
        "rest-healthz": http("GET", "/healthz"),
        "rest-healthz-head": http("HEAD", "/healthz", version="1.0"),
        "rest-metrics": http("GET", "/metrics", headers=["Connection: close"]),
    }
    seeds.update(rest)

    # A server's session in one connection: answer the knock, trickle, read it as the knocker,
    # poll for the next, then dismiss it.
    seeds["pipelined-knock-exchange"] = b"".join([
        http("PATCH", "/knocks/KNOCK_ID", '{"answer":"v=0\\r\\n"}', "TOKEN_SERVER", j),
        http("PATCH", "/knocks/KNOCK_ID",
             '{"ice_candidates":[{"candidate":"' + CANDIDATE + '","sdpMLineIndex":0}]}',
             "TOKEN_KNOCK", j),
        http("GET", "/knocks/KNOCK_ID?since=1", token="TOKEN_KNOCK"),
        http("GET", "/servers/SERVER_ID/knocks?since=1&wait=1", token="TOKEN_SERVER"),
        http("DELETE", "/knocks/KNOCK_ID", token="TOKEN_SERVER"),
    ])
    seeds["pipelined-server-life"] = b"".join([
        http("POST", "/servers", '{"unique_id":"life","room":"ROOM_ID","services":[' + camera +
             ']}', None, j),
        http("GET", "/rooms/ROOM_ID/servers?protocol=peernet.camera"),
        http("POST", "/servers/life/knocks", '{"protocol":"peernet.camera","offer":"v=0"}', None,
             j),
        http("GET", "/healthz", headers=["Connection: close"]),
        http("GET", "/metrics"),  # never read: the connection closed before it
    ])
    seeds["pipelined-connect-mixed"] = b"".join([
        http("POST", "/peernet.PeerNetService/GetRoom", s(1, "ROOM_ID"), None, "application/proto"),
        http("POST", "/peernet.PeerNetService/ListServers", '{"room":"ROOM_ID"}', None,
             "application/json; charset=utf-8"),
        http("POST", "/peernet.PeerNetService/GetKnock", '{"knock":"KNOCK_ID"}', "TOKEN_SERVER",
             j),
    ])

    # Chunked bodies.
    seeds["chunked-create-server"] = http(
        "POST", "/servers", '{"room":"ROOM_ID","display_name":"chunky","services":[' + camera +
        ']}', None, j, chunks=[5, 17, 1])
    seeds["chunked-connect-proto"] = http("POST", "/peernet.PeerNetService/UpdateKnock",
                                         s(1, "KNOCK_ID") + m(5, pb_candidate()), "TOKEN_KNOCK",
                                         "application/proto", chunks=[3, 40])
    seeds["chunked-trailer"] = (b"POST /rooms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                b"Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n"
                                b"X-Trailer: yes\r\n\r\n")

    # Negotiation and odd but valid requests.
    seeds["accept-q-values"] = http(
        "GET", "/rooms/default", headers=["Accept: application/json;q=0.5, "
                                          "application/x-protobuf;q=0.9, */*;q=0"])
    seeds["curl-form-json"] = http("POST", "/rooms", '{"display_name":"curl"}', None,
                                   "application/x-www-form-urlencoded")
    seeds["no-content-type"] = http("POST", "/rooms", '{"unique_id":"bare"}')
    seeds["bearer-lowercase"] = http("GET", "/servers/SERVER_ID",
                                     headers=["authorization: bearer   TOKEN_SERVER  "])
    seeds["percent-escapes"] = http("GET", "/rooms/de%66ault/servers?protocol=peernet%2Ecamera&"
                                    "version=1+0")
    seeds["expect-continue"] = http("POST", "/rooms", '{"display_name":"e"}', None, j,
                                    ["Expect: 100-continue"])
    seeds["http10-keepalive"] = http("GET", "/healthz", version="1.0",
                                     headers=["Connection: keep-alive"]) + http("GET", "/metrics")

    # Refusals the daemon must answer cleanly.
    seeds["bad-405"] = http("PUT", "/rooms", '{}', None, j)
    seeds["bad-404"] = http("GET", "/nowhere/at/all/")
    seeds["bad-connect-get"] = http("GET", "/peernet.PeerNetService/GetRoom")
    seeds["bad-connect-unknown"] = http("POST", "/peernet.PeerNetService/Teleport", "{}", None, j)
    seeds["bad-media-type"] = http("POST", "/rooms", "<room/>", None, "application/xml")
    seeds["bad-json"] = http("POST", "/rooms", '{"display_name":', None, j)
    seeds["bad-json-unknown-field"] = http("POST", "/rooms", '{"colour":"red"}', None, j)
    seeds["bad-json-deep"] = http("POST", "/servers", '{"services":' + "[" * 40 + "]" * 40 + "}",
                                  None, j)
    seeds["bad-json-utf8"] = http("POST", "/rooms", b'{"display_name":"\xc3\x28"}', None, j)
    seeds["bad-proto"] = http("POST", "/peernet.PeerNetService/GetRoom", b"\x0a\xff\xff", None,
                              "application/proto")
    seeds["bad-proto-utf8"] = http("POST", "/peernet.PeerNetService/GetRoom", s(1, b"\xed\xa0\x80"),
                                   None, "application/proto")
    seeds["bad-escape"] = http("GET", "/rooms/%zz")
    seeds["bad-query"] = http("GET", "/knocks/KNOCK_ID?wait=5&wait=6&colour=1", token="TOKEN_KNOCK")
    seeds["bad-query-number"] = http("GET", "/servers/SERVER_ID/knocks?wait=99999999999",
                                     token="TOKEN_SERVER")
    seeds["bad-body-on-get"] = http("GET", "/rooms/ROOM_ID", '{"room":"x"}', None, j)
    seeds["bad-path-body-mismatch"] = http("PUT", "/servers/SERVER_ID/services/peernet.camera",
                                           '{"protocol":"peernet.file"}', "TOKEN_SERVER", j)
    seeds["bad-wrong-token"] = http("DELETE", "/servers/SERVER_ID", token="TOKEN_KNOCK")
    seeds["bad-no-token"] = http("GET", "/knocks/KNOCK_ID")
    seeds["bad-answer-and-reject"] = http("PATCH", "/knocks/KNOCK_ID",
                                          '{"answer":"v=0","reject":true}', "TOKEN_SERVER", j)
    seeds["bad-knocker-polls"] = http("PATCH", "/knocks/KNOCK_ID?wait=1", '{}', "TOKEN_KNOCK", j)
    seeds["bad-ttl"] = http("POST", "/servers", '{"ttl_seconds":100000}', None, j)
    seeds["bad-timestamp"] = http("POST", "/servers",
                                  '{"expire_time":"yesterday","room":"default"}', None, j)

    # Malformed HTTP.
    seeds["http-bad-method"] = b"BR@W /rooms HTTP/1.1\r\nHost: x\r\n\r\n"
    seeds["http-bad-version"] = b"GET /healthz HTTP/7.1\r\n\r\n"
    seeds["http-no-colon"] = b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"
    seeds["http-obs-fold"] = b"GET /healthz HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n"
    seeds["http-two-lengths"] = (b"POST /rooms HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3"
                                 b"\r\n\r\n{}")
    seeds["http-length-and-chunked"] = (b"POST /rooms HTTP/1.1\r\nContent-Length: 2\r\n"
                                        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    seeds["http-bad-chunk"] = (b"POST /rooms HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"zz\r\n{}\r\n0\r\n\r\n")
    seeds["http-body-over-limit"] = (b"POST /rooms HTTP/1.1\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 262145\r\n\r\n{")
    seeds["http-truncated"] = b"POST /rooms HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"display"
    seeds["http-bare-lf"] = b"GET /healthz HTTP/1.1\nHost: x\n\n"
    seeds["http-nul-in-target"] = b"GET /rooms/a\x00b HTTP/1.1\r\n\r\n"
    seeds["http-headers-over-limit"] = (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 16500 +
                                        b"\r\n\r\n")
    return seeds


# ---- JSON and binary message seeds -----------------------------------------------------------

# Index in tests/fuzz/messages.h, JSON text, binary body.
MESSAGES = [(i, json, binary) for i, (_, _, json, binary) in enumerate(RPCS)]
MESSAGES += [
    (15, '{"unique_id":"cam","room":"r","display_name":"Cam","ttl_seconds":30,"services":'
         '[{"protocol":"peernet.camera","[peernet.camera.codec]":null,'
         '"[peernet.camera.frame_rate]":25}],"expire_time":"2026-05-01T12:00:00.250+02:00"}',
     lambda: pb_server("cam", "r")),
    (16, '{"protocol":"peernet.sensor","version":"2","[peernet.sensor.sensors]":[{"id":"t",'
         '"kind":2,"unit":"%","name":"\\u00e9t\\u00e9 \\ud83c\\udf21"}],'
         '"[peernet.sensor.history_seconds]":"600"}',
     pb_service_sensor),
    (17, '{"unique_id":"k","server":"s","protocol":"p","version":"1","offer":"o","answer":"a",'
         '"state":"KNOCK_STATE_ANSWERED","reason":"","revision":"18446744073709551615",'
         '"create_time":"1970-01-01T00:00:00Z","expire_time":"9999-12-31T23:59:59.999999999Z",'
         '"iceCandidates":[{"candidate":"c","sdpMid":"0","sdpMLineIndex":-1,'
         '"usernameFragment":"u"}],"server_ice_candidates":[]}',
     lambda: (pb_knock() + v(9, 3) + v(13, 7) + m(11, pb_timestamp(0)) +
              m(12, pb_timestamp(-62135596800)))),
]
EXTRA_JSON = [
    (3, '{"server":{"services":[{"protocol":"a","[peernet.file.share_name]":"s",'
        '"[peernet.file.writable]":true,"[peernet.camera.width]":1.0e3}]}}'),
    (13, '{"server":"s","wait_seconds":"30","since":42}'),
    (14, '{"knock":"k","reject":true,"reason":"no","next_poll":{"server":"s","since":"7"}}'),
    (12, '  {"knock" : "k" , "since" : null}  '),
    (10, ''),
]
EXTRA_PROTO = [
    # Unknown fields at the top and in a nested message, a group, a packed-looking blob.
    (4, s(1, "s") + v(99, 1) + key(100, 3) + v(1, 5) + key(100, 4) + fixed32(7, 1)),
    (16, s(1, "x") + s(2, "") + s(999, b"\xff\xfe") + v(104, 0)),
    (17, m(11, pb_timestamp(253402300799, 999999999)) + v(9, 4)),
]


def write(folder: pathlib.Path, name: str, data: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def main():
    global LIVE
    for name, data in request_seeds().items():
        write(CORPUS / "request_fuzz", f"seed-{name}", data)
    LIVE = False
    for n, (index, json, binary) in enumerate(MESSAGES):
        write(CORPUS / "json_fuzz", f"seed-{n:02d}", bytes([index]) + json.encode())
        write(CORPUS / "proto_fuzz", f"seed-{n:02d}", bytes([index]) + binary())
    for n, (index, json) in enumerate(EXTRA_JSON):
        write(CORPUS / "json_fuzz", f"seed-extra-{n:02d}", bytes([index]) + json.encode())
    for n, (index, binary) in enumerate(EXTRA_PROTO):
        write(CORPUS / "proto_fuzz", f"seed-extra-{n:02d}", bytes([index]) + binary)


if __name__ == "__main__":
    os.umask(0o022)
    main()
