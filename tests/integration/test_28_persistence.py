#!/usr/bin/python3
"""Persistence: what survives a restart, a kill -9, and a damaged store.

Sessions with their subscriptions, queued and in-flight messages, incoming
QoS 2 ids, wills and expiry deadlines; retained messages; acknowledged
messages across many kill -9 trials with sync: always and batch (each
delivered, none twice for QoS 2); a large store (100k retained messages, 10k
sessions); damaged stores refused with a clear message or recovered on
request; mosquitto.conf's persistence options.

Run alone: /usr/bin/python3 tests/integration/test_28_persistence.py
(MIDGE_TEST_TARGET=mosquitto runs the graceful-restart cases against mosquitto.)
"""

import collections
import glob
import os
import random
import selectors
import shutil
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, Broker, Closed,  # noqa: E402
                       RawClient, _Helpers, _stop_checked, connack, connect,
                       connected_client, disconnect, free_port, is_mosquitto, main, parse_publish,
                       private_dir, puback, pubcomp, publish, pubrec, pubrel, subscribe,
                       unique_id, wait_for)

SEED = int(os.environ.get("MIDGE_TEST_SEED", "0")) or random.randrange(1, 1 << 30)


class StoreTestCase(_Helpers, unittest.TestCase):
    """Each test owns a store directory and starts, kills and restarts brokers on it."""

    sync = "batch"

    def setUp(self):
        self.data = private_dir("midgetest-store-")
        self.addCleanup(shutil.rmtree, self.data, True)
        self.broker = None
        self.addCleanup(self._stop_quietly)

    def options(self, **extra):
        o = {"persistence": True, "persistence_location": self.data + "/"}
        if not is_mosquitto():
            o.update({"persistence_file": "store", "sync": self.sync})
        o.update(extra)
        return o

    def start(self, verbose=True, **extra):
        self.broker = Broker(options=self.options(**extra), verbose=verbose)
        self.port = self.broker.port
        return self.broker

    def restart(self, **extra):
        """A clean stop (SIGTERM, checked for a clean exit) and a new start on the same store."""
        _stop_checked(self.broker)
        return self.start(**extra)

    def kill(self):
        """kill -9: nothing is flushed or closed."""
        self.broker.proc.kill()
        self.broker.proc.wait()
        self.broker.stop()
        self.broker = None

    def _stop_quietly(self):
        if self.broker is not None:
            self.broker.stop()

    def store_dir(self):
        return os.path.join(self.data, "store")

    def raw_client(self, client_id, clean=False, proto=4, present=None, **kw):
        c = RawClient(self.port)
        self.addCleanup(c.close)
        c.send(connect(client_id, clean=clean, proto=proto, **kw))
        got = c.read_packet()
        if got[0] >> 4 != 2:
            raise AssertionError("expected CONNACK, got %r" % got)
        if present is not None:
            self.assertEqual(bool(got[2] & 1), present, "session present flag of %s" % client_id)
        return c


def ack_publishes(c, n, timeout=5):
    """Receives n PUBLISH packets, completing each flow (QoS 2 up to PUBCOMP); returns
    [(topic, payload, qos, dup, mid)]."""
    out, pending = [], set()
    while len(out) < n or pending:
        pkt = c.read_packet(timeout=timeout)
        kind = pkt[0] >> 4
        if kind == PUBREL:
            mid = struct.unpack("!H", pkt[2:4])[0]
            pending.discard(mid)
            c.send(pubcomp(mid))
            continue
        if kind != PUBLISH:
            raise AssertionError("expected PUBLISH, got %r" % pkt)
        p = parse_publish(pkt)
        out.append((p.topic.decode(), p.payload, p.qos, bool(pkt[0] & 0x08), p.mid))
        if p.qos == 1:
            c.send(puback(p.mid))
        elif p.qos == 2:
            pending.add(p.mid)
            c.send(pubrec(p.mid))
    return out


# ------------------------------------------------------------ graceful restarts

