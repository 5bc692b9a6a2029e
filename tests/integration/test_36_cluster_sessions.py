#!/usr/bin/python3
"""Clusters: sessions follow their client across nodes (three midge nodes
over three clustered nats-servers with JetStream, real paho-mqtt clients).

Covered: a duplicate client id on another node takes over the connection
(MQTT 3.1.1: the old connection closes, its will goes out as in a local
takeover; MQTT 5: the old client gets DISCONNECT 0x8E) and the new client
works; a persistent session (3.1.1 clean_session=0, MQTT 5 session expiry)
moves to the node the client reconnects to, with its subscriptions
(session present 1, messages published afterwards arrive without a new
SUBSCRIBE), after a disconnect or while still connected on the first node;
QoS 1 messages queued on the first node while the client was away arrive on
the second, in order, none lost, none twice; a clean session on the second
node discards the first node's session; a non-persistent client that moves
gets session present 0; messages in flight and incoming QoS 2 ids move too;
the old connection's will stays quiet when its session continues on the new
node and goes out when the new node starts clean;
kill -9 of the node holding a persistent session: the client reconnecting
elsewhere gets its subscriptions back from the registry; every nats-server
down: CONNECT still works, locally and without waiting for NATS. With
persistence on, a moved session (subscription, queue) is in the new node's
store across its restart and gone from the old node's.

Run alone: /usr/bin/python3 tests/integration/test_36_cluster_sessions.py
"""

import os
import sys
import threading
import time
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clustertest  # noqa: E402
from clustertest import ClusterCase, SETTLE  # noqa: E402
from midgetest import (DISCONNECT, PUBCOMP, PUBREC, connected_client, main,  # noqa: E402
                       parse_publish5, parse_v5, publish, puback, pubrel, subscribe, unique_id,
                       wait_for)

TIMEOUT = 10
SESSION_EXPIRY = 0x11
RC_SESSION_TAKEN_OVER = 0x8E


class V5Client:
    """An MQTT 5 paho client with a session expiry and clean start of our
    choice, which records the reason code of a server DISCONNECT."""

    def __init__(self, port, client_id, clean_start=True, expiry=None, will=None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        self.mqtt = mqtt
        self.client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5,
                                  reconnect_on_failure=False)
        self.messages, self.suback = [], {}
        self.connack = None
        self.disconnect_reason = None
        self._cond = threading.Condition()
        self.connected, self.disconnected = threading.Event(), threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        if will:
            self.client.will_set(*will)
        props = None
        if expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = expiry
        self.client.connect("127.0.0.1", port, 60, clean_start=clean_start, properties=props)
        self.client.loop_start()
        if not self.connected.wait(TIMEOUT):
            self.client.loop_stop()
            raise AssertionError("MQTT 5 client %r: no CONNACK" % client_id)

    def _on_connect(self, client, userdata, flags, rc, props=None):
        self.connack = (flags, rc)
        self.connected.set()

    def _on_disconnect(self, client, userdata, rc, props=None):
        self.disconnect_reason = getattr(rc, "value", rc)
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, props=None):
        with self._cond:
            self.suback[mid] = granted
            self._cond.notify_all()

    @property
    def session_present(self):
        return bool(self.connack[0].get("session present"))

    def subscribe(self, topic, qos):
        rc, mid = self.client.subscribe(topic, qos)
        assert rc == self.mqtt.MQTT_ERR_SUCCESS
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self.suback, TIMEOUT), "no SUBACK"

    def publish(self, topic, payload, qos):
        info = self.client.publish(topic, payload, qos)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def disconnect(self):
        self.client.disconnect()
        self.disconnected.wait(TIMEOUT)
        self.client.loop_stop()

    def close(self):
        try:
            self.client.disconnect()
        except Exception:
            pass
        self.client.loop_stop()


