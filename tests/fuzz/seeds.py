#!/usr/bin/env python3
"""tests/fuzz/seeds.py: writes the seed corpora in tests/fuzz/corpus/<target>/.

    tests/fuzz/seeds.py [BIN_DIR]

Seeds are small, meaningful inputs: real MQTT packets and conversations, the
repository's configuration files, password and ACL files in mosquitto's
formats, WebSocket upgrade requests and frames. The store seeds of
fuzz_persist come from BIN_DIR/gen_persist_seeds (built by build.sh; default
tests/fuzz/bin), skipped when it is not there. Files this script writes are
named seed-*, so it can be run again; regression inputs (regress-*) are left
alone. Everything is deterministic except the creation time in the header
of the store seeds.
"""
import ctypes
import ctypes.util
import hashlib
import base64
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- MQTT packets ----

def varint(n):
    b = bytearray()
    while True:
        d = n % 128
        n //= 128
        b.append(d | (0x80 if n else 0))
        if not n:
            return bytes(b)


def s(x):
    if isinstance(x, str):
        x = x.encode()
    return struct.pack(">H", len(x)) + x


def pkt(ptype, flags, body):
    return bytes([ptype << 4 | flags]) + varint(len(body)) + body


def prop(pid, kind, v):
    """kind: b byte, h u16, i u32, v varint, s string/binary, p pair"""
    if kind == "b":
        return bytes([pid, v])
    if kind == "h":
        return bytes([pid]) + struct.pack(">H", v)
    if kind == "i":
        return bytes([pid]) + struct.pack(">I", v)
    if kind == "v":
        return bytes([pid]) + varint(v)
    if kind == "s":
        return bytes([pid]) + s(v)
    if kind == "p":
        return bytes([pid]) + s(v[0]) + s(v[1])
    raise ValueError(kind)


def props(*ps):
    body = b"".join(ps)
    return varint(len(body)) + body


USER = prop(0x26, "p", ("k", "v"))


def connect(proto, cid, clean=True, keepalive=60, will=None, user=None, pw=None, p=b"",
            will_props=b""):
    name = "MQIsdp" if proto == 3 else "MQTT"
    flags = 0x02 if clean else 0
    payload = s(cid)
    if will:
        topic, msg, qos, retain = will
        flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
        if proto == 5:
            payload += props(will_props) if will_props else b"\x00"
        payload += s(topic) + s(msg)
    if user is not None:
        flags |= 0x80
        payload += s(user)
    if pw is not None:
        flags |= 0x40
        payload += s(pw)
    body = s(name) + bytes([proto, flags]) + struct.pack(">H", keepalive)
    if proto == 5:
        body += props(p) if p else b"\x00"
    return pkt(1, 0, body + payload)


def connack(proto, sp=False, code=0, p=b""):
    body = bytes([1 if sp else 0, code])
    if proto == 5:
        body += props(p) if p else b"\x00"
    return pkt(2, 0, body)


def publish(proto, topic, payload, qos=0, pid=1, retain=False, dup=False, p=b""):
    body = s(topic)
    if qos:
        body += struct.pack(">H", pid)
    if proto == 5:
        body += props(p) if p else b"\x00"
    if isinstance(payload, str):
        payload = payload.encode()
    return pkt(3, (8 if dup else 0) | qos << 1 | (1 if retain else 0), body + payload)


def ack(ptype, proto, pid, reason=None, p=b""):
    body = struct.pack(">H", pid)
    if proto == 5 and (reason is not None or p):
        body += bytes([reason or 0])
        if p:
            body += props(p)
    return pkt(ptype, 2 if ptype == 6 else 0, body)


def subscribe(proto, pid, subs, p=b""):
    body = struct.pack(">H", pid)
    if proto == 5:
        body += props(p) if p else b"\x00"
    for f, o in subs:
        body += s(f) + bytes([o])
    return pkt(8, 2, body)


def suback(proto, pid, codes, p=b""):
    body = struct.pack(">H", pid)
    if proto == 5:
        body += props(p) if p else b"\x00"
    return pkt(9, 0, body + bytes(codes))


def unsubscribe(proto, pid, filters):
    body = struct.pack(">H", pid)
    if proto == 5:
        body += b"\x00"
    for f in filters:
        body += s(f)
    return pkt(10, 2, body)


def unsuback(proto, pid, codes=()):
    body = struct.pack(">H", pid)
    if proto == 5:
        body += b"\x00" + bytes(codes)
    return pkt(11, 0, body)


def reason_pkt(ptype, proto, reason=None, p=b""):
    if proto != 5 or (reason is None and not p):
        return pkt(ptype, 0, b"")
    return pkt(ptype, 0, bytes([reason or 0]) + (props(p) if p else b""))


PINGREQ = pkt(12, 0, b"")
PINGRESP = pkt(13, 0, b"")


