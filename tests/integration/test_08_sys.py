#!/usr/bin/python3
"""$SYS/broker/...: the topics mosquitto 2.0.11 publishes, their formats,
that the values move, that they come every sys_interval, retained, and
that sys_interval 0 turns them off.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_08_sys.py
"""

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (BrokerTestCase, PahoClient, is_mosquitto, main,  # noqa: E402
                       unique_id)

# Every topic under $SYS/broker/ that Debian's mosquitto 2.0.11 publishes
# (no bridges configured), observed with sys_interval 1 and one client.
LOAD = ["load/%s/%s" % (what, span)
        for what in ("messages/received", "messages/sent", "publish/dropped",
                     "publish/received", "publish/sent", "bytes/received", "bytes/sent",
                     "sockets", "connections")
        for span in ("1min", "5min", "15min")]
COUNTERS = [
    "clients/total", "clients/connected", "clients/disconnected", "clients/active",
    "clients/inactive", "clients/expired", "clients/maximum",
    "messages/received", "messages/sent", "messages/stored",
    "subscriptions/count", "shared_subscriptions/count", "retained messages/count",
    "heap/current", "heap/maximum",
    "publish/messages/dropped", "publish/messages/received", "publish/messages/sent",
    "publish/bytes/received", "publish/bytes/sent",
    "bytes/received", "bytes/sent",
    "store/messages/count", "store/messages/bytes",
]
SYS_TOPICS = ["$SYS/broker/" + t for t in ["version", "uptime"] + COUNTERS + LOAD]

VERSION_PREFIX = "mosquitto version " if is_mosquitto() else "midge version "


def sys_topic(name):
    return "$SYS/broker/" + name


class SysWatcher(PahoClient):
    """A $SYS/# subscriber that timestamps what it receives."""

    def __init__(self, port, **kw):
        self.arrivals = []  # (monotonic time, topic, payload, retain)
        super().__init__(port, client_id=unique_id("sys"), **kw)
        self.subscribe("$SYS/#", 0)

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.arrivals.append((time.monotonic(), msg.topic, bytes(msg.payload), bool(msg.retain)))
        super()._on_message(client, userdata, msg)

    def latest(self, name):
        """The last value received for $SYS/broker/<name>, as text (None if none yet)."""
        topic = sys_topic(name)
        with self._cond:
            for t, payload, _, _ in reversed(self.messages):
                if t == topic:
                    return payload.decode()
        return None

    def topics(self):
        with self._cond:
            return {t for t, _, _, _ in self.messages}

    def wait_value(self, name, op, n, timeout=6.0):
        """Waits until the last value of $SYS/broker/<name> is == n or >= n (op)."""
        topic = sys_topic(name)
        test = {"==": lambda v: v == n, ">=": lambda v: v >= n}[op]

        def ok(msgs):
            for t, payload, _, _ in reversed(msgs):
                if t == topic:
                    return re.fullmatch(r"\d+", payload.decode()) and test(int(payload))
            return False
        try:
            self.wait_for(ok, timeout, topic)
        except AssertionError:
            raise AssertionError("after %.0fs, %s is %r, expected %s %d"
                                 % (timeout, topic, self.latest(name), op, n))
        return self.latest(name)

    def live_updates(self, name):
        """(time, payload) of the non-retained (periodic) messages on $SYS/broker/<name>."""
        topic = sys_topic(name)
        with self._cond:
            return [(ts, p.decode()) for ts, t, p, r in self.arrivals if t == topic and not r]

    def wait_fresh(self, n=1, timeout=6.0):
        """Waits for n more periodic uptime updates: every counter published
        after it reflects what happened before this call."""
        start = len(self.live_updates("uptime"))
        self.wait_for(lambda msgs: len(self.live_updates("uptime")) >= start + n, timeout,
                      "%d more periodic $SYS/broker/uptime updates" % n)