class RestartTest(StoreTestCase):

    def test_sessions_queues_and_retained_survive(self):
        """A persistent session's subscriptions and queued QoS 1/2 messages, and retained
        messages, come back after a restart, in order, with the session present."""
        self.start()
        sub = self.raw_client("keeper", present=False)
        sub.subscribe_ok([("q/#", 2), ("other/+", 1)])
        sub.send(disconnect())
        sub.expect_closed()
        pub = self.raw_client("pub1", clean=True)
        for i in range(10):
            qos = 1 + i % 2
            pub.send(publish("q/%d" % i, "m%d" % i, qos=qos, mid=i + 1))
            if qos == 1:
                pub.expect(puback(i + 1))
            else:
                pub.expect(pubrec(i + 1))
                pub.send(pubrel(i + 1))
                pub.expect(pubcomp(i + 1))
        pub.send(publish("r/a", "ra", qos=1, mid=50, retain=True))
        pub.expect(puback(50))
        pub.send(publish("r/b", "rb", qos=0, retain=True))
        pub.send(publish("r/gone", "x", qos=0, retain=True))
        pub.send(publish("r/gone", "", qos=0, retain=True))  # cleared: not restored
        pub.ping()
        pub.send(disconnect())

        self.restart()
        sub = self.raw_client("keeper", present=True)
        got = ack_publishes(sub, 10)
        self.assertEqual([(t, p, q) for t, p, q, _, _ in got],
                         [("q/%d" % i, b"m%d" % i, 1 + i % 2) for i in range(10)])
        self.assertEqual([d for *_, d, _ in got], [False] * 10, "never sent before: no DUP")
        sub.expect_nothing(0.3)
        # the subscriptions were restored too: a new message arrives
        pub = self.raw_client("pub2", clean=True)
        pub.send(publish("other/x", "live", qos=1, mid=1))
        pub.expect(puback(1))
        sub.expect_publish("other/x", "live", qos=1)
        r = self.raw_client("reader", clean=True)
        r.send(subscribe(1, [("r/#", 0)]))
        r.read_packet()  # SUBACK
        got = sorted((parse_publish(r.read_packet()).topic.decode(), ) for _ in range(2))
        self.assertEqual(got, [("r/a",), ("r/b",)])
        r.expect_nothing(0.3, "r/gone was cleared before the restart")

    def test_sys_topics_are_not_stored(self):
        """$SYS describes one run of the broker: its retained messages are not kept; the
        store's own counters are there."""
        self.midge_only("mosquitto keeps no $SYS either; its log has no 'Restored' line")
        self.start(sys_interval=1)
        pub = self.raw_client("p", clean=True)
        pub.send(publish("r/one", "1", qos=1, mid=1, retain=True))
        pub.expect(puback(1))
        r = self.raw_client("sys", clean=True)
        r.send(subscribe(1, [("$SYS/broker/persistence/commits", 0)]))
        r.read_packet()
        # the retained value of the start, then the next interval's (counting that commit)
        commits = [int(parse_publish(r.read_packet(timeout=5)).payload) for _ in range(2)]
        self.assertGreater(commits[-1], 0)
        time.sleep(1.2)
        self.restart()
        m = self.broker.wait_log(r"Restored (\d+) retained messages")
        self.assertEqual(m.group(1), "1")

    def test_mqtt5_session_expiry_continues_from_stored_time(self):
        """The expiry interval counts from the disconnection, across a restart."""
        self.midge_only("mosquitto restarts the expiry clock at start")
        self.start()
        short = self.raw_client("short", proto=5, clean=True,
                                props=b"\x11" + struct.pack("!I", 3))
        short.send(disconnect(proto=5))
        longer = self.raw_client("longer", proto=5, clean=True,
                                 props=b"\x11" + struct.pack("!I", 600))
        longer.send(disconnect(proto=5))
        time.sleep(0.3)
        _stop_checked(self.broker)
        time.sleep(2.0)
        self.start()
        time.sleep(1.2)  # 3.5 s after the disconnection: "short" expired, "longer" did not
        self.raw_client("short", proto=5, present=False).send(disconnect(proto=5))
        self.raw_client("longer", proto=5, present=True).send(disconnect(proto=5))

    def test_mosquitto_conf_persistence_options(self):
        """persistence / persistence_location / persistence_file / autosave_interval from
        a mosquitto.conf: periodic syncing, and a mosquitto snapshot file left untouched."""
        self.midge_only("midge reads mosquitto.conf; this checks how it maps the options")
        snapshot = os.path.join(self.data, "mosquitto.db")
        with open(snapshot, "wb") as f:
            f.write(b"mosquitto's own snapshot")
        conf = ("user root\nallow_anonymous true\nlistener %d 127.0.0.1\npersistence true\n"
                "persistence_location %s/\npersistence_file mosquitto.db\nautosave_interval 1\n"
                % (free_port(), self.data))
        self.broker = Broker(raw_config=conf, config_name="midge.conf")
        self.port = self.broker.port
        self.broker.wait_log(r"Store %s/mosquitto\.db\.midge opened \(sync: periodic\)" % self.data)
        pub = self.raw_client("p", clean=True)
        pub.send(publish("keep/me", "v1", qos=1, mid=1, retain=True))
        pub.expect(puback(1))
        _stop_checked(self.broker)
        with open(snapshot, "rb") as f:
            self.assertEqual(f.read(), b"mosquitto's own snapshot")
        self.broker = Broker(raw_config=conf, config_name="midge.conf")
        self.port = self.broker.port
        r = self.raw_client("r", clean=True)
        r.send(subscribe(1, [("keep/#", 0)]))
        r.read_packet()
        r.expect_publish("keep/me", "v1", retain=True)


