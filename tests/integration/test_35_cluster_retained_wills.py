#!/usr/bin/python3
"""Clusters: retained messages that live in the cluster, and wills that fire
when the node their client was on dies (three nodes over three clustered
nats-servers with JetStream, clustertest.py).

Covered: a retained message set on node A reaches a subscriber of node C
started after it was set, with the retain flag; a clear on one node clears
it everywhere, also for a node that was down meanwhile (which still gets the
other topics); MQTT 5 properties of a retained message reach a node started
later, and a retained message that expired meanwhile does not come back;
200 retained topics all reach a restarted node; topics with '.', '*', '>',
'=', '~', '$', blanks, empty levels, UTF-8 and a 1500-byte level survive the
key encoding; the will of a client on A fires exactly once (one copy for a
subscriber on B and one on C: one survivor claims A) when A is killed with
kill -9, and not again when A comes back; a client that disconnected
normally leaves no will behind, one whose connection dropped fires once
(from A, not again when A dies); a Will Delay Interval is respected by the
claimer, and a will whose client came back on another node meanwhile (with
or without a will of its own) does not fire; a node killed and restarted at once gets its previous run's will
out exactly once (itself, or the survivor that claimed it first); a node
that stops normally is not claimed and leaves no will behind; a dead node's
retained MQTT 5 will keeps its QoS, retain flag and properties (a new
subscriber on either survivor gets it); the survivors count the claim and
the will (/metrics).

Run alone: /usr/bin/python3 tests/integration/test_35_cluster_retained_wills.py
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clustertest import SETTLE, ClusterCase  # noqa: E402
from midgetest import main, unique_id, wait_for  # noqa: E402

NODE_TIMEOUT = 2  # seconds (cluster.node_timeout)


def v5_client(port, client_id, will=None, will_delay=0, session_expiry=0, will_props=None):
    """A raw paho MQTT 5 client (PahoClient speaks no MQTT 5 properties)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5, reconnect_on_failure=False)
    c.got = []
    c.on_message = lambda cl, u, m: c.got.append(m)
    if will:
        wp = Properties(PacketTypes.WILLMESSAGE)
        for k, v in (will_props or {}).items():
            setattr(wp, k, v)
        if will_delay:
            wp.WillDelayInterval = will_delay
        c.will_set(will[0], will[1], will[2], will[3], properties=wp)
    cp = Properties(PacketTypes.CONNECT)
    if session_expiry:
        cp.SessionExpiryInterval = session_expiry
    c.connect("127.0.0.1", port, properties=cp)
    c.loop_start()
    wait_for(c.is_connected, timeout=10, what="an MQTT 5 CONNACK")
    return c


