#!/usr/bin/python3
"""Clusters: QoS 1/2 end to end. A node acknowledges a QoS 1/2 PUBLISH
(PUBACK, PUBREC) only once the message is in the JetStream stream midge_msgs
(subjects midge.q.>), so an acknowledged message survives the node.

Covered: QoS 1 and QoS 2 streams from node A reach subscribers on B and C
exactly, in order; every acknowledged message is in the stream when its
PUBACK / PUBREC arrives (asked of JetStream's API right after each one), with
the message id <instance>-<sequence>; kill -9 of the node a publisher streams
QoS 1 messages to: every message it acknowledged reaches a subscriber on
another node and is in the stream; kill -9 of the nats-server that node uses
during such a stream: nothing acknowledged is lost (delivered and in the
stream); two nats-servers of three down (the stream has
no quorum): a QoS 1 PUBLISH gets no PUBACK and its connection closes, while
QoS 0 still flows locally, and after recovery QoS 1 is acknowledged again;
every nats-server down: a QoS 1 PUBACK waits while the node may only be
moving to another server, and once the outage has lasted 5 s it goes out and
later QoS 1 messages are delivered locally and acknowledged at once.

Skipped when nats-server is missing or midge was built without NATS.
Run alone: /usr/bin/python3 tests/integration/test_34_cluster_qos.py
"""

import base64
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clustertest import ClusterCase, http_get  # noqa: E402
from midgetest import main, unique_id, wait_for  # noqa: E402
from natsreq import NatsError, js_api  # noqa: E402

STREAM = "midge_msgs"


def subject_of(topic):
    """The NATS subject of a plain topic (letters, digits and '/' only)."""
    return "midge.q." + topic.replace("/", ".")


class StreamingPublisher:
    """A paho client on node port publishing n QoS 1 messages ("0", "1", ...,
    padded with '.' to size bytes) to topic, at most `inflight` unacknowledged
    at a time, recording which got their PUBACK. It never reconnects."""

    def __init__(self, port, topic, n, inflight=50, size=0):
        import paho.mqtt.client as mqtt
        self.topic, self.n, self.size = topic, n, size
        self.mids = {}          # mid -> payload
        self.acked_mids = set()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client = mqtt.Client(client_id=unique_id("stream"), protocol=mqtt.MQTTv311,
                                  reconnect_on_failure=False)
        self.client.max_inflight_messages_set(inflight)
        self.client.on_connect = lambda c, u, f, rc: self.connected.set()
        self.client.on_disconnect = lambda c, u, rc: self.disconnected.set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port, 60)
        self.client.loop_start()
        if not self.connected.wait(5):
            raise AssertionError("the streaming publisher did not connect")

    # No lock of ours around paho's calls: paho holds its own while it calls
    # on_publish, and publish() takes it (set.add and dict stores are atomic).
    def _on_publish(self, client, userdata, mid):
        self.acked_mids.add(mid)

    def payload(self, i):
        p = b"%d" % i
        return p + b"." * (self.size - len(p))

    def start(self):
        for i in range(self.n):
            info = self.client.publish(self.topic, self.payload(i), 1)
            self.mids[info.mid] = self.payload(i)

    def acked(self):
        mids = dict(self.mids)
        return {mids[m] for m in list(self.acked_mids) if m in mids}

    def close(self):
        self.client.loop_stop()
        try:
            self.client.disconnect()
        except Exception:
            pass