def codec_seeds():
    for proto in (3, 4, 5):
        v = bytes([proto - 3])
        p5 = proto == 5
        cprops = b"".join([prop(0x11, "i", 3600), prop(0x21, "h", 20), prop(0x27, "i", 65536),
                           prop(0x22, "h", 10), prop(0x19, "b", 1), prop(0x17, "b", 0), USER]) if p5 else b""
        wprops = b"".join([prop(0x18, "i", 5), prop(0x01, "b", 1), prop(0x02, "i", 60),
                           prop(0x03, "s", "text/plain"), prop(0x08, "s", "reply/to"),
                           prop(0x09, "s", "corr"), USER]) if p5 else b""
        pprops = b"".join([prop(0x01, "b", 1), prop(0x02, "i", 30), prop(0x23, "h", 3),
                           prop(0x08, "s", "r/t"), prop(0x09, "s", b"\x00\x01"), prop(0x0B, "v", 7),
                           prop(0x03, "s", "json"), USER, USER]) if p5 else b""
        n = f"v{proto}"
        out("fuzz_codec", n + "-connect", v + connect(proto, "client-1", p=cprops))
        out("fuzz_codec", n + "-connect-will-user", v + connect(
            proto, "c2", clean=False, keepalive=10, will=("last/will", "bye", 1, True),
            user="alice", pw="secret", p=cprops, will_props=wprops))
        out("fuzz_codec", n + "-connect-empty-id", v + connect(proto, "", keepalive=0))
        out("fuzz_codec", n + "-connack", v + connack(proto, True, 0, b"".join(
            [prop(0x12, "s", "auto-1"), prop(0x13, "h", 30), prop(0x24, "b", 1),
             prop(0x25, "b", 0), prop(0x1F, "s", "ok"), prop(0x1A, "s", "info")]) if p5 else b""))
        out("fuzz_codec", n + "-publish-q0", v + publish(proto, "a/b", "hello"))
        out("fuzz_codec", n + "-publish-q1-retain", v + publish(proto, "sensors/kitchen", "21.5", 1, 7, True, p=pprops))
        out("fuzz_codec", n + "-publish-q2-dup", v + publish(proto, "x", b"\x00\xff" * 8, 2, 65535, dup=True))
        for t, name in ((4, "puback"), (5, "pubrec"), (6, "pubrel"), (7, "pubcomp")):
            out("fuzz_codec", f"{n}-{name}", v + ack(t, proto, 9) +
                (ack(t, proto, 10, 0x10, prop(0x1F, "s", "why") + USER) if p5 else b""))
        out("fuzz_codec", n + "-subscribe", v + subscribe(
            proto, 3, [("a/#", 1), ("+/b", 2), ("$share/g/c", 0)] if not p5 else
            [("a/#", 0x05), ("+/b", 0x2a), ("$share/g/c", 0x10)], prop(0x0B, "v", 12) + USER if p5 else b""))
        out("fuzz_codec", n + "-suback", v + suback(proto, 3, [0, 1, 2, 0x80]))
        out("fuzz_codec", n + "-unsubscribe", v + unsubscribe(proto, 4, ["a/#", "+/b"]))
        out("fuzz_codec", n + "-unsuback", v + unsuback(proto, 4, [0, 0x11] if p5 else ()))
        out("fuzz_codec", n + "-ping", v + PINGREQ + PINGRESP)
        out("fuzz_codec", n + "-disconnect", v + reason_pkt(14, proto) +
            (reason_pkt(14, 5, 0x04, prop(0x11, "i", 0) + prop(0x1C, "s", "other")) if p5 else b""))
        if p5:
            out("fuzz_codec", n + "-auth", v + reason_pkt(15, 5, 0x18, prop(0x15, "s", "SCRAM") + prop(0x16, "s", b"\x01\x02")))
        out("fuzz_codec", n + "-session", v + connect(proto, "s") + connack(proto) +
            subscribe(proto, 1, [("t/#", 1)]) + suback(proto, 1, [1]) + publish(proto, "t/1", "x", 1, 2) +
            ack(4, proto, 2) + PINGREQ + PINGRESP + unsubscribe(proto, 5, ["t/#"]) + unsuback(proto, 5, [0] if p5 else ()) +
            reason_pkt(14, proto))
    # the small max_remaining (bit 0x80) and a non-minimal length
    out("fuzz_codec", "small-max", b"\x81" + publish(4, "a", "x" * 70))
    out("fuzz_codec", "nonminimal-length", b"\x01" + b"\x30\x85\x00\x00\x01a")


# ---- broker conversations ----

def chunks(client, data, close=False, hold=False):
    """[h][n][bytes] chunks for fuzz_broker; long data is split, the loop runs after the last."""
    res = b""
    parts = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        h = client | (4 if close and last else 0) | (8 if hold or not last else 0)
        res += bytes([h, len(part)]) + part
    return res


def ws_frame(payload, opcode=2, fin=True, mask=b"\x11\x22\x33\x44"):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def ws_request(path="/mqtt", proto="mqtt", extra=""):
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "%s%s\r\n" % (path, "Sec-WebSocket-Protocol: %s\r\n" % proto if proto else "", extra)).encode()