# ------------------------------------------------------------ crash safety

class CrashTest(StoreTestCase):

    def setUp(self):
        self.midge_only("mosquitto loses what came after its last autosave on kill -9")
        super().setUp()

    def test_inflight_redelivered_with_dup_and_same_id(self):
        """Messages in flight to a subscriber at the crash are re-sent with DUP under the
        same packet id; a QoS 2 message past PUBREC gets its PUBREL again."""
        self.start()
        sub = self.raw_client("inflight", present=False)
        sub.subscribe_ok([("f/1", 1), ("f/2", 2), ("f/3", 2)])
        pub = self.raw_client("pub", clean=True)
        for i, qos in ((1, 1), (2, 2), (3, 2)):
            pub.send(publish("f/%d" % i, "m%d" % i, qos=qos, mid=i))
            pub.expect(puback(i) if qos == 1 else pubrec(i))
        mids = [sub.expect_publish("f/%d" % i, "m%d" % i, qos=q) for i, q in ((1, 1), (2, 2), (3, 2))]
        sub.send(pubrec(mids[2]))  # the third one moves on to PUBREL
        sub.expect(pubrel(mids[2]))
        time.sleep(0.2)  # the in-flight state is written without waiting for it (QoS 1 / PUBREL)
        self.kill()
        self.start()
        sub = self.raw_client("inflight", present=True)
        sub.expect_publish("f/1", "m1", qos=1, dup=True, mid=mids[0])
        sub.expect_publish("f/2", "m2", qos=2, dup=True, mid=mids[1])
        sub.expect(pubrel(mids[2]))
        sub.send(puback(mids[0]))
        sub.send(pubrec(mids[1]))
        sub.expect(pubrel(mids[1]))
        sub.send(pubcomp(mids[1]))
        sub.send(pubcomp(mids[2]))
        sub.expect_nothing(0.3)
        sub.send(disconnect())
        # all acknowledged: nothing comes back after another crash
        time.sleep(0.3)
        self.kill()
        self.start()
        sub = self.raw_client("inflight", present=True)
        sub.expect_nothing(0.5)

    def test_incoming_qos2_is_not_routed_twice(self):
        """A QoS 2 PUBLISH acknowledged with PUBREC before the crash and sent again (DUP)
        after it is answered, not delivered a second time."""
        self.start()
        sub = self.raw_client("q2sub", present=False)
        sub.subscribe_ok([("once/#", 2)])
        sub.send(disconnect())
        pub = self.raw_client("q2pub", present=False)
        pub.send(publish("once/a", "only once", qos=2, mid=7))
        pub.expect(pubrec(7))
        self.kill()
        self.start()
        pub = self.raw_client("q2pub", present=True)
        pub.send(publish("once/a", "only once", qos=2, mid=7, dup=True))
        pub.expect(pubrec(7))
        pub.send(pubrel(7))
        pub.expect(pubcomp(7))
        sub = self.raw_client("q2sub", present=True)
        got = ack_publishes(sub, 1)
        self.assertEqual(got[0][:3], ("once/a", b"only once", 2))
        sub.expect_nothing(0.5, "the resent PUBLISH must not be delivered again")
        # the id is free again after PUBCOMP, also across a crash
        time.sleep(0.2)
        self.kill()
        self.start()
        pub = self.raw_client("q2pub", present=True)
        pub.send(publish("once/a", "second", qos=2, mid=7))
        pub.expect(pubrec(7))
        sub = self.raw_client("q2sub", present=True)
        self.assertEqual(ack_publishes(sub, 1)[0][:3], ("once/a", b"second", 2))

    def test_will_waits_across_a_crash(self):
        """A connected client's will with a delay goes out after the restart (its connection
        ended without DISCONNECT); a session's subscriptions were stored at SUBACK."""
        self.start()
        watcher = self.raw_client("watcher", present=False)
        watcher.subscribe_ok([("wills/#", 1)])
        watcher.send(disconnect())
        self.raw_client("mortal", proto=5, clean=True, props=b"\x11" + struct.pack("!I", 600),
                        will=("wills/mortal", "gone", 1, False),
                        will_props=b"\x18" + struct.pack("!I", 1))
        time.sleep(0.2)
        self.kill()
        self.start()
        watcher = self.raw_client("watcher", present=True)
        got = ack_publishes(watcher, 1, timeout=5)
        self.assertEqual(got[0][:3], ("wills/mortal", b"gone", 1))


