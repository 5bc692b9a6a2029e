#!/usr/bin/python3
"""Clusters: no acknowledged QoS 1/2 message is lost when the node holding a
persistent session is killed (three midge nodes over three clustered
nats-servers with JetStream, real paho-mqtt clients).

A persistent subscriber on node A, a publisher on node C sending a numbered
QoS 1 (or 2) stream, kill -9 of node A mid-stream (or while the subscriber
is away, its messages queued on A): the subscriber reconnecting to node B
with the same id gets every message the publisher had acknowledged (what it
got before the kill and after, together; duplicates allowed and counted),
the ones published while nobody held the session included. The new node
replays them from the stream <js_name>_msgs, from the session's watermark in
the registry. MQTT 3.1.1 and MQTT 5 (session expiry), QoS 1 and QoS 2. Messages acknowledged
long before the kill are not replayed. A live hand-over mid-stream loses
nothing either (the window between the old node letting go and the new
node's interest is replayed).
Simultaneous CONNECTs of one client id on two nodes: exactly one stays
(the registry write is a compare-and-set).

Run alone: /usr/bin/python3 tests/integration/test_38_cluster_failover.py
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clustertest import ClusterCase  # noqa: E402
from midgetest import main, unique_id, wait_for  # noqa: E402
from test_36_cluster_sessions import V5Client  # noqa: E402

TIMEOUT = 15


class Publisher(threading.Thread):
    """Sends payloads 0..n-1 at QoS qos on topic every `gap` seconds; acked():
    the numbers whose PUBACK/PUBCOMP came."""

    def __init__(self, client, topic, n, qos, gap=0.01):
        super().__init__(daemon=True)
        self.client, self.topic, self.n, self.qos, self.gap = client, topic, n, qos, gap
        self.infos = []
        self.sent = threading.Event()

    def run(self):
        for i in range(self.n):
            self.infos.append((i, self.client.client.publish(self.topic, b"%d" % i, self.qos)))
            if i == self.n // 4:
                self.sent.set()
            time.sleep(self.gap)
        self.sent.set()

    def acked(self):
        return {i for i, info in self.infos if info.is_published()}


class ClusterFailover(ClusterCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            for b in cls.nodes:
                b.wait_log(r"Cluster: session registry ready", timeout=30)
            cls.wait_stream_leader()
        except BaseException:
            cls.tearDownClass()
            raise

    def restart_a(self):
        self.start_node(0)
        self.nodes[0].wait_log(r"Cluster: session registry ready", timeout=30)

    def v5(self, node, client_id, **kw):
        c = V5Client(self.nodes[node].mqtt_port, client_id, **kw)
        self.addCleanup(c.close)
        return c

    @staticmethod
    def numbers(msgs, topic):
        return [int(m[1]) for m in list(msgs) if m[0] == topic]

    def check_all_acked_arrive(self, before, after_client, topic, pub):
        pub.join(TIMEOUT * 2)
        acked = pub.acked()
        wait_for(lambda: acked <= set(before) | set(self.numbers(after_client.messages, topic)),
                 timeout=TIMEOUT, what="every acknowledged message")
        time.sleep(0.5)
        after = self.numbers(after_client.messages, topic)
        got = before + after
        missing = sorted(acked - set(got))
        self.assertEqual(missing, [], "acknowledged but never delivered")
        dups = len(got) - len(set(got))
        print("\n  %s: %d published, %d acknowledged, %d before the kill, %d after, "
              "%d duplicates" % (self.id().split(".")[-1], pub.n, len(acked), len(before),
                                 len(after), dups), file=sys.stderr)
        return dups

    def kill_mid_stream(self, qos, v5=False):
        cid = unique_id("fo")
        topic = unique_id("fo") + "/n"
        if v5:
            sub = self.v5(0, cid, clean_start=False, expiry=600)
        else:
            sub = self.client(0, client_id=cid, clean_session=False)
        sub.subscribe(topic.split("/")[0] + "/#", qos)
        time.sleep(1.0)  # the registry learns subscriptions asynchronously
        self.settle(2, [sub])
        pub = Publisher(self.client(2, client_id=unique_id("pub")), topic, 300, qos)
        pub.start()
        try:
            self.assertTrue(pub.sent.wait(TIMEOUT))
            self.kill_node(0)
            before = self.numbers(sub.messages, topic)
            sub.close()
            time.sleep(0.5)  # published meanwhile: nobody holds the session
            if v5:
                again = self.v5(1, cid, clean_start=False, expiry=600)
            else:
                again = self.client(1, client_id=cid, clean_session=False)
            self.assertTrue(again.session_present)
            self.nodes[1].wait_log(r"replayed \d+ QoS 1/2 messages from the stream for client %s"
                                   % cid, timeout=TIMEOUT)
            self.check_all_acked_arrive(before, again, topic, pub)
        finally:
            pub.join(TIMEOUT * 2)
            self.restart_a()

    def test_01_qos1_kill_mid_stream_v311(self):
        self.kill_mid_stream(1)

    def test_02_qos1_kill_mid_stream_v5_session_expiry(self):
        self.kill_mid_stream(1, v5=True)

    def test_03_qos2_kill_mid_stream(self):
        self.kill_mid_stream(2)

    def test_04_queued_while_away_then_killed(self):
        """The subscriber left: its messages wait on node A, which dies before
        it comes back. All of them come from the stream on node B."""
        cid = unique_id("away")
        topic = unique_id("aw") + "/n"
        sub = self.client(0, client_id=cid, clean_session=False)
        sub.subscribe(topic, 1)
        self.settle(2, [sub])
        sub.close()
        time.sleep(0.5)
        pub = Publisher(self.client(2, client_id=unique_id("pub")), topic, 50, 1)
        pub.start()
        pub.join(TIMEOUT)
        wait_for(lambda: len(pub.acked()) == 50, timeout=TIMEOUT, what="50 PUBACKs")
        time.sleep(2.5)  # the watermark now stands behind the queued messages
        self.kill_node(0)
        try:
            again = self.client(1, client_id=cid, clean_session=False)
            self.assertTrue(again.session_present)
            dups = self.check_all_acked_arrive([], again, topic, pub)
            self.assertEqual(dups, 0)
        finally:
            self.restart_a()

    def test_06_watermark_moves_no_old_duplicates(self):
        """Messages the client acknowledged more than a few seconds before the
        kill are not replayed: the owner wrote its watermark past them."""
        cid = unique_id("wm")
        topic = unique_id("wm") + "/n"
        sub = self.client(0, client_id=cid, clean_session=False)
        sub.subscribe(topic, 1)
        self.settle(2, [sub])
        pub = self.client(2, client_id=unique_id("pub"))
        for i in range(100):
            pub.publish(topic, b"%d" % i, 1)
        wait_for(lambda: len(self.numbers(sub.messages, topic)) >= 100, timeout=TIMEOUT,
                 what="100 messages on node A")
        time.sleep(6.5)  # the watermark passes them by the replay's margin
        self.kill_node(0)
        try:
            sub.close()
            for i in range(100, 110):
                pub.publish(topic, b"%d" % i, 1)
            again = self.client(1, client_id=cid, clean_session=False)
            wait_for(lambda: set(range(100, 110)) <= set(self.numbers(again.messages, topic)),
                     timeout=TIMEOUT, what="the messages published while away")
            time.sleep(1.0)
            self.assertEqual(sorted(self.numbers(again.messages, topic)), list(range(100, 110)))
        finally:
            self.restart_a()

    def test_07_live_handover_mid_stream_loses_nothing(self):
        """The client moves to node B while node A is alive and a stream is
        published: what the stream took between A letting go and B's interest
        reaching NATS is replayed (the hand-over's window)."""
        cid = unique_id("ho")
        topic = unique_id("ho") + "/n"
        sub = self.client(0, client_id=cid, clean_session=False)
        sub.subscribe(topic, 1)
        self.settle(2, [sub])
        pub = Publisher(self.client(2, client_id=unique_id("pub")), topic, 300, 1, gap=0.005)
        pub.start()
        self.assertTrue(pub.sent.wait(TIMEOUT))
        again = self.client(1, client_id=cid, clean_session=False)
        self.assertTrue(again.session_present)
        self.assertTrue(sub.disconnected.wait(TIMEOUT))
        before = self.numbers(sub.messages, topic)
        self.nodes[1].wait_log(r"replayed \d+ QoS 1/2 messages from the stream for client %s"
                               % cid, timeout=TIMEOUT)
        self.check_all_acked_arrive(before, again, topic, pub)

    def test_05_simultaneous_connects_on_two_nodes_one_stays(self):
        """One client id CONNECTs to node A and node B at the same moment: the
        registry write is a compare-and-set, the loser claims again from the
        winner, and exactly one connection stays (several rounds)."""
        from midgetest import PahoClient
        for persistent in (False, True, False, True):
            cid = unique_id("twin")
            barrier = threading.Barrier(2)
            clients = [None, None]

            def connect(i):
                barrier.wait()
                clients[i] = PahoClient(self.nodes[i].mqtt_port, client_id=cid,
                                        clean_session=not persistent)

            threads = [threading.Thread(target=connect, args=(i,)) for i in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT)
            for c in clients:
                self.assertIsNotNone(c, "a CONNECT got no CONNACK")
                self.addCleanup(c.close)
            wait_for(lambda: sum(c.disconnected.is_set() for c in clients) >= 1,
                     timeout=TIMEOUT, what="one of the two connections to close")
            time.sleep(1.0)
            self.assertEqual(sum(not c.disconnected.is_set() for c in clients), 1)
            for c in clients:
                c.close()


if __name__ == "__main__":
    main()