class Sys(BrokerTestCase):

    broker_options = {"sys_interval": 1}

    def watcher(self, **kw):
        w = SysWatcher(self.port, **kw)
        self.addCleanup(w.close)
        return w

    def paho(self, **kw):
        kw.setdefault("client_id", unique_id("p"))
        c = PahoClient(self.port, **kw)
        self.addCleanup(c.close)
        return c

    def wait_all_topics(self, w, timeout=8.0):
        try:
            w.wait_for(lambda msgs: set(SYS_TOPICS) <= {t for t, _, _, _ in msgs}, timeout,
                       "every $SYS/broker topic of mosquitto 2.0.11")
        except AssertionError:
            self.fail("after %.0fs, these $SYS topics never came: %s"
                      % (timeout, sorted(set(SYS_TOPICS) - w.topics())))

    def test_every_mosquitto_topic_is_published(self):
        w = self.watcher()
        self.wait_all_topics(w)
        version = w.latest("version")
        self.assertTrue(version.startswith(VERSION_PREFIX), version)
        self.assertRegex(version[len(VERSION_PREFIX):], r"^\d+\.\d+\S*$")
        self.assertRegex(w.latest("uptime"), r"^\d+ seconds$")
        for name in COUNTERS:
            with self.subTest(topic=name):
                self.assertRegex(w.latest(name), r"^\d+$")
        for name in LOAD:
            with self.subTest(topic=name):
                self.assertRegex(w.latest(name), r"^\d+\.\d\d$")

    def test_updates_come_every_interval(self):
        everything = self.paho()
        everything.subscribe("#", 0)
        w = self.watcher()
        w.wait_for(lambda msgs: len(w.live_updates("uptime")) >= 2, 6.0,
                   "two periodic $SYS/broker/uptime updates")
        # "#" does not match topics beginning with "$".
        self.assertEqual(everything.messages, [])
        (t0, first), (t1, second) = w.live_updates("uptime")[:2]
        self.assertLess(int(first.split()[0]), int(second.split()[0]), (first, second))
        # mosquitto updates once more than sys_interval seconds have passed
        # (every 2 s for sys_interval 1): well within 3 s.
        self.assertLess(t1 - t0, 3.0)
        self.assertGreater(t1 - t0, 0.5)

    def test_client_and_subscription_counts(self):
        w = self.watcher()
        # Only the watcher, with its one subscription ($SYS/#).
        w.wait_value("clients/connected", "==", 1)
        w.wait_value("clients/active", "==", 1)
        w.wait_value("subscriptions/count", "==", 1)
        a = self.paho()
        b = self.paho(clean_session=False)
        a.subscribe("sys/a", 1)
        a.subscribe("sys/b/#", 0)
        a.subscribe("$share/g/sys/c", 0)
        w.wait_value("clients/connected", "==", 3)
        w.wait_value("clients/total", "==", 3)
        w.wait_value("clients/maximum", ">=", 3)
        # Shared subscriptions are counted apart.
        w.wait_value("subscriptions/count", "==", 3)
        w.wait_value("shared_subscriptions/count", "==", 1)
        a.disconnect()
        b.disconnect()
        # The clean session is gone; the persistent one is kept, disconnected.
        w.wait_value("clients/connected", "==", 1)
        w.wait_value("clients/disconnected", "==", 1)
        w.wait_value("clients/inactive", "==", 1)
        w.wait_value("clients/total", "==", 2)
        w.wait_value("clients/maximum", ">=", 3)
        w.wait_value("subscriptions/count", "==", 1)
        w.wait_value("shared_subscriptions/count", "==", 0)

    def test_message_and_retained_counts(self):
        w = self.watcher()
        # retained messages/count includes the retained $SYS messages; wait
        # until they are all there (clients/maximum comes once a client has
        # connected) and every counter is up to date.
        w.wait_value("clients/maximum", ">=", 1)
        w.wait_fresh(2)
        received = int(w.latest("messages/received"))
        pub_received = int(w.latest("publish/messages/received"))
        pub_bytes = int(w.latest("publish/bytes/received"))
        retained = int(w.latest("retained messages/count"))
        p = self.paho()
        # Not retained, QoS 0 and 1: mosquitto 2.0.11 leaves QoS 2 and
        # retained PUBLISHes out of publish/messages/received.
        for i in range(5):
            p.publish("sys/test/%d" % i, b"x" * 100, qos=i % 2)
        w.wait_value("publish/messages/received", "==", pub_received + 5)
        w.wait_value("publish/bytes/received", "==", pub_bytes + 500)
        w.wait_value("messages/received", ">=", received + 5)
        for i in range(3):
            p.publish("sys/retained/%d" % i, "kept", qos=1, retain=True)
        w.wait_value("retained messages/count", "==", retained + 3)
        p.publish("sys/retained/0", b"", qos=1, retain=True)  # clears it
        w.wait_value("retained messages/count", "==", retained + 2)

    def test_late_subscriber_gets_everything_retained(self):
        first = self.watcher()
        self.wait_all_topics(first)
        first.wait_fresh()
        late = self.watcher()
        self.wait_all_topics(late, 2.0)
        with late._cond:
            firsts = {}
            for _, t, _, retain in late.arrivals:
                firsts.setdefault(t, retain)
        self.assertEqual(sorted(t for t in SYS_TOPICS if not firsts[t]), [],
                         "the first message on each topic should be the retained one")
        # The version is published once, at startup: it comes only from the
        # retained store, never again periodically.
        versions = [(p, r) for _, t, p, r in first.arrivals if t == sys_topic("version")]
        self.assertEqual(len(versions), 1, versions)
        self.assertTrue(versions[0][1], "version should arrive with the retain flag")


class SysIntervalZero(BrokerTestCase):
    """mosquitto 2.0.11 with sys_interval 0 publishes nothing under $SYS,
    not even $SYS/broker/version."""

    broker_options = {"sys_interval": 0}

    def test_nothing_under_sys(self):
        got_sys = threading.Event()
        c = PahoClient(self.port, client_id=unique_id("sys0"))
        self.addCleanup(c.close)

        def on_message(client, userdata, msg):
            if msg.topic.startswith("$SYS/"):
                got_sys.set()
            PahoClient._on_message(c, client, userdata, msg)
        c.client.on_message = on_message
        c.subscribe("$SYS/#", 0)
        c.subscribe("ctl", 0)
        c.publish("ctl", "alive", qos=1)
        c.wait_for(lambda msgs: ("ctl", b"alive", 0, False) in msgs, what="the control message")
        # mosquitto with sys_interval 1 publishes within 2 s; wait longer.
        self.assertFalse(got_sys.wait(3.0), "got a $SYS message: %r" % c.messages)
        self.assertEqual([m for m in c.messages if m[0].startswith("$SYS")], [])


if __name__ == "__main__":
    main()