class Publisher(threading.Thread):
    """Publishes numbered QoS 1/2 messages with a window in flight until the broker dies
    or `limit` are sent; records those the broker acknowledged (PUBACK, or PUBREC)."""

    def __init__(self, port, topic, qos, prefix, retain=False, limit=30000, window=24):
        super().__init__(daemon=True)
        self.port, self.topic, self.qos, self.prefix = port, topic, qos, prefix
        self.retain, self.limit, self.window = retain, limit, window
        self.acked = []
        self.sent = []
        self.start()

    def run(self):
        try:
            c = RawClient(self.port)
            c.send(connect(unique_id("pub"), clean=True))
            c.expect(connack(0))
            inflight, n = {}, 0
            while True:
                while len(inflight) < self.window and n < self.limit:
                    mid = n % 65535 + 1
                    payload = "%s-%d" % (self.prefix, n)
                    c.send(publish(self.topic, payload, qos=self.qos, mid=mid, retain=self.retain))
                    inflight[mid] = payload
                    self.sent.append(payload)
                    n += 1
                if not inflight:
                    break
                pkt = c.read_packet(timeout=10)
                kind, mid = pkt[0] >> 4, struct.unpack("!H", pkt[2:4])[0]
                if kind == PUBACK:
                    self.acked.append(inflight.pop(mid))
                elif kind == PUBREC:
                    self.acked.append(inflight[mid])
                    c.send(pubrel(mid))
                elif kind == PUBCOMP:
                    inflight.pop(mid)
            c.close()
        except (Closed, OSError, socket.timeout, AssertionError):
            pass


class Receiver:
    """A subscriber session that keeps its QoS 2 receiver state across reconnections, as a
    real client must: a QoS 2 packet id is delivered once until its PUBREL."""

    def __init__(self, client_id):
        self.client_id = client_id
        self.delivered = []
        self.pending_qos2 = set()

    def drain(self, port, idle=1.0, limit_s=30, stop_after=None):
        """Connects, receives until nothing came for `idle` seconds (or the broker goes)."""
        try:
            c = RawClient(port)
            c.send(connect(self.client_id, clean=False))
            c.read_packet()
        except (Closed, OSError, socket.timeout):
            return
        deadline = time.monotonic() + limit_s
        try:
            while time.monotonic() < deadline:
                if stop_after is not None and len(self.delivered) >= stop_after:
                    break
                pkt = c.read_packet(timeout=idle)
                kind = pkt[0] >> 4
                if kind == PUBREL:
                    mid = struct.unpack("!H", pkt[2:4])[0]
                    self.pending_qos2.discard(mid)
                    c.send(pubcomp(mid))
                elif kind == PUBLISH:
                    p = parse_publish(pkt)
                    if p.qos == 2:
                        if p.mid not in self.pending_qos2:
                            self.pending_qos2.add(p.mid)
                            self.delivered.append(p.payload.decode())
                        c.send(pubrec(p.mid))
                    else:
                        self.delivered.append(p.payload.decode())
                        if p.qos == 1:
                            c.send(puback(p.mid))
        except (Closed, OSError, socket.timeout):
            pass
        c.close()


def order_key(payload):
    """'t3-q2-17' -> (3, 17): trials in order, then the publisher's count."""
    trial, _, n = payload.split("-")
    return (int(trial[1:]), int(n))