def broker_seeds():
    c = chunks
    # v3.1.1: a subscriber and a publisher, QoS 0/1/2 both ways.
    for proto in (4, 5, 3):
        conv = (c(0, connect(proto, "sub-1")) + c(0, subscribe(proto, 1, [("a/#", 2), ("+/b", 1)])) +
                c(1, connect(proto, "pub-1")) + c(1, publish(proto, "a/b", "hello", 0)) +
                c(1, publish(proto, "a/b", "one", 1, 1)) + c(0, ack(4, proto, 1)) +
                c(1, publish(proto, "a/c", "two", 2, 2)) + c(1, ack(6, proto, 2)) +
                c(0, ack(5, proto, 2)) + c(0, ack(7, proto, 2)) +
                c(0, unsubscribe(proto, 3, ["a/#"])) + c(1, PINGREQ) +
                c(1, reason_pkt(14, proto)) + c(0, reason_pkt(14, proto)))
        out("fuzz_broker", f"v{proto}-pubsub", conv)
    # MQTT 5 properties: expiry, response topic, user properties, subscription ids,
    # no local, retain as published, topic aliases.
    p = b"".join([prop(0x02, "i", 60), prop(0x08, "s", "reply/x"), prop(0x09, "s", "id-1"), USER,
                  prop(0x01, "b", 1), prop(0x03, "s", "text/plain")])
    conv = (c(0, connect(5, "v5-sub", p=prop(0x11, "i", 300) + prop(0x22, "h", 5) + prop(0x21, "h", 2))) +
            c(0, subscribe(5, 1, [("t/#", 0x05), ("t/x", 0x0a)], prop(0x0B, "v", 42))) +
            c(1, connect(5, "v5-pub", p=prop(0x22, "h", 5))) +
            c(1, publish(5, "t/x", "with alias", 1, 1, p=p + prop(0x23, "h", 1))) +
            c(1, publish(5, "", "alias only", 1, 2, p=prop(0x23, "h", 1))) +
            c(0, ack(4, 5, 1)) + c(0, ack(4, 5, 2)) + c(1, ack(4, 5, 1)) +
            c(0, publish(5, "t/self", "no local", 0)) +
            c(1, reason_pkt(14, 5, 0x04, prop(0x11, "i", 0))) + c(0, reason_pkt(14, 5)))
    out("fuzz_broker", "v5-properties", conv)
    # Retained messages, before and after a subscription; clearing one.
    conv = (c(1, connect(4, "r-pub")) + c(1, publish(4, "sensors/kitchen", "21.5", 1, 1, True)) +
            c(1, publish(4, "sensors/hall", "19", 0, retain=True)) +
            c(0, connect(5, "r-sub")) + c(0, subscribe(5, 1, [("sensors/+", 0x01), ("sensors/#", 0x21)])) +
            c(1, publish(4, "sensors/hall", "", 0, retain=True)) +
            c(0, subscribe(5, 2, [("sensors/#", 0x09)])) + c(0, unsubscribe(5, 3, ["sensors/+", "nothing"])))
    out("fuzz_broker", "retained", conv)
    # A will published when the connection drops; one cancelled by DISCONNECT.
    conv = (c(0, connect(4, "watcher")) + c(0, subscribe(4, 1, [("wills/#", 1)])) +
            c(2, connect(5, "dying", will=("wills/dying", "gone", 1, False), will_props=prop(0x02, "i", 10))) +
            c(1, connect(4, "polite", will=("wills/polite", "bye", 0, True))) + c(1, reason_pkt(14, 4)) +
            c(2, b"", close=True) + c(0, ack(4, 4, 1)))
    out("fuzz_broker", "wills", conv)
    # Persistent session, takeover by a second connection with the same id, queued QoS 1.
    conv = (c(0, connect(4, "same-id", clean=False)) + c(0, subscribe(4, 1, [("q/#", 1)])) +
            c(1, connect(4, "pub")) + c(1, publish(4, "q/1", "a", 1, 1)) + c(1, publish(4, "q/2", "b", 1, 2)) +
            c(2, connect(4, "same-id", clean=False)) + c(2, ack(4, 4, 1)) + c(2, PINGREQ))
    out("fuzz_broker", "session-takeover", conv)
    conv = (c(0, connect(5, "exp", clean=False, p=prop(0x11, "i", 0xFFFFFFFF))) +
            c(0, subscribe(5, 1, [("e/#", 2)])) + c(0, reason_pkt(14, 5)) +
            c(1, connect(5, "p")) + c(1, publish(5, "e/1", "x", 2, 5)) + c(1, ack(6, 5, 5)) +
            c(2, connect(5, "exp", clean=False)) + c(2, ack(5, 5, 1)) + c(2, ack(7, 5, 1)))
    out("fuzz_broker", "v5-session-resume", conv)
    # Flow control: more QoS 1 than max_inflight_messages, a small receive maximum.
    conv = (c(0, connect(5, "slow", p=prop(0x21, "h", 2))) + c(0, subscribe(5, 1, [("f/#", 1)])) +
            c(1, connect(4, "fast")) +
            b"".join(c(1, publish(4, "f/%d" % i, "m%d" % i, 1, i + 1), hold=True) for i in range(12)) +
            c(1, b"") + c(0, ack(4, 5, 1)) + c(0, ack(4, 5, 2)) + c(0, ack(4, 5, 3)))
    out("fuzz_broker", "flow-control", conv)
    # Maximum packet size of a client: a large message is not sent to it.
    conv = (c(0, connect(5, "tiny", p=prop(0x27, "i", 64))) + c(0, subscribe(5, 1, [("big/#", 0)])) +
            c(1, connect(5, "big")) + c(1, publish(5, "big/1", "x" * 200)) + c(1, publish(5, "big/2", "small")))
    out("fuzz_broker", "max-packet-size", conv)
    # The ACL of listener 0: alice, patterns with %c and %u, denials.
    conv = (c(0, connect(4, "alice-1", user="alice")) +
            c(0, subscribe(4, 1, [("sensors/#", 1), ("sensors/secret", 0), ("cmd/#", 0),
                                  ("clients/alice-1/#", 1), ("users/alice/inbox", 0), ("$SYS/#", 0)])) +
            c(0, publish(4, "cmd/x/set", "on", 1, 2)) + c(0, publish(4, "sensors/kitchen", "no", 1, 3)) +
            c(1, connect(4, "anon")) + c(1, publish(4, "sensors/kitchen", "20", 1, 1)) +
            c(1, publish(4, "sensors/secret", "s", 0)) + c(1, publish(4, "users/alice/inbox", "hi", 0)) +
            c(1, publish(4, "$SYS/x", "no", 0)) + c(0, ack(4, 4, 1)))
    out("fuzz_broker", "acl", conv)
    # Shared subscriptions, wildcards, $SYS.
    conv = (c(0, connect(5, "g1")) + c(0, subscribe(5, 1, [("$share/g/s/#", 1)])) +
            c(2, connect(5, "g2")) + c(2, subscribe(5, 1, [("$share/g/s/#", 1), ("#", 0), ("$SYS/#", 0)])) +
            c(1, connect(5, "p")) + b"".join(c(1, publish(5, "s/%d" % i, "x", 1, i + 1)) for i in range(4)))
    out("fuzz_broker", "shared", conv)
    # MQTT 3.1 and a mix of versions.
    conv = (c(0, connect(3, "old-client")) + c(0, subscribe(3, 1, [("m/#", 2)])) +
            c(1, connect(5, "new")) + c(1, publish(5, "m/1", "x", 2, 1, p=USER)) + c(1, ack(6, 5, 1)) +
            c(0, ack(5, 3, 1)) + c(0, ack(7, 3, 1)))
    out("fuzz_broker", "v3-and-v5", conv)
    # WebSocket client (3): upgrade, then MQTT in binary frames, split and pinged.
    sub = connect(4, "ws-1") + subscribe(4, 1, [("w/#", 1)])
    conv = (c(3, ws_request() + ws_frame(sub[:7], 2, False) + ws_frame(sub[7:], 0, True)) +
            c(1, connect(4, "pub")) + c(1, publish(4, "w/1", "to the browser", 1, 1)) +
            c(3, ws_frame(b"ping!", 9) + ws_frame(ack(4, 4, 1))) + c(3, ws_frame(b"\x03\xe8", 8)))
    out("fuzz_broker", "websocket", conv)
    out("fuzz_broker", "websocket-v5", c(3, ws_request(proto="mqtt") + ws_frame(connect(5, "ws5"))) +
        c(3, ws_frame(publish(5, "w/x", "y", 0) + PINGREQ)) + c(3, ws_frame(b"", 8)))
    out("fuzz_broker", "websocket-refused", c(3, ws_request(proto="chat")) + c(3, b"\x82\x00"))
    out("fuzz_broker", "http-metrics", c(3, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
    # Protocol errors: each must end that connection only.
    conv = (c(0, connect(4, "ok")) + c(0, subscribe(4, 1, [("#", 0)])) +
            c(1, connect(4, "bad")) + c(1, pkt(3, 6, s("x") + b"payload")) +
            c(2, connect(5, "worse")) + c(2, subscribe(5, 0, [("a", 0)])) +
            c(1, b"\xff\xff\xff\xff\xff") + c(2, connect(5, "again")))
    out("fuzz_broker", "errors", conv)
    out("fuzz_broker", "enhanced-auth", c(0, connect(5, "auth", p=prop(0x15, "s", "SCRAM-SHA-1") + prop(0x16, "s", b"n,,")))
        + c(0, reason_pkt(15, 5, 0x18, prop(0x15, "s", "SCRAM-SHA-1"))))
    # Topic alias errors, subscription identifiers, retain handling, will delay.
    conv = (c(0, connect(5, "alias", p=prop(0x22, "h", 2))) + c(0, subscribe(5, 1, [("al/#", 0x21)], prop(0x0B, "v", 268435455))) +
            c(1, connect(5, "bad-alias")) + c(1, publish(5, "al/1", "x", 0, p=prop(0x23, "h", 9))) +
            c(2, connect(5, "unknown-alias")) + c(2, publish(5, "", "x", 0, p=prop(0x23, "h", 1))))
    out("fuzz_broker", "v5-alias-errors", conv)
    conv = (c(0, connect(5, "rh")) + c(1, connect(5, "rp")) + c(1, publish(5, "rh/1", "kept", 1, 1, True)) +
            c(0, subscribe(5, 1, [("rh/#", 0x11)])) + c(0, subscribe(5, 2, [("rh/#", 0x21)])) +
            c(0, subscribe(5, 3, [("rh/+", 0x01)])) + c(1, publish(5, "rh/1", "", 0, retain=True)))
    out("fuzz_broker", "v5-retain-handling", conv)
    conv = (c(0, connect(5, "w")) + c(0, subscribe(5, 1, [("wd/#", 0)])) +
            c(2, connect(5, "delayed", clean=False, will=("wd/x", "late", 0, False),
                         will_props=prop(0x18, "i", 3600), p=prop(0x11, "i", 60))) +
            c(2, b"", close=True) + c(1, connect(5, "delayed", clean=False)) + c(1, reason_pkt(14, 5, 0x04)))
    out("fuzz_broker", "v5-will-delay", conv)
    conv = (c(0, connect(4, "k", keepalive=1)) + c(0, PINGREQ) + c(0, PINGREQ + PINGREQ) +
            c(0, subscribe(4, 1, [("#", 2), ("a/b/c/d/e/f/g/h/#", 1), ("+/+/+", 0)])) +
            c(0, unsubscribe(4, 2, ["#", "+/+/+", "never"])) + c(0, reason_pkt(14, 4)))
    out("fuzz_broker", "keepalive-and-unsubscribe", conv)
    conv = (c(0, connect(4, "dup")) + c(0, subscribe(4, 1, [("d/#", 2)])) + c(1, connect(4, "src")) +
            c(1, publish(4, "d/1", "a", 2, 7)) + c(1, publish(4, "d/1", "a", 2, 7, dup=True)) +
            c(1, ack(6, 4, 7)) + c(1, ack(6, 4, 7)) + c(0, ack(5, 4, 1)) + c(0, ack(5, 4, 1)) +
            c(0, ack(7, 4, 1)) + c(0, ack(4, 4, 99)))
    out("fuzz_broker", "qos2-duplicates", conv)
    conv = (c(0, connect(5, "self")) + c(0, subscribe(5, 1, [("me/#", 0x06), ("me/x", 0x01)])) +
            c(0, publish(5, "me/x", "echo?", 1, 1)) + c(0, publish(5, "me/y", "again", 2, 2)) + c(0, ack(6, 5, 2)))
    out("fuzz_broker", "no-local", conv)
    big = publish(4, "big/x", "p" * 1000, 1, 1)
    out("fuzz_broker", "split-packets", c(0, connect(4, "split")) + c(0, subscribe(4, 1, [("big/#", 1)])) +
        c(1, connect(4, "writer")) + c(1, big[:3]) + c(1, big[3:200]) + c(1, big[200:]) + c(0, ack(4, 4, 1)))
    out("fuzz_broker", "pipelined", c(0, connect(4, "fast") + subscribe(4, 1, [("p/#", 0)]) +
        b"".join(publish(4, "p/%d" % i, "x") for i in range(10)) + PINGREQ + reason_pkt(14, 4)))
    out("fuzz_broker", "empty-client-id", c(0, connect(4, "")) + c(1, connect(5, "")) + c(2, connect(3, "")) +
        c(1, subscribe(5, 1, [("x", 0)])) + c(0, publish(4, "x", "y")))


# ---- WebSocket (fuzz_ws): settings byte, chunk seed, request, frames ----

def ws_seeds():
    def seed(name, opts, chunk, data):
        out("fuzz_ws", name, bytes([opts, chunk]) + data)
    mqtt = connect(4, "ws") + publish(4, "a/b", "x" * 130)
    seed("plain", 0x00, 0, ws_request() + ws_frame(mqtt))
    seed("chunked", 0x60, 7, ws_request() + ws_frame(mqtt[:10], 2, False) + ws_frame(b"pong", 10) +
         ws_frame(mqtt[10:], 0) + ws_frame(b"\x03\xe8bye", 8))
    seed("byte-by-byte", 0x20, 1, ws_request(proto="mqttv3.1, mqtt") + ws_frame(b"hi"))
    seed("path-origin", 0x03, 0, ws_request(extra="Origin: http://example.com\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n") + ws_frame(b"x"))
    seed("wrong-path", 0x01, 0, ws_request(path="/other?x=1"))
    seed("no-protocol", 0x00, 0, ws_request(proto=None) + ws_frame(b"", 9))
    seed("text-binary-only", 0x04, 0, ws_request() + ws_frame(b"text", 1))
    seed("small-limits", 0x18, 0, ws_request() + ws_frame(b"y" * 120) + ws_frame(b"z" * 200))
    seed("len16", 0x40, 3, ws_request() + ws_frame(b"q" * 300))
    seed("len64", 0xa0, 9, ws_request() + ws_frame(b"r" * 70000)[:2000])
    seed("unmasked", 0x00, 0, ws_request() + b"\x82\x03abc")
    seed("close-codes", 0x00, 0, ws_request() + ws_frame(b"\x03\xe9", 8))
    seed("bad-close", 0x00, 0, ws_request() + ws_frame(b"\x00\x01", 8))
    seed("bad-request", 0x00, 0, b"POST / HTTP/1.0\r\nUpgrade: nope\r\n\r\n")
    seed("not-http", 0x00, 0, connect(4, "raw"))
    seed("headers-folded", 0x00, 0, b"GET /mqtt HTTP/1.1\r\nHost: a\r\n b\r\nUpgrade: WebSocket\r\n"
         b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key:  dGhlIHNhbXBsZSBub25jZQ==  \r\n"
         b"Sec-WebSocket-Version: 13\r\n\r\n")
    seed("bare-lf", 0x00, 0, ws_request().replace(b"\r\n", b"\n") + ws_frame(b"ok"))
    seed("reserved-bits", 0x00, 0, ws_request() + b"\xc2\x80\x00\x00\x00\x00")


# ---- configuration files ----

def config_seeds():
    for f in ("etc/midge.yaml", "tests/unit/data/equiv.yaml", "tests/unit/data/typo.yaml"):
        shutil.copy(os.path.join(ROOT, f), os.path.join(CORPUS, "fuzz_config_yaml", "seed-" + os.path.basename(f)))
    for f in ("tests/unit/data/equiv.conf", "tests/unit/data/legacy.conf"):
        shutil.copy(os.path.join(ROOT, f), os.path.join(CORPUS, "fuzz_config_mosq", "seed-" + os.path.basename(f)))
    y = "fuzz_config_yaml"
    out(y, "listeners", """workers: 2
max_inflight_messages: 20
persistent_client_expiration: 1d
log_dest: [stderr, topic]
log_type: [error, warning, notice]
listeners:
  - port: ${MIDGE_FUZZ_PORT}
    bind_address: 127.0.0.1
    allow_anonymous: true
    max_connections: 10
    mount_point: "m/"
  - port: 8883
    certfile: /etc/midge/server.crt
    keyfile: /etc/midge/server.key
    require_certificate: true
    tls_version: tlsv1.3
  - port: 8080
    protocol: websockets
    websockets_origin: http://example.com
  - port: 0
    unix_socket_path: /tmp/midge-fuzz.sock
""")
    out(y, "security", """allow_anonymous: false
password_file: /etc/midge/passwd
acl_file: /etc/midge/acl
clientid_prefixes: [dev-, test-]
plugin_timeout: 5
plugins:
  - path: /usr/lib/midge/auth_static.so
    options: {user_alice: secret, cache: "on"}
    name: static
listeners:
  - port: 1884
    allow_anonymous: true
    use_username_as_clientid: true
    plugins:
      - path: acl_prefix
""")
    out(y, "bridges", """bridges:
  - name: upstream
    addresses: ["broker1.example.com:1884", broker2.example.com]
    round_robin: true
    topics:
      - {pattern: "sensors/#", direction: out, qos: 1, local_prefix: site/, remote_prefix: remote/site/}
      - {pattern: "cmd/#", direction: in, qos: 2}
    remote_clientid: site1
    keepalive_interval: 30
    restart_timeout: [10, 60]
    start_type: lazy
    bridge_protocol_version: mqttv50
""")
    out(y, "persistence", """persistence: true
persistence_location: /var/lib/midge/
sync: batch
autosave_interval: 900
persistence_max_size: 64MiB
memory_limit: 1GiB
message_size_limit: 0
""")
    out(y, "env-and-include", """max_queued_messages: ${MIDGE_FUZZ_UNSET:-100}
max_keepalive: "${MIDGE_FUZZ_EMPTY:-60}"
literal: "$${NOT_A_VAR}"
include_dir: /tmp/midge-fuzz-include
""")
    out(y, "anchors", """defaults: &d {allow_anonymous: true, max_connections: 5}
listeners:
  - <<: *d
    port: 1
  - port: 2
    allow_anonymous: *d
""")
    out(y, "errors", """max_inflight_messages: -1
max_qos: 7
retain_available: perhaps
listeners: {port: 1}
unknown_option: 1
max_inflight_messages: 3
""")
    out(y, "empty", "")
    out(y, "comment-only", "# nothing here\n")
    out(y, "not-a-mapping", "- a\n- b\n")
    out(y, "multi-document", "workers: 1\n---\nworkers: 2\n")
    out(y, "tabs", "listeners:\n\t- port: 1\n")
    out(y, "logging", """log_dest: [stdout, syslog, "file /tmp/midge.log", topic]
log_type: all
log_facility: 3
log_timestamp: true
log_timestamp_format: "%Y-%m-%dT%H:%M:%S"
log_format: json
client_events: true
websockets_log_level: 255
connection_messages: true
""")
    out(y, "limits", """max_inflight_messages: 0
max_inflight_bytes: 1048576
max_queued_messages: 1000
max_queued_bytes: 10MiB
queue_qos0_messages: true
message_size_limit: 268435455
max_packet_size: 1024
max_keepalive: 65535
upgrade_outgoing_qos: true
retain_expiry_interval: 3600
check_retain_source: true
global_max_clients: 100
global_max_connections: -1
packet_buffer_size: 4096
server_moved: "elsewhere:1883"
response_information: "resp/"
persistent_client_expiration: 2w
""")
    out(y, "transports", """listeners:
  - port: 8443
    protocol: websockets
    certfile: /c.pem
    keyfile: /k.pem
    ciphers: "HIGH:!aNULL"
    ciphers_tls1.3: TLS_AES_256_GCM_SHA384
    websockets_headers_size: 1024
    http_dir: /var/www
  - port: 8884
    psk_hint: hint
    psk_file: /etc/midge/psk
    use_identity_as_username: true
  - port: 9000
    protocol: http
  - port: 1885
    enable_proxy_protocol: true
    proxy_protocol_v2_require_tls: false
    accept_protocol_versions: [3, 4]
    socket_domain: ipv6
    bind_interface: lo
""")
    out(y, "bridge-tls", """bridges:
  - name: secure
    addresses: ["remote:8883"]
    topics: [{pattern: "#", direction: both}]
    bridge_cafile: /etc/ssl/ca.pem
    bridge_certfile: /c.pem
    bridge_keyfile: /k.pem
    bridge_insecure: true
    bridge_tls_version: tlsv1.2
    bridge_alpn: x-amzn-mqtt-ca
    cleansession: false
    local_cleansession: true
    bridge_session_expiry_interval: 600
    bridge_receive_maximum: 10
    bridge_max_packet_size: 65536
    bridge_tcp_keepalive: [60, 10, 3]
    notifications_local_only: true
    idle_timeout: 60
    threshold: 10
    bridge_reload_type: immediate
  - name: psk
    addresses: [remote]
    bridge_identity: id
    bridge_psk: 0123456789abcdef
""")
    m = "fuzz_config_mosq"
    out(m, "empty", "")
    out(m, "crlf-quotes", "max_queued_messages 5\r\n# comment \r\nlistener 1886 \"127.0.0.1\"\r\nmount_point \"a b/\"\r\n")
    out(m, "tls", """listener 8883
cafile /etc/midge/ca.crt
capath /etc/ssl/certs
certfile /etc/midge/server.crt
keyfile /etc/midge/server.key
crlfile /etc/midge/crl.pem
dhparamfile /etc/midge/dh.pem
tls_version tlsv1.2
ciphers HIGH
ciphers_tls1.3 TLS_AES_128_GCM_SHA256
require_certificate true
use_subject_as_username true
disable_client_cert_date_checks true
listener 8884
psk_hint hint
psk_file /etc/midge/psk
""")
    out(m, "plugins", """plugin_dir /usr/lib/midge
global_plugin /usr/lib/midge/a.so
plugin_opt_key value with spaces
plugin_load lua /usr/lib/midge/lua.so
plugin_use lua
plugin_name my-plugin
listener 1883
plugin /usr/lib/midge/b.so
""")
    out(m, "limits", """max_inflight_bytes 0
max_queued_bytes 1000000
message_size_limit 100
max_packet_size 2000
max_keepalive 10
upgrade_outgoing_qos false
retain_available false
allow_zero_length_clientid false
auto_id_prefix auto-
global_max_clients 5
sys_interval 10
connect_timeout 5
memory_limit 0
set_tcp_nodelay true
""")
    out(m, "bridge-full", """connection full
address remote:1883
topic sensors/# both 2 a/ b/
remote_clientid r
local_clientid l
remote_username u
remote_password p
local_username lu
local_password lp
cleansession false
local_cleansession true
keepalive_interval 5
idle_timeout 10
threshold 3
start_type once
try_private true
bridge_attempt_unsubscribe false
bridge_outgoing_retain false
bridge_max_packet_size 1000
bridge_protocol_version mqttv50
bridge_receive_maximum 5
bridge_session_expiry_interval 30
bridge_max_topic_alias 3
bridge_tcp_keepalive 30 5 2
bridge_tcp_user_timeout 1000
bridge_identity id
bridge_psk abcdef
bridge_reload_type lazy
connection second
address other
topic x in
""")
    out(m, "persistence", """persistence true
persistence_location /var/lib/midge/
persistence_file store.db
autosave_interval 60
sync always
persistence_recover true
persistence_max_size 1G
""")
    out(m, "unix-and-interfaces", """listener 0 /run/midge.sock
listener 1887
bind_interface eth0
socket_domain ipv6
listener 1888 ::1
enable_proxy_protocol 2
http_dir /srv
""")
    out(m, "listeners", """# two listeners, per-listener security
per_listener_settings true
listener 1884 127.0.0.1
allow_anonymous true
max_connections 10
mount_point m/
listener 8080
protocol websockets
websockets_headers_size 8192
listener 0 /tmp/midge-fuzz.sock
socket_domain ipv4
accept_protocol_versions 4,5
""")
    out(m, "security", """allow_anonymous false
password_file /etc/mosquitto/passwd
acl_file /etc/mosquitto/acl
psk_file /etc/mosquitto/psk
auth_plugin_deny_special_chars true
plugin /usr/lib/midge/auth_static.so
plugin_opt_user_alice secret
auth_opt_cache on
clientid_prefixes dev-
""")
    out(m, "bridge", """connection upstream
address 10.0.0.1:1884 10.0.0.2
topic sensors/# out 1 site/ remote/
topic # in 0
topic "" both 2 local/state remote/state
bridge_protocol_version mqttv311
try_private false
notifications true
notification_topic $SYS/bridges/up
restart_timeout 5 30
bridge_insecure false
""")
    out(m, "include", """include_dir /tmp/midge-fuzz-include
max_queued_messages 10
log_dest file /var/log/midge.log
log_type all
""")
    out(m, "legacy", """retry_interval 20
store_clean_interval 10
autosave_on_changes true
persistence true
persistence_file midge.db
queue_qos0_messages true
""")
    out(m, "errors", """max_inflight_messages lots
listener
listener 99999
topic a
connection
unknown_option 1
""")


# ---- password and ACL files ----

def b64(b):
    return base64.b64encode(b).decode()


def argon2id(pw, salt, m=8, t=1, p=1):
    lib = ctypes.util.find_library("argon2")
    if not lib:
        return None
    a = ctypes.CDLL(lib)
    buf = ctypes.create_string_buffer(512)
    rc = a.argon2id_hash_encoded(ctypes.c_uint32(t), ctypes.c_uint32(m), ctypes.c_uint32(p),
                                 pw, ctypes.c_size_t(len(pw)), salt, ctypes.c_size_t(len(salt)),
                                 ctypes.c_size_t(32), buf, ctypes.c_size_t(len(buf)))
    return buf.value.decode() if rc == 0 else None


def passwd_seeds():
    pw = b"secret"
    salt = b"midge-fuzz-1"  # fixed salts: running this again changes nothing
    sha = "$6$%s$%s" % (b64(salt), b64(hashlib.sha512(pw + salt).digest()))
    pbk = "$7$10$%s$%s" % (b64(salt), b64(hashlib.pbkdf2_hmac("sha512", pw, salt, 10, 64)))
    pbk64 = "$7$3$%s$%s" % (b64(salt * 5 + salt[:4]), b64(hashlib.pbkdf2_hmac("sha512", pw, salt * 5 + salt[:4], 3, 64)))
    a2 = argon2id(pw, salt + b"salty") or "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA"
    t = "fuzz_passwd"
    out(t, "sha512", "alice:%s\n" % sha)
    out(t, "pbkdf2", "bob:%s\n" % pbk)
    out(t, "pbkdf2-salt64", "carol:%s\n" % pbk64)
    out(t, "argon2id", "dave:%s\n" % a2)
    out(t, "mixed", "# users\n\nalice:%s\r\n  bob : %s  \neve smith:%s\n# end\n" % (sha, pbk, a2))
    shutil.copy(os.path.join(ROOT, "tests/unit/data/mosquitto-2.0.11.passwd"),
                os.path.join(CORPUS, t, "seed-mosquitto-2.0.11.passwd"))
    out(t, "plain-text", "alice:secret\n")
    out(t, "duplicate", "alice:%s\nalice:%s\n" % (sha, pbk))
    out(t, "no-colon", "alice\n")
    out(t, "big-iterations", "x:$7$2000000000$%s$%s\n" % (b64(salt), b64(b"\0" * 64)))
    salt64 = hashlib.sha512(b"midge-fuzz").digest()
    out(t, "sha512-salt64", "big salt:$6$%s$%s\n" % (b64(salt64), b64(hashlib.sha512(pw + salt64).digest())))
    out(t, "empty", "")
    out(t, "comments", "# a comment\n   # indented\n\n\t\n")
    out(t, "crlf", "alice:%s\r\nbob:%s\r\n" % (sha, pbk))
    out(t, "no-final-newline", "alice:%s" % sha)
    out(t, "many", "".join("user%d:%s\n" % (i, sha) for i in range(40)))
    out(t, "bad-base64", "a:$6$!!!!$????\n")
    out(t, "short-salt", "a:$6$%s$%s\n" % (b64(salt[:8]), b64(hashlib.sha512(pw + salt[:8]).digest())))
    out(t, "zero-iterations", "a:$7$0$%s$%s\n" % (b64(salt), b64(b"\1" * 64)))
    out(t, "argon2-v16", "a:$argon2id$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA\n")
    out(t, "argon2-lanes", "a:$argon2id$v=19$m=64,t=2,p=4$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAA\n")
    out(t, "argon2i", "a:$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA\n")
    out(t, "empty-hash", "a:\n")
    out(t, "empty-user", ":%s\n" % sha)
    out(t, "hash-junk", "a:%s$extra\n" % sha)
    out(t, "user-colon", "a:b:%s\n" % sha)
    out(t, "argon2-big", "y:$argon2id$v=19$m=4194305,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA\n")
    a = "fuzz_acl"
    out(a, "basic", """# anonymous
topic read public/#
topic readwrite open/+/x
user alice
topic sensors/#
topic write cmd/+/set
topic deny sensors/secret
user bob
topic read $SYS/broker/#
pattern readwrite clients/%c/#
pattern read users/%u/inbox
#?r alice c1 sensors/kitchen
#?w alice c1 cmd/lamp/set
#?s alice c1 sensors/+
#?s bob c2 $SYS/#
#?r - anon public/news
#?w - anon public/news
#?s - clients/anon/# clients/anon/#
#?u bob b #
""")
    out(a, "patterns", "pattern write %u/%c/out\npattern deny %c/secret\npattern read %c/#\n"
        "#?w user client user/client/out\n#?r - a/b a/b/c\n#?s x y y/secret\n")
    out(a, "spaces", "user eve smith\ntopic read a topic with spaces\n#?r eve smith a topic with spaces\n")
    out(a, "repeat-user", "user a\ntopic read x\nuser b\ntopic y\nuser a\ntopic deny x/#\n")
    out(a, "errors", "topic read\nuser\ntopic wrong a/b\n")
    out(a, "empty", "")
    out(a, "comments-only", "# nothing\n\n   \n#?r - c a\n")
    out(a, "crlf", "topic read a/#\r\nuser u\r\ntopic write b\r\n#?r - c a/b\r\n#?w u c b\r\n")
    out(a, "trailing-spaces", "topic read a/b   \nuser  spaced  \ntopic  deny  c/#\n#?r - c a/b\n")
    out(a, "tab-keyword", "topic\tread a\n")
    out(a, "deny-order", "topic read a/#\ntopic deny a/b/#\ntopic write a/b/c\n#?r - c a/b/c\n#?w - c a/b/c\n#?s - c a/#\n#?s - c a/b/+\n")
    out(a, "wildcards", "topic read +/+/temp\ntopic read sensors/#\ntopic write #\n#?r - c x/y/temp\n#?s - c +/y/#\n#?s - c #\n#?w - c $SYS/x\n")
    out(a, "pattern-mid-level", "pattern read a%cb/%u%u/#\npattern write %c\n#?r u c acb/uu/x\n#?w u c c\n#?w - c c\n#?r u a/b ab/x\n#?r u+ c ac+/x\n")
    out(a, "many-users", "".join("user u%d\ntopic readwrite t/%d/#\n" % (i, i) for i in range(30)) +
        "#?r u7 c t/7/x\n#?r u7 c t/8/x\n")
    out(a, "shared", "topic read s/#\n#?s - c $share/g/s/#\n#?s - c $share/g/x\n#?s - c $share//s\n#?r - c $share/g/s/1\n")
    out(a, "long-topic", "topic read " + "/".join(["level"] * 200) + "\n#?r - c " + "/".join(["level"] * 200) + "\n")
    out(a, "unicode", "user ünïcode\ntopic read ☃/#\n#?r ünïcode c ☃/x\n")
    out(a, "mosquitto-example", """# This affects access control for clients with no username.
topic read $SYS/#

# This only affects clients with username "roger".
user roger
topic foo/bar

# This affects all clients.
pattern write $SYS/broker/connection/%c/state
""")
    out(a, "dollar", "topic read #\ntopic read $SYS/#\n#?r - c $SYS/load\n#?s - c #\n#?s - c $share/g/#\n")


def persist_seeds(bindir):
    gen = os.path.join(bindir, "gen_persist_seeds")
    if not os.access(gen, os.X_OK):
        print("seeds.py: %s not built: fuzz_persist seeds skipped" % gen, file=sys.stderr)
        return
    tmp = os.path.join(CORPUS, "fuzz_persist", ".gen")
    os.makedirs(tmp, exist_ok=True)
    subprocess.run([gen, tmp], check=True)
    for f in os.listdir(tmp):
        os.replace(os.path.join(tmp, f), os.path.join(CORPUS, "fuzz_persist", "seed-" + f))
    os.rmdir(tmp)


def main():
    bindir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "bin")
    for t in ("fuzz_codec", "fuzz_broker", "fuzz_ws", "fuzz_config_yaml", "fuzz_config_mosq",
              "fuzz_passwd", "fuzz_acl", "fuzz_persist"):
        os.makedirs(os.path.join(CORPUS, t), exist_ok=True)
    codec_seeds()
    broker_seeds()
    ws_seeds()
    config_seeds()
    passwd_seeds()
    persist_seeds(bindir)


if __name__ == "__main__":
    main()