class RetainedAndWills(ClusterCase):
    CLUSTER_EXTRA = "  node_timeout: %d\n" % NODE_TIMEOUT

    @classmethod
    def setUpClass(cls):
        # Every node's ACL lets anonymous clients do anything ('#' leaves out '$'
        # topics: those of test_05 and $SYS are named) but publish (or read) under
        # forbidden/, which the user "watcher" (no password file: any password) reads.
        cls.acl_dir = tempfile.mkdtemp(prefix="midgetest-acl-")
        acl = os.path.join(cls.acl_dir, "acl")
        with open(acl, "w") as f:
            f.write("topic readwrite #\ntopic readwrite $special/#\ntopic read $SYS/#\n"
                    "topic deny forbidden/#\nuser watcher\ntopic read forbidden/#\n")
        cls.NODE_EXTRA = "acl_file: %s\n" % acl
        super().setUpClass()
        # A brand-new cluster: wills registered before the first node made the
        # buckets are not kept (JetStream has nowhere to put them).
        try:
            for b in cls.nodes:
                b.wait_log(r"Cluster: wills registry and node heartbeats ready", timeout=20)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.acl_dir, ignore_errors=True)

    def restart(self, i):
        self.kill_node(i)
        return self.start_node(i)

    def retained_on(self, node, filt, count, timeout=10):
        """Subscribes on node to filt; returns the retained messages once count came."""
        c = self.client(node)
        c.subscribe(filt, 1)
        wait_for(lambda: len([m for m in c.messages if m[3]]) >= count, timeout=timeout,
                 what="%d retained messages for %s on node %d" % (count, filt, node))
        time.sleep(SETTLE)
        return [m for m in c.messages if m[3]]

    def stored_on(self, node, filt, count, timeout=10):
        """Waits until node (which is up) has count messages for filt: retained when it
        subscribes, or live (the bucket delivered them to it a moment later). Then
        JetStream stored them."""
        c = self.client(node)
        c.subscribe(filt, 1)
        wait_for(lambda: len({m[0] for m in c.messages}) >= count, timeout=timeout,
                 what="%d messages for %s on node %d" % (count, filt, node))
        time.sleep(SETTLE)
        return sorted({(m[0], m[1]) for m in c.messages})

    def counted(self, nodes, name):
        return sum(self.metric(n, name) for n in nodes)

    def wills_fired(self, nodes):
        return self.counted(nodes, "midge_cluster_wills_fired_total")

    # Retained messages ------------------------------------------------------
    def test_01_retained_reach_a_node_started_later(self):
        topic = unique_id("late") + "/r"
        self.kill_node(2)
        self.client(0).publish(topic, b"kept", 1, retain=True)
        self.assertEqual(self.stored_on(1, topic, 1), [(topic, b"kept")])
        self.start_node(2)
        # At once: the node waited for the bucket's values before taking clients.
        c = self.client(2)
        c.subscribe(topic, 1)
        c.wait_for(lambda ms: len(ms) >= 1, timeout=3, what="the retained message at once")
        time.sleep(SETTLE)
        self.assertEqual(c.messages, [(topic, b"kept", 1, True)])
        self.client(0).publish(topic, b"", 1, retain=True)

    def test_02_clear_reaches_a_node_that_was_down(self):
        base = unique_id("clr") + "/"
        pub = self.client(0)
        pub.publish(base + "gone", b"old", 1, retain=True)
        pub.publish(base + "stays", b"here", 1, retain=True)
        self.assertEqual(len(self.stored_on(1, base + "#", 2)), 2)
        self.kill_node(1)
        pub.publish(base + "gone", b"", 1, retain=True)  # cleared while B is down
        time.sleep(1)
        # C, which was up, forgot it too (it keeps the other one).
        self.assertEqual(self.retained_on(2, base + "#", 1), [(base + "stays", b"here", 1, True)])
        self.start_node(1)
        self.assertEqual(self.retained_on(1, base + "#", 1), [(base + "stays", b"here", 1, True)])
        # Cleared on B (another node than the one that set it): gone on A as well.
        self.client(1).publish(base + "stays", b"", 1, retain=True)
        time.sleep(1)
        a = self.client(0)
        a.subscribe(base + "#", 1)
        time.sleep(SETTLE)
        self.assertEqual(a.messages, [])

    def test_03_properties_and_expiry_reach_a_late_node(self):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        base = unique_id("v5r") + "/"
        self.kill_node(2)
        pub = v5_client(self.nodes[0].mqtt_port, unique_id("v5p"))
        self.addCleanup(pub.loop_stop)
        self.addCleanup(pub.disconnect)
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "text/plain"
        props.ResponseTopic = "reply/here"
        props.CorrelationData = b"\x00corr"
        props.UserProperty = [("k1", "v1"), ("k2", "v2")]
        props.MessageExpiryInterval = 100
        props.PayloadFormatIndicator = 1
        pub.publish(base + "long", b"lives", 1, retain=True, properties=props).wait_for_publish(5)
        short = Properties(PacketTypes.PUBLISH)
        short.MessageExpiryInterval = 1
        pub.publish(base + "short", b"dies", 1, retain=True, properties=short).wait_for_publish(5)
        self.assertEqual(len(self.stored_on(1, base + "#", 2)), 2)
        time.sleep(2.2)  # the short one expires
        self.start_node(2)
        sub = v5_client(self.nodes[2].mqtt_port, unique_id("v5s"))
        self.addCleanup(sub.loop_stop)
        self.addCleanup(sub.disconnect)
        sub.subscribe(base + "#", 1)
        wait_for(lambda: sub.got, timeout=5, what="the retained message with properties")
        time.sleep(SETTLE)
        self.assertEqual([m.topic for m in sub.got], [base + "long"])
        m = sub.got[0]
        self.assertTrue(m.retain)
        self.assertEqual(m.payload, b"lives")
        p = m.properties
        self.assertEqual(p.ContentType, "text/plain")
        self.assertEqual(p.ResponseTopic, "reply/here")
        self.assertEqual(p.CorrelationData, b"\x00corr")
        self.assertEqual(p.UserProperty, [("k1", "v1"), ("k2", "v2")])
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertTrue(90 <= p.MessageExpiryInterval <= 100, p.MessageExpiryInterval)

    def test_04_many_retained_topics_reach_a_restarted_node(self):
        base = unique_id("many") + "/"
        pub = self.client(0)
        for i in range(200):
            pub.publish("%s%d" % (base, i), b"v%d" % i, 1, retain=True)
        self.assertEqual(len(self.stored_on(1, base + "#", 200)), 200)
        self.restart(2)
        got = self.retained_on(2, base + "#", 200)
        self.assertEqual(sorted(got), sorted(("%s%d" % (base, i), b"v%d" % i, 1, True)
                                             for i in range(200)))

    def test_05_special_characters_in_topics(self):
        u = unique_id("sp")
        topics = [u + "/a.b", u + "/*/>", u + "/x=y/=3D", u + "/~7E/~", u + "//empty//",
                  u + "/with space", u + "/caf\u00e9/\u20ac\U0001F600", u + "/$dollar",
                  u + "/" + "L" * 1500, "$special/" + u + "/dollar-first", u + "/-_/AZaz09"]
        pub = self.client(0)
        for i, t in enumerate(topics):
            pub.publish(t, b"p%d" % i, 1, retain=True)
        self.assertEqual(len(self.stored_on(1, u + "/#", len(topics) - 1)), len(topics) - 1)
        self.restart(2)
        c = self.client(2)
        for t in topics:
            c.subscribe(t, 1)
        c.wait_for(lambda ms: len(ms) >= len(topics), timeout=10, what="every special topic")
        time.sleep(SETTLE)
        self.assertEqual(sorted(c.messages),
                         sorted((t, b"p%d" % i, 1, True) for i, t in enumerate(topics)))

    # Wills ------------------------------------------------------------------
    def test_10_will_fires_once_when_its_node_is_killed(self):
        topic = unique_id("will") + "/w"
        subs = [self.client(1), self.client(2)]
        for c in subs:
            c.subscribe(topic, 1)
        self.settle(0, subs)
        before = self.wills_fired([1, 2])
        gone = self.counted([1, 2], "midge_cluster_nodes_gone_total")
        self.client(0, will=(topic, b"dead", 1, False))
        time.sleep(0.5)  # its registration reached the bucket
        killed = time.monotonic()
        self.kill_node(0)
        for c in subs:
            c.wait_for(lambda ms: any(m[0] == topic for m in ms), timeout=NODE_TIMEOUT + 8,
                       what="the will of a client of the killed node")
        took = time.monotonic() - killed
        self.assertLess(took, NODE_TIMEOUT + 4)
        # Back under a new instance: A claims nothing of its previous run twice.
        self.start_node(0)
        time.sleep(NODE_TIMEOUT + 1)
        for c in subs:
            self.assertEqual(self.got(c, topic), [(topic, b"dead", 1, False)])
        # Exactly one survivor claimed A and fired it.
        self.assertEqual(self.wills_fired([1, 2]) - before, 1)
        self.assertEqual(self.counted([1, 2], "midge_cluster_nodes_gone_total") - gone, 1)

    def test_16_a_will_the_acl_forbids_is_not_fired_by_another_node(self):
        # A single broker asks the ACL when the will would go out; the node that fires
        # a dead node's wills has no connection to ask about, so the will's own node
        # asks at CONNECT and registers a will the client may not publish as none.
        topic = unique_id("ok") + "/w"
        forbidden = "forbidden/" + unique_id("no")
        sub = self.client(1)
        sub.subscribe(topic, 1)
        watcher = self.client(1, username="watcher", password="any")
        watcher.subscribe(forbidden, 1)
        self.settle(0, [sub])
        self.client(0, will=(forbidden, b"never", 1, False))
        self.client(0, will=(topic, b"allowed", 1, False))
        time.sleep(0.5)  # their registrations reached the bucket
        self.kill_node(0)
        try:
            sub.wait_for(lambda ms: any(m[0] == topic for m in ms), timeout=NODE_TIMEOUT + 8,
                         what="the allowed will of a client of the killed node")
            time.sleep(1)
            self.assertEqual(self.got(watcher, "forbidden/"), [])
        finally:
            self.start_node(0)

    def test_11_normal_disconnect_leaves_no_will(self):
        base = unique_id("bye") + "/"
        sub = self.client(1)
        sub.subscribe(base + "#", 1)
        self.settle(0, [sub])
        polite = self.client(0, will=(base + "polite", b"no", 1, False))
        dropped = self.client(0, will=(base + "dropped", b"yes", 1, False))
        polite.disconnect()
        dropped.abort()  # its will goes out from A, now
        sub.wait_for(lambda ms: len(ms) >= 1, what="the will of the dropped connection")
        time.sleep(0.5)
        self.kill_node(0)
        time.sleep(NODE_TIMEOUT + 3)  # A is claimed: nothing of it is left to fire
        self.assertEqual(self.got(sub, base), [(base + "dropped", b"yes", 1, False)])
        self.start_node(0)

    def test_12_will_delay_and_a_client_back_elsewhere(self):
        base = unique_id("delay") + "/"
        sub = self.client(2)
        sub.subscribe(base + "#", 1)
        self.settle(0, [sub])
        port = self.nodes[0].mqtt_port
        waits = v5_client(port, unique_id("wd"), will=(base + "late", b"late", 1, False),
                          will_delay=4, session_expiry=100)
        back_id = unique_id("wb")
        comes_back = v5_client(port, back_id, will=(base + "back", b"never", 1, False),
                               will_delay=4, session_expiry=100)
        bare_id = unique_id("wn")
        comes_back_bare = v5_client(port, bare_id, will=(base + "bare", b"never", 1, False),
                                    will_delay=4, session_expiry=100)
        for c in (waits, comes_back, comes_back_bare):
            self.addCleanup(c.loop_stop)
        time.sleep(0.5)
        killed = time.monotonic()
        self.kill_node(0)
        # Back on B (with a will of its own) before the delay ran out.
        again = v5_client(self.nodes[1].mqtt_port, back_id, will=(base + "back2", b"later", 1, False),
                          session_expiry=100)
        self.addCleanup(again.loop_stop)
        # And one back on C without any will: its connection is registered all the same.
        self.client(2, client_id=bare_id)
        sub.wait_for(lambda ms: any(m[0] == base + "late" for m in ms), timeout=NODE_TIMEOUT + 12,
                     what="the delayed will")
        took = time.monotonic() - killed
        # The heartbeat stood still at most 1 s before the kill, then the delay.
        self.assertGreaterEqual(took, NODE_TIMEOUT - 1 + 4 - 0.3)
        time.sleep(2)
        try:
            self.assertEqual(self.got(sub, base), [(base + "late", b"late", 1, False)])
        except AssertionError:
            for i in (1, 2):
                sys.stderr.write("node %d:\n%s\n" % (i, "\n".join(
                    l for l in self.nodes[i].log().splitlines() if "luster" in l)))
            raise
        finally:
            again.disconnect()  # normally: its own will does not fire either
            self.start_node(0)

    def test_13_quick_restart_fires_the_previous_runs_will_once(self):
        topic = unique_id("quick") + "/w"
        subs = [self.client(1), self.client(2)]
        for c in subs:
            c.subscribe(topic, 1)
        self.settle(0, subs)
        self.client(0, will=(topic, b"prev", 1, False))
        time.sleep(0.5)
        # Back before the others call it gone (or just after): either it fires its
        # previous run's will itself, or the survivor that claimed it does.
        self.restart(0)
        for c in subs:
            c.wait_for(lambda ms: any(m[0] == topic for m in ms), timeout=NODE_TIMEOUT + 8,
                       what="the will of the previous run")
        time.sleep(NODE_TIMEOUT + 1)
        for c in subs:
            self.assertEqual(self.got(c, topic), [(topic, b"prev", 1, False)])

    def test_14_a_node_that_stops_normally_is_not_claimed(self):
        topic = unique_id("stop") + "/w"
        sub = self.client(1)
        sub.subscribe(topic, 1)
        self.settle(0, [sub])
        gone = self.counted([1, 2], "midge_cluster_nodes_gone_total")
        self.client(0, will=(topic, b"x", 1, False))
        time.sleep(0.5)
        self.nodes[0].stop()  # SIGTERM: clients closed without their wills, as alone
        self.nodes[0] = None
        time.sleep(NODE_TIMEOUT + 2.5)
        self.assertEqual(self.got(sub, topic), [])
        self.assertEqual(self.counted([1, 2], "midge_cluster_nodes_gone_total"), gone)
        self.start_node(0)

    def test_15_a_dead_nodes_will_keeps_its_retain_flag_and_properties(self):
        topic = unique_id("rwill") + "/status"
        port = self.nodes[0].mqtt_port
        c = v5_client(port, unique_id("rw"), will=(topic, b"offline", 1, True),
                      will_props={"ContentType": "text/plain", "UserProperty": [("why", "crash")],
                                  "MessageExpiryInterval": 300})
        self.addCleanup(c.loop_stop)
        time.sleep(0.5)
        self.kill_node(0)
        time.sleep(NODE_TIMEOUT + 3)
        # Retained by the claimer, in the cluster: a new subscriber on either survivor has it.
        for node in (1, 2):
            sub = v5_client(self.nodes[node].mqtt_port, unique_id("rs"))
            self.addCleanup(sub.loop_stop)
            self.addCleanup(sub.disconnect)
            sub.subscribe(topic, 1)
            wait_for(lambda: sub.got, timeout=5, what="the retained will on node %d" % node)
            time.sleep(SETTLE)
            self.assertEqual(len(sub.got), 1)
            m = sub.got[0]
            self.assertEqual((m.topic, m.payload, m.qos, m.retain), (topic, b"offline", 1, True))
            self.assertEqual(m.properties.ContentType, "text/plain")
            self.assertEqual(m.properties.UserProperty, [("why", "crash")])
            self.assertTrue(280 <= m.properties.MessageExpiryInterval <= 300)
        self.start_node(0)
        self.client(1).publish(topic, b"", 1, retain=True)

if __name__ == "__main__":
    main()