class KillTrials(StoreTestCase):
    """Publishers stream QoS 1, QoS 2 and retained messages towards offline (and sometimes
    online) persistent sessions; the broker is killed at random moments, many times."""

    trials = 6

    def setUp(self):
        self.midge_only("mosquitto loses what came after its last autosave on kill -9")
        super().setUp()

    def options(self, **extra):
        # every message is kept for the offline sessions (the default keeps 1000)
        return super().options(max_queued_messages=0, **extra)

    def test_acknowledged_messages_survive_kill_9(self):
        rng = random.Random(SEED)
        self.start(verbose=False)
        for cid, topic, qos in (("kt-q1", "kt/q1", 1), ("kt-q2", "kt/q2", 2)):
            c = self.raw_client(cid, present=False)
            c.subscribe_ok([(topic, qos)])
            c.send(disconnect())
            c.expect_closed()
        q1, q2 = Receiver("kt-q1"), Receiver("kt-q2")
        acked = {"q1": [], "q2": [], "r": []}
        sent = {"q1": [], "q2": [], "r": []}
        for trial in range(self.trials):
            if self.broker is None:
                self.start(verbose=False)
            pubs = {"q1": Publisher(self.port, "kt/q1", 1, "t%d-q1" % trial),
                    "q2": Publisher(self.port, "kt/q2", 2, "t%d-q2" % trial),
                    "r": Publisher(self.port, "kt/r", 1, "t%d-r" % trial, retain=True, window=4)}
            online = None
            if trial % 2 == 1:
                # the QoS 2 subscriber is online, receiving, when the broker dies
                online = threading.Thread(target=q2.drain, args=(self.port,), daemon=True)
                online.start()
            time.sleep(rng.uniform(0.05, 0.6))
            self.kill()
            for name, p in pubs.items():
                p.join(15)
                acked[name] += p.acked
                sent[name] += p.sent
            if online:
                online.join(35)
        self.start(verbose=False)
        q1.drain(self.port)
        q2.drain(self.port)
        total_acked = sum(len(v) for v in acked.values())
        sys.stderr.write("  %s: %d kills, %d acknowledged (q1 %d, q2 %d, retained %d), "
                         "delivered q1 %d q2 %d, seed %d\n"
                         % (self.sync, self.trials, total_acked, len(acked["q1"]), len(acked["q2"]),
                            len(acked["r"]), len(q1.delivered), len(q2.delivered), SEED))
        self.assertGreater(len(acked["q1"]) + len(acked["q2"]), 0, "nothing was acknowledged")
        for name, r in (("q1", q1), ("q2", q2)):
            missing = set(acked[name]) - set(r.delivered)
            self.assertEqual(len(missing), 0, "%s: %d acknowledged messages lost, e.g. %s (seed %d)"
                             % (name, len(missing), sorted(missing, key=order_key)[:5], SEED))
            self.assertEqual(len(set(r.delivered) - set(sent[name])), 0, "delivered what nobody sent")
        dups = [p for p, n in collections.Counter(q2.delivered).items() if n > 1]
        self.assertEqual(len(dups), 0, "QoS 2 delivered twice: %s (seed %d)" % (dups[:5], SEED))
        # one publisher per trial: each stream arrives in order
        self.assertTrue(q2.delivered == sorted(q2.delivered, key=order_key), "QoS 2 order")
        # the retained message is the last acknowledged one or a later one
        if acked["r"]:
            r = self.raw_client("kt-reader", clean=True)
            r.send(subscribe(1, [("kt/r", 0)]))
            r.read_packet()
            kept = parse_publish(r.read_packet()).payload.decode()
            self.assertIn(kept, sent["r"])
            self.assertGreaterEqual(order_key(kept), order_key(acked["r"][-1]))


class KillTrialsSyncAlways(KillTrials):
    sync = "always"
    trials = 4


# ------------------------------------------------------------ a large store