class ClusterQos(ClusterCase):
    # Thousands of messages reach one Python subscriber: under a loaded CI machine it
    # can fall behind by more than the default 1,000 queued messages, which a node then
    # drops by design. These tests are about what the cluster loses, so no limit.
    NODE_EXTRA = "max_queued_messages: 0\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.wait_qos_ready()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def wait_qos_ready(cls):
        for b in cls.nodes:
            b.wait_log(r"QoS 1/2 message stream ready", timeout=30)
        cls.wait_stream_leader()

    def streaming(self, node, topic, n, inflight=50, size=0):
        p = StreamingPublisher(self.nodes[node].mqtt_port, topic, n, inflight, size)
        self.addCleanup(p.close)
        return p

    def stored(self, topic):
        """How many messages the stream keeps on topic's subject (one per message id)."""
        subject = subject_of(topic)
        info = None
        for n in self.nats:
            if n.alive():
                try:
                    info = js_api(n.port, "STREAM.INFO." + STREAM, {"subjects_filter": subject})
                    break
                except (NatsError, OSError):
                    continue
        self.assertIsNotNone(info, "no nats-server answered STREAM.INFO")
        return ((info.get("state") or {}).get("subjects") or {}).get(subject, 0)

    # Delivery -----------------------------------------------------------------
    def test_01_qos1_and_qos2_streams_reach_other_nodes_in_order(self):
        base = unique_id("qs") + "/"
        b = self.client(1)
        b.subscribe(base + "#", 2)
        c = self.client(2)
        c.subscribe(base + "#", 2)
        self.settle(0, [b, c])
        confirmed = self.metric(0, "midge_cluster_messages_confirmed_total")
        pub = self.client(0)
        for qos in (1, 2):
            infos = [pub.publish(base + "s%d" % qos, b"%d" % i, qos, wait=False)
                     for i in range(300)]
            for info in infos:
                info.wait_for_publish(30)
                self.assertTrue(info.is_published())
        want = [(base + "s%d" % q, b"%d" % i, q, False) for q in (1, 2) for i in range(300)]
        for sub in (b, c):
            self.expect_exactly(sub, base, want, timeout=30)
        self.assertGreaterEqual(self.metric(0, "midge_cluster_messages_confirmed_total"),
                                confirmed + 600)

    def test_02_acknowledged_means_in_the_stream(self):
        topic = unique_id("ack") + "/t"
        pub = self.client(0)
        for i in range(20):
            qos = 1 + i % 2
            # PahoClient.publish returns after PUBACK (QoS 1) or PUBCOMP, which follows PUBREC.
            pub.publish(topic, b"payload-%d" % i, qos)
            got = js_api(self.nats[0].port, "STREAM.MSG.GET." + STREAM,
                         {"last_by_subj": subject_of(topic)})
            self.assertIn("message", got, got)
            data = base64.b64decode(got["message"]["data"])
            self.assertTrue(data.endswith(b"payload-%d" % i), data)
            headers = base64.b64decode(got["message"].get("hdrs", "")).decode()
            self.assertRegex(headers, r"Nats-Msg-Id: [0-9a-f]{16}-\d+")
        # The stream's settings (as the setup job makes them).
        cfg = self.stream_info()["config"]
        self.assertEqual(cfg["subjects"], ["midge.q.>"])
        self.assertEqual((cfg["storage"], cfg["retention"], cfg["discard"], cfg["num_replicas"]),
                         ("file", "limits", "old", 3))
        self.assertEqual(cfg["max_age"], 3600 * 10**9)
        self.assertEqual(cfg["duplicate_window"], 120 * 10**9)
        # $SYS counts them too.
        sub = self.client(0)
        sub.subscribe("$SYS/broker/cluster/messages/confirmed", 0)
        msgs = sub.wait_for(lambda ms: any(m[0].endswith("/confirmed") for m in ms))
        self.assertGreaterEqual(int([m for m in msgs if m[0].endswith("/confirmed")][-1][1]), 20)

    def test_03_qos0_is_not_kept(self):
        topic = unique_id("q0") + "/t"
        self.client(0).publish(topic, b"zero", 0)
        self.client(0).publish(topic + "x", b"one", 1)  # after it, on the same node
        with self.assertRaises(NatsError):
            got = js_api(self.nats[0].port, "STREAM.MSG.GET." + STREAM,
                         {"last_by_subj": subject_of(topic)})
            if "error" in got:
                raise NatsError(got["error"].get("description", "error"))

    # Failures -----------------------------------------------------------------
    def test_91_kill_the_node_a_publisher_streams_to(self):
        topic = unique_id("kn") + "/t"
        sub = self.client(1)
        sub.subscribe(topic, 1)
        self.settle(0, [sub])
        pub = self.streaming(0, topic, 20000)
        pub.start()
        wait_for(lambda: len(pub.acked()) >= 300, timeout=20, what="300 PUBACKs")
        self.kill_node(0)
        try:
            pub.disconnected.wait(5)
            acked = pub.acked()
            self.assertGreaterEqual(len(acked), 300)
            wait_for(lambda: acked <= {m[1] for m in sub.messages}, timeout=15,
                     what="every acknowledged message on node B")
            # And kept in the stream for whoever replays node A's messages.
            self.assertGreaterEqual(self.stored(topic), len(acked))
        finally:
            self.start_node(0)
            self.nodes[0].wait_log(r"QoS 1/2 message stream ready", timeout=30)

    def test_92_kill_the_nats_server_during_a_qos1_stream(self):
        used = [n for n in self.nats if NODE(0) in n.client_names()]
        self.assertEqual(len(used), 1, "node-a is connected to one nats-server")
        others = [i for i in (1, 2) if NODE(i) not in used[0].client_names()]
        if not others:
            # Node B moved to A's nats-server in an earlier failover: back to its own.
            self.kill_node(1)
            self.start_node(1)
            others = [1]
        topic = unique_id("kns") + "/t"
        sub = self.client(others[0])
        sub.subscribe(topic, 1)
        self.settle(0, [sub])
        # Many bytes in flight when the server dies: without the hold, the ones
        # already acknowledged die with it.
        pub = self.streaming(0, topic, 10000, inflight=200, size=1000)
        pub.start()
        wait_for(lambda: len(pub.acked()) >= 300, timeout=20, what="300 PUBACKs")
        used[0].kill()
        try:
            # Until every message is acknowledged or the connection closed (a message
            # JetStream did not confirm in time closes it, unacknowledged).
            wait_for(lambda: len(pub.acked()) == 10000 or pub.disconnected.is_set(), timeout=90,
                     what="the stream to end")
            acked = pub.acked()
            wait_for(lambda: acked <= {m[1] for m in sub.messages}, timeout=20,
                     what="every acknowledged message on node %d" % others[0])
            self.assertGreaterEqual(self.stored(topic), len(acked))
        finally:
            used[0].start()
            self.wait_nats_cluster()
            self.wait_stream_leader()

    def test_93_no_quorum_no_puback_but_local_qos0(self):
        used = [n for n in self.nats if NODE(0) in n.client_names()]
        self.assertEqual(len(used), 1)
        victims = [n for n in self.nats if n is not used[0]]
        unconfirmed = self.metric(0, "midge_cluster_messages_unconfirmed_total")
        for n in victims:
            n.kill()
        try:
            topic = unique_id("nq") + "/t"
            local = self.client(0)
            local.subscribe(topic, 1)
            pub = self.client(0)
            info = pub.publish(topic, b"held", 1, wait=False)
            # QoS 0 still flows on the node meanwhile.
            self.client(0).publish(topic, b"zero", 0)
            wait_for(lambda: any(m[1] == b"zero" for m in local.messages), timeout=5,
                     what="the QoS 0 message locally")
            time.sleep(3)
            self.assertFalse(info.is_published(), "PUBACK without JetStream")
            # No confirmation within its bound: the connection closes without PUBACK.
            self.assertTrue(pub.disconnected.wait(25), "the publisher was not disconnected")
            self.assertFalse(info.is_published())
            wait_for(lambda: self.metric(0, "midge_cluster_messages_unconfirmed_total")
                     > unconfirmed, timeout=5, what="the unconfirmed counter")
            self.nodes[0].wait_log(r"not confirmed by JetStream", timeout=5)
        finally:
            for n in victims:
                n.start()
            self.wait_nats_cluster()
            self.wait_stream_leader()
        # Back: acknowledged again.
        self.client(0).publish(unique_id("nq") + "/t", b"again", 1)

    def test_94_nats_lost_acknowledgements_wait_then_outage_acknowledges(self):
        # Every nats-server gone: for the first seconds a node may only be moving
        # to another server, so a QoS 1 PUBACK waits for JetStream (published the
        # plain way, it could reach no stream and still be acknowledged); an
        # outage that lasts 5 s is served locally: what waited is acknowledged
        # then, and later messages at once.
        topic = unique_id("out") + "/t"
        local = self.client(0)
        local.subscribe(topic, 1)
        early = self.client(0)
        for n in self.nats:
            n.kill()
        try:
            wait_for(lambda: self.metric(0, "midge_cluster_connected") == 0, timeout=10,
                     what="node-a to see NATS gone")
            held = early.publish(topic, b"early", 1, wait=False)
            wait_for(lambda: any(m[1] == b"early" for m in local.messages), timeout=5,
                     what="the early message delivered locally")
            time.sleep(1)
            self.assertFalse(held.is_published(), "PUBACK while NATS was only just lost")
            wait_for(held.is_published, timeout=10, what="the early PUBACK once the outage lasted")
            self.nodes[0].wait_log(r"NATS unreachable for 5 s: 1 QoS 1/2 messages acknowledged",
                                   timeout=5)
            late = self.client(0)
            late.publish(topic, b"late", 1)  # returns once PUBACKed
            wait_for(lambda: any(m[1] == b"late" for m in local.messages), timeout=5,
                     what="the late message delivered locally")
            self.assertFalse(early.disconnected.is_set(), "the early publisher was disconnected")
        finally:
            for n in self.nats:
                n.start()
            self.wait_nats_cluster()
            self.wait_stream_leader()
        self.nodes[0].wait_log(r"connected to NATS at", timeout=10)
        self.client(0).publish(unique_id("out") + "/t", b"again", 1)


def NODE(i):
    return ("node-a", "node-b", "node-c")[i]


if __name__ == "__main__":
    main()
