#!/usr/bin/python3
"""Clusters: three midge nodes as one broker over three clustered nats-servers,
all on free loopback ports, driven by real paho-mqtt clients.

Covered: a message published on one node reaches subscribers on every node
exactly once (local ones too, overlapping filters included); '+' and '#'
across nodes; topics with '.', '*', '>', '~', blanks and empty levels arrive
unchanged; '$' topics are not matched by '#' or '+' on other nodes but by
their own filters; QoS 1 and 2 streams of 1000 messages across nodes with
nothing lost, nothing duplicated and the publisher's order kept, delivered at
each subscriber's granted QoS; retained messages reach nodes that subscribe
later; MQTT 5 properties (content type, response topic, correlation data,
user properties, payload format, message expiry) arrive on the other node;
an unsubscribe on one node stops delivery there and the NATS interest
follows; kill -9 of the nats-server a node is connected to: messages flow
again after libnats reconnects (bounded wait); every nats-server down: each
node delivers locally, $SYS/broker/cluster/state says disconnected and
/health answers 503 degraded; NATS back: state connected, /health 200 and
cross-node routing resumes; midge_bench --sub-port across two nodes.

Skipped when nats-server is missing or midge was built without NATS
(scripts/test installs both). scripts/cluster-demo starts the same setup by
hand. Run alone: /usr/bin/python3 tests/integration/test_33_cluster.py
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clustertest import ClusterCase, http_get  # noqa: E402
from midgetest import MIDGE_BIN, main, unique_id, wait_for  # noqa: E402


class Cluster(ClusterCase):
    # Routing -----------------------------------------------------------------
    def test_01_every_node_gets_each_message_once(self):
        base = unique_id("fan") + "/"
        subs = [self.client(n) for n in range(3)]
        for c in subs:
            c.subscribe(base + "#", 1)
        # Overlapping filters: another client on B with two, and B's first with a second.
        both = self.client(1)
        both.subscribe(base + "+", 1)
        both.subscribe(base + "x", 1)
        subs[1].subscribe(base + "+", 0)
        self.settle(0, subs + [both])
        pub = self.client(0)
        for i in range(5):
            pub.publish(base + "x", b"m%d" % i, 1)
        want = [(base + "x", b"m%d" % i, 1, False) for i in range(5)]
        for c in subs + [both]:
            self.expect_exactly(c, base, want)
        # Counters: node A sent them, B and C received them.
        self.assertIn("midge_cluster_messages_sent_total", http_get(self.nodes[0].http_port,
                                                                     "/metrics")[1])

    def test_02_wildcards_across_nodes(self):
        base = unique_id("wc")
        plus = self.client(1)
        plus.subscribe(base + "/+/t", 0)
        hash_ = self.client(2)
        hash_.subscribe(base + "/a/#", 0)
        self.settle(0, [plus, hash_])
        pub = self.client(0)
        for t in ("/a/t", "/b/t", "/a", "/a/x/y", "/b/x"):
            pub.publish(base + t, t.encode(), 0)
        self.expect_exactly(plus, base, [(base + "/a/t", b"/a/t", 0, False),
                                         (base + "/b/t", b"/b/t", 0, False)])
        self.expect_exactly(hash_, base, [(base + t, t.encode(), 0, False)
                                          for t in ("/a/t", "/a", "/a/x/y")])

    def test_03_topics_with_characters_nats_treats_specially(self):
        base = unique_id("sp")
        levels = ["a.b", "*", ">", "sp ace", "", "~", "~7E", "tab\there", "a.*.>", "caf\u00e9"]
        topics = [base + "/" + l for l in levels] + [base + "//x/", base + "/x//"]
        exact = self.client(1)
        for t in topics:
            exact.subscribe(t, 1)
        wild = self.client(2)
        wild.subscribe(base + "/#", 1)
        plus = self.client(2)
        plus.subscribe(base + "/+", 1)
        self.settle(0, [exact, wild, plus])
        pub = self.client(0)
        for i, t in enumerate(topics):
            pub.publish(t, b"%d" % i, 1)
        want = [(t, b"%d" % i, 1, False) for i, t in enumerate(topics)]
        self.expect_exactly(exact, base, want)
        self.expect_exactly(wild, base, want)
        self.expect_exactly(plus, base, want[:len(levels)])

    def test_04_dollar_topics(self):
        name = unique_id("d")
        everything = self.client(1)
        everything.subscribe("#", 0)
        plus = self.client(1)
        plus.subscribe("+/" + name, 0)
        own = self.client(2)
        own.subscribe("$" + name + "/#", 0)
        marker = self.client(1)
        marker.subscribe(name + "/#", 0)
        self.settle(0, [everything, plus, own, marker])
        pub = self.client(0)
        pub.publish("$" + name + "/" + name, b"dollar", 0)
        pub.publish("$" + name, b"dollar2", 0)
        pub.publish(name + "/end", b"plain", 0)
        self.expect_exactly(own, "$" + name, [("$" + name + "/" + name, b"dollar", 0, False),
                                              ("$" + name, b"dollar2", 0, False)])
        self.expect_exactly(marker, name, [(name + "/end", b"plain", 0, False)])
        self.assertEqual([m for m in everything.messages if m[0].startswith("$" + name)], [])
        self.assertEqual(self.got(plus, "$"), [])

    def stream(self, qos, granted):
        base = unique_id("q%d" % qos) + "/"
        b = self.client(1)
        b.subscribe(base + "#", granted[0])
        c = self.client(2)
        c.subscribe(base + "#", granted[1])
        local = self.client(0)
        local.subscribe(base + "#", 2)
        self.settle(0, [b, c])
        pub = self.client(0)
        infos = [pub.publish(base + "s", b"%d" % i, qos, wait=False) for i in range(1000)]
        for info in infos:
            info.wait_for_publish(30)
            self.assertTrue(info.is_published())
        for sub, g in ((b, granted[0]), (c, granted[1]), (local, 2)):
            want = [(base + "s", b"%d" % i, min(qos, g), False) for i in range(1000)]
            self.expect_exactly(sub, base, want, timeout=30)

    def test_05_qos1_stream_of_1000(self):
        self.stream(1, (1, 2))

    def test_06_qos2_stream_of_1000(self):
        self.stream(2, (2, 1))

    def test_07_unsubscribe_stops_delivery_on_that_node(self):
        base = unique_id("un") + "/"
        b = self.client(1)
        b.subscribe(base + "t", 1)
        witness = self.client(2)
        witness.subscribe(base + "t", 1)
        self.settle(0, [b, witness])
        pub = self.client(0)
        pub.publish(base + "t", b"1", 1)
        self.expect_exactly(b, base, [(base + "t", b"1", 1, False)])
        interest = self.metric(1, "midge_cluster_interest")
        b.client.unsubscribe(base + "t")
        wait_for(lambda: self.metric(1, "midge_cluster_interest") < interest, timeout=5,
                 what="node B to drop its NATS interest")
        pub.publish(base + "t", b"2", 1)
        self.expect_exactly(witness, base, [(base + "t", b"1", 1, False),
                                            (base + "t", b"2", 1, False)])
        self.assertEqual(self.got(b, base), [(base + "t", b"1", 1, False)])

    def test_08_retained_reach_nodes_that_subscribe_later(self):
        topic = unique_id("ret") + "/r"
        pub = self.client(0)
        pub.publish(topic, b"kept", 1, retain=True)
        c = self.client(2)

        def has_it():
            c.subscribe(topic, 1)
            time.sleep(0.1)
            return any(m[0] == topic and m[3] for m in c.messages)
        # (A subscription made before node C had it gets it live, without the flag.)
        wait_for(has_it, timeout=5, what="the retained message on node C")
        self.assertIn((topic, b"kept", 1, True), c.messages)
        pub.publish(topic, b"", 1, retain=True)  # cleared everywhere

    def test_09_mqtt5_properties_cross_nodes(self):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        topic = unique_id("v5") + "/p"
        got = []
        sub = mqtt.Client(client_id=unique_id("v5s"), protocol=mqtt.MQTTv5)
        sub.on_message = lambda c, u, m: got.append(m)
        sub.connect("127.0.0.1", self.nodes[1].mqtt_port)
        sub.loop_start()
        self.addCleanup(sub.loop_stop)
        self.addCleanup(sub.disconnect)
        probe = self.client(1)
        sub.subscribe(topic, 1)
        time.sleep(0.2)
        self.settle(0, [probe])  # B's interest (sub's filter came first) is in NATS
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "text/plain"
        props.ResponseTopic = "reply/here"
        props.CorrelationData = b"\x00corr"
        props.UserProperty = [("k1", "v1"), ("k2", "v2")]
        props.MessageExpiryInterval = 100
        props.PayloadFormatIndicator = 1
        pub = mqtt.Client(client_id=unique_id("v5p"), protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", self.nodes[0].mqtt_port)
        pub.loop_start()
        self.addCleanup(pub.loop_stop)
        self.addCleanup(pub.disconnect)
        pub.publish(topic, b"with properties", 1, properties=props).wait_for_publish(5)
        wait_for(lambda: got, timeout=10, what="the MQTT 5 message on node B")
        m = got[0]
        self.assertEqual((m.topic, m.payload, m.qos), (topic, b"with properties", 1))
        p = m.properties
        self.assertEqual(p.ContentType, "text/plain")
        self.assertEqual(p.ResponseTopic, "reply/here")
        self.assertEqual(p.CorrelationData, b"\x00corr")
        self.assertEqual(p.UserProperty, [("k1", "v1"), ("k2", "v2")])
        self.assertEqual(p.PayloadFormatIndicator, 1)
        self.assertTrue(95 <= p.MessageExpiryInterval <= 100, p.MessageExpiryInterval)

    def test_10_bench_across_nodes(self):
        bench = os.path.join(os.path.dirname(os.path.abspath(MIDGE_BIN)), "midge_bench")
        if not os.path.exists(bench):
            self.skipTest("midge_bench is not built next to MIDGE_BIN")
        out = subprocess.run([bench, "pairs", "--pairs", "4", "-q", "1", "-n", "2000", "--json",
                              "-p", str(self.nodes[0].mqtt_port),
                              "--sub-port", str(self.nodes[1].mqtt_port), "--duration", "10"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        r = json.loads(out.stdout.decode().splitlines()[0])
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["delivered"], r["lost"], r["duplicates"], r["reordered"]),
                         (2000, 0, 0, 0))

    # Failures ------------------------------------------------------------------
    def cross_node_flows(self, timeout=20):
        """Publishes from A to a subscriber on B until one arrives; returns the seconds taken."""
        topic = unique_id("flow") + "/t"
        b = self.client(1)
        b.subscribe(topic, 1)
        pub = self.client(0)
        start = time.monotonic()
        while not b.messages:
            pub.publish(topic, b"x", 1)
            if time.monotonic() - start > timeout:
                self.fail("no message from node A to node B within %.0fs" % timeout)
            time.sleep(0.1)
        return time.monotonic() - start

    def test_90_kill_the_nats_server_a_node_uses(self):
        used = [n for n in self.nats if "node-a" in n.client_names()]
        self.assertEqual(len(used), 1, "node-a is connected to one nats-server")
        used[0].kill()
        try:
            self.nodes[0].wait_log(r"lost NATS|connected to NATS at", timeout=10)
            # QoS 1 acknowledgements wait for JetStream, which elects a new stream
            # leader first when the killed server led it (seconds).
            self.wait_stream_leader()
            self.cross_node_flows(timeout=20)
            # A QoS 1 stream after the failover loses nothing.
            base = unique_id("fo") + "/"
            c = self.client(2)
            c.subscribe(base + "#", 1)
            self.settle(0, [c])
            pub = self.client(0)
            for i in range(100):
                pub.publish(base + "s", b"%d" % i, 1)
            self.expect_exactly(c, base, [(base + "s", b"%d" % i, 1, False) for i in range(100)])
        finally:
            used[0].start()
            self.wait_nats_cluster()

    def test_91_all_nats_down_then_back(self):
        for n in self.nats:
            n.kill()
        lost = time.monotonic()
        try:
            for i in range(3):
                wait_for(lambda: self.sys_state(i) == "disconnected", timeout=10,
                         what="node %d to report disconnected" % i)
                status, body = http_get(self.nodes[i].http_port, "/health")
                self.assertEqual(status, 503)
                self.assertIn("degraded", body)
                self.assertEqual(self.metric(i, "midge_cluster_connected"), 0)
            # Local delivery goes on on every node; QoS 1 acknowledgements wait for
            # JetStream during the first 5 s (a node may only be changing servers).
            time.sleep(max(0.0, lost + 5.5 - time.monotonic()))
            for i in range(3):
                topic = unique_id("loc") + "/t"
                sub = self.client(i)
                sub.subscribe(topic, 1)
                self.client(i).publish(topic, b"here", 1)
                self.expect_exactly(sub, topic, [(topic, b"here", 1, False)])
        finally:
            for n in self.nats:
                n.start()
        self.wait_nats_cluster()
        for i in range(3):
            wait_for(lambda: self.sys_state(i) == "connected", timeout=20,
                     what="node %d to report connected" % i)
            self.assertEqual(http_get(self.nodes[i].http_port, "/health"), (200, "ok\n"))
        self.wait_stream_leader()
        self.cross_node_flows(timeout=20)


if __name__ == "__main__":
    main()