class LargeStoreTest(StoreTestCase):

    def test_100k_retained_and_10k_sessions_restore(self):
        """100k retained messages and 10k persistent sessions with a subscription and a
        queued message each: restored completely, and how long it takes is reported."""
        self.midge_only("checks midge's restore log and timing")
        n_retained, n_sessions = 100000, 10000
        self.start(verbose=False)
        pub = self.raw_client("loader", clean=True)
        chunk = []
        for i in range(n_retained):
            chunk.append(publish("big/%d/%d" % (i // 1000, i % 1000), "v%d" % i, retain=True))
            if len(chunk) == 2000:
                pub.send(b"".join(chunk))
                chunk = []
        pub.send(publish("big/last", "done", qos=1, mid=1, retain=True))
        pub.expect(puback(1), timeout=120)
        make_sessions(self.port, n_sessions)
        pub.send(publish("each/x", "queued for all", qos=1, mid=2))
        pub.expect(puback(2), timeout=120)
        pub.send(disconnect())
        _stop_checked(self.broker)

        t0 = time.monotonic()
        self.start(verbose=False)
        self.broker.wait_log(r"midge version \S+ running", timeout=120)
        listening = time.monotonic() - t0
        m = self.broker.wait_log(r"Restored (\d+) retained messages and (\d+) sessions "
                                 r"\((\d+) subscriptions, (\d+) messages in flight, (\d+) queued\)")
        ms = self.broker.wait_log(r"Store .* opened \(sync: batch\) in (\d+) ms")
        sys.stderr.write("  restore of %d retained + %d sessions: %s ms in the store, "
                         "serving after %.2f s\n" % (n_retained, n_sessions, ms.group(1), listening))
        self.assertEqual(int(m.group(1)), n_retained + 1)
        self.assertEqual(int(m.group(2)), n_sessions)
        self.assertEqual(int(m.group(3)), n_sessions)
        self.assertEqual(int(m.group(5)), n_sessions)
        # generous: catches a restore that grew quadratic, not a slow machine
        self.assertLess(listening, 120)
        # content: samples of sessions and of retained messages
        rng = random.Random(SEED)
        for i in rng.sample(range(n_sessions), 20):
            s = self.raw_client("many-%d" % i, present=True)
            self.assertEqual(ack_publishes(s, 1)[0][:3], ("each/x", b"queued for all", 1))
            s.send(disconnect())
        r = self.raw_client("reader", clean=True)
        picks = rng.sample(range(n_retained), 20)
        r.send(subscribe(1, [("big/%d/%d" % (i // 1000, i % 1000), 0) for i in picks]))
        r.read_packet()
        got = {parse_publish(r.read_packet()).payload for _ in picks}
        self.assertEqual(got, {b"v%d" % i for i in picks})


def make_sessions(port, n, batch=500):
    """n persistent sessions "many-<i>" subscribed to each/# at QoS 1, made many at a time."""
    for start in range(0, n, batch):
        sel = selectors.DefaultSelector()
        socks = []
        for i in range(start, min(n, start + batch)):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(connect("many-%d" % i, clean=False) + subscribe(1, [("each/#", 1)]))
            sel.register(s, selectors.EVENT_READ, [b"", s])
            socks.append(s)
        need = len(socks)
        deadline = time.monotonic() + 60
        while need and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                buf, s = key.data
                data = s.recv(4096)
                key.data[0] = buf = buf + data
                # CONNACK (4 bytes) + SUBACK (5 bytes)
                if len(buf) >= 9 or not data:
                    if len(buf) < 9:
                        raise AssertionError("session setup failed: %r" % buf)
                    sel.unregister(s)
                    s.sendall(disconnect())
                    need -= 1
        for s in socks:
            s.close()
        if need:
            raise AssertionError("%d sessions got no SUBACK" % need)


# ------------------------------------------------------------ damaged stores

class DamagedStoreTest(StoreTestCase):
    """A damaged store never crashes the broker: it refuses to start, naming the store and
    the way out, or starts after recovery when persistence_recover asks for it."""

    def setUp(self):
        self.midge_only("midge's own store")
        super().setUp()

    def fill(self):
        self.start()
        sub = self.raw_client("dmg", present=False)
        sub.subscribe_ok([("d/#", 1)])
        sub.send(disconnect())
        pub = self.raw_client("p", clean=True)
        for i in range(200):
            pub.send(publish("d/%d" % i, "%03d" % i + "x" * 297, qos=1, mid=i + 1, retain=True))
            pub.expect(puback(i + 1))
        _stop_checked(self.broker)
        self.broker = None
        return os.path.join(self.store_dir(), "data.mdb")

    def start_refused(self, **extra):
        """Starts a broker expected to exit; returns its log."""
        b = Broker(options=self.options(**extra), start=False)
        b.config_path = b._write_config()
        import subprocess
        proc = subprocess.run(b.command(b.config_path), capture_output=True, text=True,
                              cwd=b.tmpdir, timeout=30)
        shutil.rmtree(b.tmpdir, ignore_errors=True)
        self.assertEqual(proc.returncode, 1, "exit status; output:\n" + proc.stdout + proc.stderr)
        out = proc.stdout + proc.stderr
        self.assertNotIn("AddressSanitizer", out)
        self.assertNotIn("runtime error", out)
        return out

    def recovered(self):
        self.start(persistence_recover=True)
        pub = self.raw_client("after", clean=True)
        pub.send(publish("d/new", "fresh", qos=1, mid=1))
        pub.expect(puback(1))
        return self.broker

    def test_truncated(self):
        data = self.fill()
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 3)
        out = self.start_refused()
        self.assertIn(self.store_dir(), out)
        self.assertIn("persistence_recover: true", out)
        self.recovered()
        kept = glob.glob(data + ".damaged-*")
        self.assertEqual(len(kept), 1, "the damaged file is kept aside")

    def test_garbage(self):
        data = self.fill()
        with open(data, "wb") as f:
            f.write(os.urandom(64 * 1024))
        out = self.start_refused()
        self.assertIn(self.store_dir(), out)
        self.recovered()

    def test_bit_flips(self):
        """Random bytes flipped anywhere: refused with a message, or (flips in free
        space) started; never a crash. With recovery it always starts."""
        data = self.fill()
        with open(data, "rb") as f:
            pristine = f.read()
        rng = random.Random(SEED)
        outcomes = collections.Counter()
        for trial in range(12):
            damaged = bytearray(pristine)
            for _ in range(rng.choice((1, 8, 64))):
                pos = rng.randrange(len(damaged))
                damaged[pos] ^= 1 << rng.randrange(8)
            with open(data, "wb") as f:
                f.write(damaged)
            b = Broker(options=self.options(), start=False)
            try:
                b.start()
                # the listeners open before the store: wait for the verdict
                wait_for(lambda: b._log_has(r"midge version \S+ running") or not b.alive(),
                         timeout=20, what="the broker to run or exit")
                if not b.alive():
                    raise AssertionError("exited")
            except AssertionError:
                b.proc.wait()
                out = b.log()
                b.stop()
                self.assertEqual(b.proc.returncode, 1, out)
                self.assertIn("Error:", out)
                outcomes["refused"] += 1
            else:
                # started (the flips hit free space, or only records recovery drops): it serves
                try:
                    c = connected_client(b.port, "probe%d" % trial)
                    c.ping()
                    c.close()
                except AssertionError as e:
                    raise AssertionError("%s (seed %d, trial %d)\n%s" % (e, SEED, trial, b.log()))
                _stop_checked(b)
                outcomes["started"] += 1
                out = b.log()
            self.assertNotIn("AddressSanitizer", out)
            self.assertNotIn("runtime error", out)
        sys.stderr.write("  bit flips: %s (seed %d)\n" % (dict(outcomes), SEED))
        self.recovered()

    def test_flipped_payload_byte(self):
        """A flipped bit inside a stored message (which LMDB cannot see) is caught by the
        record's checksum: refused, then left out by recovery; the rest is kept."""
        data = self.fill()
        with open(data, "r+b") as f:
            raw = f.read()
            # every copy LMDB has of message 117 (pages are copied on write)
            positions = [i for i in range(len(raw)) if raw.startswith(b"117" + b"x" * 297, i)]
            self.assertTrue(positions)
            for pos in positions:
                f.seek(pos + 17)
                f.write(b"y")
        out = self.start_refused()
        self.assertRegex(out, r"\d+ records of the store in %s are damaged" % self.store_dir())
        self.recovered()
        self.broker.wait_log(r"Warning: the store in \S+ was damaged: [1-9]\d* records were dropped")
        r = self.raw_client("reader", clean=True)
        r.send(subscribe(1, [("d/#", 0)]))
        r.read_packet()
        got = set()
        try:
            while True:
                got.add(parse_publish(r.read_packet(timeout=1)).topic)
        except socket.timeout:
            pass
        self.assertEqual(len(got), 199, "one retained message lost to the flip, the rest kept")

    def test_unusable_location(self):
        """A store that cannot be created is a clear error at start, naming the path."""
        with open(os.path.join(self.data, "store"), "w") as f:
            f.write("")
        out = self.start_refused(persistence_location=os.path.join(self.data, "store", "sub") + "/")
        self.assertIn(os.path.join(self.data, "store", "sub"), out)

if __name__ == "__main__":
    main()
