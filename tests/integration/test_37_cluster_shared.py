#!/usr/bin/python3
"""Shared subscriptions across a cluster: $share/<group>/<filter> members on
several midge nodes form one group, fed through NATS queue groups.

Covered (real paho clients, MQTT 5 and 3.1.1 members): 300 messages from
publishers on every node reach the group exactly once in all (the union of
what the members got is the sent set, no duplicates), every node's member
gets a share, and a plain subscriber of the same filter on any node gets all
300; two groups on one filter each get every message once; messages of a
node without members are balanced across the other nodes' members; a
retained message published live goes to one member once, and a member that
subscribes later gets no stored retained message; $SYS messages, which stay
on their node, reach that node's members; QoS 2 and MQTT 5 properties
(content type, correlation data, user property, expiry) arrive through the
group on another node; a node with members killed
(kill -9): the remaining members get every message published after it
(bounded wait for NATS to drop its queue subscriptions); every nats-server
down: local members still get the messages published on their node, each
once; NATS back: the group is fed through NATS again.

Run alone: /usr/bin/python3 tests/integration/test_37_cluster_shared.py
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clustertest import SETTLE, ClusterCase  # noqa: E402
from midgetest import main, unique_id, wait_for  # noqa: E402

N = 300


class ClusterShared(ClusterCase):
    # Helpers ---------------------------------------------------------------
    def member(self, node, group, filter_, protocol=5, qos=1):
        c = self.client(node, protocol=protocol)
        c.subscribe("$share/%s/%s" % (group, filter_), qos)
        return c

    def settle_shared(self, base, groups, nodes=(0, 1, 2), timeout=15):
        """Until each member (of each group in groups: lists of clients) got a
        probe under base+"probe/" published from the given nodes: then its
        node's queue subscription is known to NATS. Probes are then forgotten."""
        members = [c for g in groups for c in g]
        pubs = [self.client(n) for n in nodes]
        deadline = time.monotonic() + timeout
        i = 0
        while not all(self.got(c, base + "probe/") for c in members):
            if time.monotonic() > deadline:
                self.fail("shared subscriptions did not reach NATS within %ds" % timeout)
            for p in pubs:
                p.publish(base + "probe/%d" % i, b"probe", 0)
                i += 1
            time.sleep(0.02)
        time.sleep(SETTLE)
        for c in members:
            with c._cond:
                c.messages[:] = [m for m in c.messages if not m[0].startswith(base + "probe/")]

    def publish_spread(self, base, nodes, n=N, qos=1):
        """n messages base+"d/<i>", round-robin over publishers on nodes; returns the topics."""
        pubs = [self.client(k) for k in nodes]
        topics = []
        for i in range(n):
            t = base + "d/%d" % i
            pubs[i % len(pubs)].publish(t, b"%d" % i, qos)
            topics.append(t)
        return topics

    def expect_once_across(self, members, base, topics, timeout=20):
        """The members together got each topic exactly once; returns the share of each."""
        prefix = base + "d/"
        wait_for(lambda: sum(len(self.got(c, prefix)) for c in members) >= len(topics),
                 timeout=timeout, what="%d messages across the group" % len(topics))
        time.sleep(SETTLE)
        got = [[m[0] for m in self.got(c, prefix)] for c in members]
        union = [t for g in got for t in g]
        dups = sorted({t for t in union if union.count(t) > 1})
        self.assertEqual(dups, [], "delivered twice in the group")
        self.assertEqual(sorted(union), sorted(topics))
        return [len(g) for g in got]

    # Tests -------------------------------------------------------------------
    def test_01_once_across_the_group_balanced_plain_subscriber_gets_all(self):
        base = unique_id("sh") + "/"
        group = unique_id("g")
        members = [self.member(0, group, base + "#"),
                   self.member(1, group, base + "#", protocol=4),  # MQTT 3.1.1
                   self.member(2, group, base + "#")]
        # The same group name on another filter is another shared subscription:
        # it gets each message too.
        other_filter = [self.member(2, group, base + "+/+")]
        plain = self.client(1)
        plain.subscribe(base + "#", 1)
        self.settle_shared(base, [members, other_filter])
        self.settle(0, [plain])
        topics = self.publish_spread(base, (0, 1, 2))
        shares = self.expect_once_across(members, base, topics)
        print("shares by node:", shares, file=sys.stderr)
        for node, share in enumerate(shares):
            self.assertGreaterEqual(share, N // 10, "node %d's member got %r" % (node, shares))
        self.expect_once_across([plain], base, topics)
        self.expect_once_across(other_filter, base, topics)
        # /metrics: every node follows groups on NATS and got some of them there.
        for k in range(3):
            self.assertGreaterEqual(self.metric(k, "midge_cluster_shared_groups"), 1)
            self.assertGreaterEqual(self.metric(k, "midge_cluster_shared_received_total"), 1)
            self.assertEqual(self.metric(k, "midge_cluster_shared_links_up"), 3)

    def test_02_two_groups_on_one_filter_each_get_every_message(self):
        base = unique_id("sh2") + "/"
        g1, g2 = unique_id("g"), unique_id("g")
        first = [self.member(0, g1, base + "#"), self.member(1, g1, base + "#", protocol=4)]
        second = [self.member(1, g2, base + "#"), self.member(2, g2, base + "#")]
        self.settle_shared(base, [first, second])
        topics = self.publish_spread(base, (0, 1, 2))
        self.expect_once_across(first, base, topics)
        self.expect_once_across(second, base, topics)

    def test_03_a_node_without_members_balances_over_the_others(self):
        base = unique_id("sh3") + "/"
        group = unique_id("g")
        members = [self.member(1, group, base + "#"), self.member(2, group, base + "#")]
        self.settle_shared(base, [members], nodes=(0,))
        topics = self.publish_spread(base, (0,))
        shares = self.expect_once_across(members, base, topics)
        print("shares of nodes B and C:", shares, file=sys.stderr)
        for share in shares:
            self.assertGreaterEqual(share, N // 10, "shares %r" % shares)

    def test_04_retained_goes_live_once_and_is_not_replayed(self):
        base = unique_id("sh4") + "/"
        group = unique_id("g")
        members = [self.member(k, group, base + "#") for k in range(3)]
        self.settle_shared(base, [members])
        self.client(1).publish(base + "d/r", b"kept", 1, retain=True)
        self.expect_once_across(members, base, [base + "d/r"])
        # Stored retained messages are not sent to a new shared subscription (MQTT 5).
        late = self.member(2, unique_id("g"), base + "#")
        plain = self.client(2)
        plain.subscribe(base + "#", 1)
        plain.wait_for(lambda ms: any(m[0] == base + "d/r" for m in ms), what="the retained one")
        time.sleep(SETTLE)
        self.assertEqual(self.got(late, base), [])

    def test_05_sys_topics_stay_on_their_node_and_reach_local_members(self):
        # $SYS messages never cross NATS: each node's own members get its own.
        group = unique_id("g")
        topic = "$SYS/broker/uptime"  # published every sys_interval (1 s here)
        members = [self.member(k, group, topic, qos=0) for k in range(3)]
        for node, c in enumerate(members):
            c.wait_for(lambda ms: any(m[0] == topic for m in ms), timeout=10,
                       what="node %d's own %s" % (node, topic))

    def test_06_qos2_and_mqtt5_properties_through_the_group(self):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        base = unique_id("sh6") + "/"
        got = []
        sub = mqtt.Client(client_id=unique_id("v5s"), protocol=mqtt.MQTTv5)
        sub.on_message = lambda c, u, m: got.append(m)
        sub.connect("127.0.0.1", self.nodes[1].mqtt_port)
        sub.loop_start()
        self.addCleanup(sub.loop_stop)
        self.addCleanup(sub.disconnect)
        sub.subscribe("$share/%s/%s#" % (unique_id("g"), base), 2)
        probe = self.client(0)
        deadline = time.monotonic() + 15
        while not any(m.topic.startswith(base + "probe") for m in got):
            self.assertLess(time.monotonic(), deadline, "the group's queue subscription")
            probe.publish(base + "probe", b"p", 0)
            time.sleep(0.05)
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "text/plain"
        props.CorrelationData = b"\x00corr"
        props.UserProperty = [("k1", "v1")]
        props.MessageExpiryInterval = 100
        pub = mqtt.Client(client_id=unique_id("v5p"), protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", self.nodes[0].mqtt_port)
        pub.loop_start()
        self.addCleanup(pub.loop_stop)
        self.addCleanup(pub.disconnect)
        pub.publish(base + "d/p", b"with properties", 2, properties=props).wait_for_publish(5)
        wait_for(lambda: [m for m in got if m.topic == base + "d/p"], timeout=10,
                 what="the message on node B's member")
        time.sleep(SETTLE)
        mine = [m for m in got if m.topic == base + "d/p"]
        self.assertEqual(len(mine), 1)
        m = mine[0]
        self.assertEqual((m.payload, m.qos), (b"with properties", 2))
        self.assertEqual(m.properties.ContentType, "text/plain")
        self.assertEqual(m.properties.CorrelationData, b"\x00corr")
        self.assertEqual(m.properties.UserProperty, [("k1", "v1")])
        self.assertTrue(95 <= m.properties.MessageExpiryInterval <= 100)

    def test_80_a_member_node_killed_the_others_get_everything(self):
        base = unique_id("sh8") + "/"
        group = unique_id("g")
        members = [self.member(k, group, base + "#") for k in range(3)]
        self.settle_shared(base, [members])
        self.kill_node(2)
        try:
            alive = members[:2]
            # NATS drops node C's queue subscriptions once it sees the TCP close:
            # wait until probes from both nodes reach both remaining members.
            self.settle_shared(base, [alive], nodes=(0, 1))
            topics = self.publish_spread(base, (0, 1))
            self.expect_once_across(alive, base, topics)
        finally:
            self.start_node(2)

    def test_91_nats_down_local_members_go_on(self):
        base = unique_id("sh9") + "/"
        group = unique_id("g")
        local = [self.member(0, group, base + "#"), self.member(0, group, base + "#", protocol=4)]
        remote = self.member(1, group, base + "#")
        self.settle_shared(base, [local + [remote]])
        for n in self.nats:
            n.kill()
        try:
            for i in range(3):
                wait_for(lambda: self.sys_state(i) == "disconnected", timeout=10,
                         what="node %d to report disconnected" % i)
            topics = self.publish_spread(base, (0,), n=20)
            shares = self.expect_once_across(local, base, topics)
            self.assertEqual(len(shares), 2)
            self.assertEqual(self.got(remote, base), [])
        finally:
            for n in self.nats:
                n.start()
        self.wait_nats_cluster()
        for i in range(3):
            wait_for(lambda: self.sys_state(i) == "connected", timeout=20,
                     what="node %d to report connected" % i)
        # Through NATS again: a fresh group on nodes A and B, fed from both.
        outage_base = base
        base = unique_id("sh9b") + "/"
        again = [self.member(0, group, base + "#"), self.member(1, group, base + "#")]
        self.settle_shared(base, [again], nodes=(0, 1), timeout=30)
        topics_again = self.publish_spread(base, (0, 1), n=60)
        self.expect_once_across(again, base, topics_again)
        # What node A gave its own members while NATS was away reached NATS
        # later (libnats's reconnect buffer): the group must not get it again.
        self.expect_once_across(local + [remote], outage_base, topics)


if __name__ == "__main__":
    main()