class ClusterSessions(ClusterCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            for b in cls.nodes:  # until then CONNECTs are decided locally
                b.wait_log(r"Cluster: session registry ready", timeout=30)
        except BaseException:
            cls.tearDownClass()
            raise

    def v5(self, node, client_id, **kw):
        c = V5Client(self.nodes[node].mqtt_port, client_id, **kw)
        self.addCleanup(c.close)
        return c

    def queued_on(self, node):
        return self.metric(node, "midge_queued_messages")

    def wait_registered(self, node, client_id):
        """Until node's log shows the CONNECT of client_id accepted (its registry entry
        follows at once, on the sessions thread)."""
        self.nodes[node].wait_log(r"New client connected .* as %s " % client_id, timeout=TIMEOUT)
        time.sleep(0.3)

    # Takeover of a live connection -------------------------------------------
    def test_01_duplicate_id_on_another_node_v311(self):
        cid = unique_id("dup")
        will_topic = unique_id("will") + "/gone"
        watcher = self.client(2)
        watcher.subscribe(will_topic, 1)
        self.settle(0, [watcher])
        old = self.client(0, client_id=cid, will=(will_topic, b"old went", 1, False))
        self.wait_registered(0, cid)
        new = self.client(1, client_id=cid)
        self.assertTrue(old.disconnected.wait(TIMEOUT), "the old connection was not closed")
        self.assertFalse(new.session_present)
        # A clean session does not live on: the old will goes out, as locally.
        watcher.wait_for(lambda ms: any(m[0] == will_topic for m in ms), what="the old will")
        self.nodes[0].wait_log(r"Client %s connected to another node, closing old connection"
                               % cid, timeout=TIMEOUT)
        # The new connection works.
        topic = unique_id("after") + "/t"
        new.subscribe(topic, 1)
        new.publish(topic, b"works", 1)
        new.wait_for(lambda ms: (topic, b"works", 1, False) in ms, what="its own message")
        self.assertFalse(new.disconnected.is_set())

    def test_02_duplicate_id_on_another_node_v5_reason_0x8e(self):
        cid = unique_id("dup5")
        # paho 1.6 drops the reason of a DISCONNECT without properties: the old
        # connection is read byte by byte, the new one is paho's.
        old = connected_client(self.nodes[0].mqtt_port, client_id=cid, proto=5)
        self.addCleanup(old.close)
        self.wait_registered(0, cid)
        new = self.v5(2, cid)
        got = parse_v5(old.read_packet(timeout=TIMEOUT))
        self.assertEqual((got.type, got.reason), (DISCONNECT, RC_SESSION_TAKEN_OVER))
        old.expect_closed()
        self.assertFalse(new.session_present)
        topic = unique_id("v5") + "/t"
        new.subscribe(topic, 1)
        new.publish(topic, b"v5 works", 1)
        with new._cond:
            self.assertTrue(new._cond.wait_for(
                lambda: any(m[1] == b"v5 works" for m in new.messages), TIMEOUT))
        self.assertFalse(new.disconnected.is_set())
        # A paho MQTT 5 client taken over in turn, from a third node, is closed too.
        third = self.v5(1, cid)
        self.assertTrue(new.disconnected.wait(TIMEOUT), "the second connection was not closed")
        self.assertFalse(third.disconnected.is_set())

    # Persistent sessions move --------------------------------------------------
    def test_03_persistent_session_moves_with_subscriptions(self):
        cid = unique_id("move")
        base = unique_id("mv") + "/"
        a = self.client(0, client_id=cid, clean_session=False)
        a.subscribe(base + "#", 1)
        a.disconnect()
        b = self.client(1, client_id=cid, clean_session=False)
        self.assertTrue(b.session_present)
        self.nodes[1].wait_log(r"took over the session of client %s \(1 subscriptions"
                               % cid, timeout=TIMEOUT)
        # No SUBSCRIBE on node B: the moved subscription routes there.
        self.settle(2, [b])
        pub = self.client(2)
        pub.publish(base + "x", b"after the move", 1)
        self.expect_exactly(b, base, [(base + "x", b"after the move", 1, False)])
        # Node A let go: a publish there reaches B once, not an old copy on A.
        self.client(0).publish(base + "y", b"from A", 1)
        self.expect_exactly(b, base, [(base + "x", b"after the move", 1, False),
                                      (base + "y", b"from A", 1, False)])

    def test_04_queued_qos1_arrive_on_the_new_node_in_order(self):
        cid = unique_id("queue")
        base = unique_id("q") + "/"
        a = self.client(0, client_id=cid, clean_session=False)
        a.subscribe(base + "t", 1)
        self.settle(2, [a])
        a.disconnect()
        before = self.queued_on(0)
        pub = self.client(2)
        n = 50
        for i in range(n):
            pub.publish(base + "t", b"m%03d" % i, 1)
        wait_for(lambda: self.queued_on(0) >= before + n, timeout=TIMEOUT,
                 what="node A to queue the messages")
        b = self.client(1, client_id=cid, clean_session=False)
        self.assertTrue(b.session_present)
        want = [(base + "t", b"m%03d" % i, 1, False) for i in range(n)]
        self.expect_exactly(b, base, want)
        # And the session goes on receiving on node B.
        pub.publish(base + "t", b"later", 1)
        self.expect_exactly(b, base, want + [(base + "t", b"later", 1, False)])

    def test_05_takeover_while_connected_moves_the_session(self):
        cid = unique_id("live")
        base = unique_id("lv") + "/"
        a = self.client(0, client_id=cid, clean_session=False)
        a.subscribe(base + "#", 1)
        self.wait_registered(0, cid)
        b = self.client(2, client_id=cid, clean_session=False)
        self.assertTrue(a.disconnected.wait(TIMEOUT), "the old connection was not closed")
        self.assertTrue(b.session_present)
        self.settle(1, [b])
        self.client(1).publish(base + "z", b"to the new node", 1)
        self.expect_exactly(b, base, [(base + "z", b"to the new node", 1, False)])

    def test_06_mqtt5_session_expiry_moves(self):
        cid = unique_id("exp5")
        base = unique_id("e5") + "/"
        a = self.v5(1, cid, clean_start=True, expiry=300)
        a.subscribe(base + "+", 1)
        a.disconnect()
        pub = self.client(0)
        pub.publish(base + "q", b"while away", 1)
        wait_for(lambda: self.queued_on(1) >= 1, timeout=TIMEOUT, what="node B to queue it")
        b = self.v5(0, cid, clean_start=False, expiry=300)
        self.assertTrue(b.session_present)
        with b._cond:
            self.assertTrue(b._cond.wait_for(
                lambda: (base + "q", b"while away", 1, False) in b.messages, TIMEOUT))

    def test_07_clean_session_on_another_node_discards(self):
        cid = unique_id("clean")
        base = unique_id("cl") + "/"
        a = self.client(0, client_id=cid, clean_session=False)
        a.subscribe(base + "#", 1)
        a.disconnect()
        b = self.client(1, client_id=cid, clean_session=True)
        self.assertFalse(b.session_present)
        # No subscription came with it.
        self.client(2).publish(base + "x", b"nobody", 1)
        time.sleep(SETTLE)
        self.assertEqual(self.got(b, base), [])
        b.disconnect()
        # Node A dropped its copy: nothing to resume there either.
        again = self.client(0, client_id=cid, clean_session=False)
        self.assertFalse(again.session_present)

    def test_08_non_persistent_client_moving_gets_no_session(self):
        cid = unique_id("np")
        a = self.client(0, client_id=cid, clean_session=True)
        a.subscribe(unique_id("np") + "/#", 1)
        a.disconnect()
        b = self.client(2, client_id=cid, clean_session=False)
        self.assertFalse(b.session_present)

    def test_09_in_flight_and_incoming_qos2_state_move(self):
        """A QoS 1 message sent but not acknowledged on node A is sent again,
        with DUP, on node B; a QoS 2 PUBLISH node A acknowledged with PUBREC is
        completed on node B (MQTT 5: PUBCOMP without "packet id not found")."""
        cid = unique_id("infl")
        topic = unique_id("if") + "/t"
        expiry = bytes([SESSION_EXPIRY]) + (300).to_bytes(4, "big")
        a = connected_client(self.nodes[0].mqtt_port, client_id=cid, proto=5, clean=True,
                             props=expiry)
        self.addCleanup(a.close)
        a.send(subscribe(1, [(topic, 1)], proto=5))
        a.read_packet(timeout=TIMEOUT)  # SUBACK
        self.client(0).publish(topic, b"unacked", 1)
        first = parse_publish5(a.read_packet(timeout=TIMEOUT))
        self.assertEqual((first.topic, first.payload, first.qos), (topic, b"unacked", 1))
        a.send(publish(unique_id("in") + "/q2", b"exactly once", qos=2, mid=7, proto=5))
        got = parse_v5(a.read_packet(timeout=TIMEOUT))
        self.assertEqual((got.type, got.rest), (PUBREC, 7))
        a.close()  # no PUBACK, no PUBREL
        self.nodes[0].wait_log(r"Client %s closed its connection" % cid, timeout=TIMEOUT)
        b = connected_client(self.nodes[1].mqtt_port, client_id=cid, proto=5, clean=False,
                             props=expiry, session_present=True)
        self.addCleanup(b.close)
        pkt = b.read_packet(timeout=TIMEOUT)
        again = parse_publish5(pkt)
        self.assertEqual((again.topic, again.payload, again.qos, again.mid),
                         (topic, b"unacked", 1, first.mid))
        self.assertTrue(pkt[0] & 0x08, "re-sent without DUP")
        b.send(puback(first.mid, proto=5))
        b.send(pubrel(7, proto=5))
        got = parse_v5(b.read_packet(timeout=TIMEOUT))
        self.assertEqual((got.type, got.rest, got.reason), (PUBCOMP, 7, 0))

    def test_10_will_stays_quiet_when_the_session_continues(self):
        """As a local takeover: a persistent session taken over without a clean
        start lives on, so the old connection's will does not go out; taken
        over with a clean start, it does."""
        will_topic = unique_id("will") + "/w"
        watcher = self.client(2)
        watcher.subscribe(will_topic, 1)
        self.settle(0, [watcher])
        cid = unique_id("willp")
        old = self.client(0, client_id=cid, clean_session=False,
                          will=(will_topic, b"continues", 1, False))
        self.wait_registered(0, cid)
        new = self.client(1, client_id=cid, clean_session=False)
        self.assertTrue(old.disconnected.wait(TIMEOUT))
        self.assertTrue(new.session_present)
        time.sleep(SETTLE)
        self.assertEqual(self.got(watcher, will_topic), [])
        # The same with a clean start on a third node: the will of the second goes.
        new.close()
        cid2 = unique_id("willc")
        second = self.client(1, client_id=cid2, clean_session=False,
                             will=(will_topic, b"ends", 1, False))
        self.wait_registered(1, cid2)
        self.client(2, client_id=cid2, clean_session=True)
        self.assertTrue(second.disconnected.wait(TIMEOUT))
        watcher.wait_for(lambda ms: any(m[1] == b"ends" for m in ms), what="the will")
        self.assertEqual([m[1] for m in self.got(watcher, will_topic)], [b"ends"])

    # The owner dies ------------------------------------------------------------
    def test_80_owner_killed_session_rebuilt_from_registry(self):
        """kill -9 of the node holding a persistent session: the client
        reconnecting elsewhere gets its subscriptions back from the registry
        (session present 1); the dead node's messages come from the stream
        (test_38_cluster_failover)."""
        cid = unique_id("dead")
        base = unique_id("dd") + "/"
        a = self.client(0, client_id=cid, clean_session=False)
        a.subscribe(base + "#", 1)
        a.subscribe(base + "other", 0)
        a.client.unsubscribe(base + "other")
        time.sleep(1.0)  # the registry learns subscriptions asynchronously
        self.kill_node(0)
        try:
            started = time.monotonic()
            b = self.client(1, client_id=cid, clean_session=False)
            self.assertLess(time.monotonic() - started, 1.5, "CONNECT waited for the dead node")
            self.assertTrue(b.session_present)
            self.nodes[1].wait_log(r"held client %s, is gone: its session is rebuilt here from "
                                   r"the registry \(1 subscriptions, the stream's messages replayed\)" % cid, timeout=TIMEOUT)
            self.settle(2, [b])
            self.client(2).publish(base + "x", b"after the crash", 1)
            self.expect_exactly(b, base, [(base + "x", b"after the crash", 1, False)])
        finally:
            self.start_node(0)
            self.nodes[0].wait_log(r"Cluster: session registry ready", timeout=30)

    # Without NATS -------------------------------------------------------------
    def test_91_nats_down_connect_stays_local(self):
        for n in self.nats:
            n.kill()
        try:
            # Not the first "lost NATS": a node may reconnect to a server killed after it.
            for i in range(3):
                wait_for(lambda: self.metric(i, "midge_cluster_connected") == 0,
                         timeout=TIMEOUT, what="node %d to lose NATS" % i)
            cid = unique_id("local")
            started = time.monotonic()
            first = self.client(0, client_id=cid)
            self.assertLess(time.monotonic() - started, 1.5, "CONNECT waited for NATS:\n" +
                            "\n".join(self.nodes[0].log_lines[-15:]))
            # A local duplicate is still taken over.
            second = self.client(0, client_id=cid)
            self.assertTrue(first.disconnected.wait(TIMEOUT))
            self.assertFalse(second.disconnected.is_set())
            self.nodes[0].wait_log(r"not connected; client %s is taken over on this node only"
                                   % cid, timeout=TIMEOUT)
        finally:
            for n in self.nats:
                n.start()
        self.wait_nats_cluster()
        for b in self.nodes:
            b.wait_log(r"connected to NATS at .*\n?", timeout=20)


class ClusterSessionsPersisted(ClusterCase):
    """The same nodes with persistence on: a moved session is stored where it
    arrives and forgotten where it left."""

    @classmethod
    def start_node(cls, i, wait=True):
        store = os.path.join(cls.tmpdir, "store-%d" % i)
        os.makedirs(store, exist_ok=True)

        def persistent_config(*args):
            return clustertest_node_config(*args).replace(
                "persistence: false", "persistence: true\npersistence_location: %s/" % store)
        with mock.patch.object(clustertest, "node_config", persistent_config):
            b = super().start_node(i, wait)
        b.wait_log(r"Cluster: session registry ready", timeout=30)
        return b

    def test_moved_session_is_stored_on_the_new_node(self):
        cid = unique_id("stored")
        base = unique_id("st") + "/"
        a = self.client(0, client_id=cid, clean_session=False)
        a.subscribe(base + "#", 1)
        self.settle(2, [a])
        a.disconnect()
        before = self.metric(0, "midge_queued_messages")
        pub = self.client(2)
        pub.publish(base + "t", b"queued on A", 1)
        wait_for(lambda: self.metric(0, "midge_queued_messages") > before, timeout=TIMEOUT,
                 what="node A to queue it")
        b = self.client(1, client_id=cid, clean_session=False)
        self.assertTrue(b.session_present)
        self.expect_exactly(b, base, [(base + "t", b"queued on A", 1, False)])
        b.disconnect()
        pub.publish(base + "t", b"queued on B", 1)
        time.sleep(SETTLE)
        # Node B restarts from its store: the moved session, its subscription and queue.
        self.nodes[1].stop()
        self.start_node(1)
        self.nodes[1].wait_log(r"Restored \d+ retained messages and 1 sessions \(1 subscriptions, "
                               r"0 messages in flight, 1 queued\)", timeout=TIMEOUT)
        again = self.client(1, client_id=cid, clean_session=False)
        self.assertTrue(again.session_present)
        self.expect_exactly(again, base, [(base + "t", b"queued on B", 1, False)])
        # Node A forgot it: nothing comes back from its store.
        self.nodes[0].stop()
        self.start_node(0)
        self.nodes[0].wait_log(r"Restored \d+ retained messages and 0 sessions", timeout=TIMEOUT)


clustertest_node_config = clustertest.node_config

if __name__ == "__main__":
    main()
