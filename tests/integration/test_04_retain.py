#!/usr/bin/python3
"""Retained messages: storage, replacement, clearing, QoS and wildcards.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_04_retain.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (SharedBrokerTestCase, main, puback, pubcomp, publish, pubrec,  # noqa: E402
                       pubrel, unique_id)


class Retain(SharedBrokerTestCase):

    def retain(self, topic, payload, qos=0):
        """Publishes a retained message and completes its flow."""
        pub = self.client()
        pub.send(publish(topic, payload, qos=qos, retain=True, mid=1 if qos else None))
        if qos == 1:
            pub.expect(puback(1))
        elif qos == 2:
            pub.expect(pubrec(1))
            pub.send(pubrel(1))
            pub.expect(pubcomp(1))
        pub.ping()
        return pub

    def test_retained_on_subscribe_and_live_without_retain_flag(self):
        t = self.topic()
        live = self.client().subscribe_ok([(t, 1)])
        pub = self.retain(t, "stored", qos=1)
        # A live delivery to an existing subscriber has retain 0 (3.1.1).
        live.send(puback(live.expect_publish(t, "stored", qos=1, retain=False)))
        late = self.client().subscribe_ok([(t, 1)])
        late.send(puback(late.expect_publish(t, "stored", qos=1, retain=True)))
        late.ping()
        live.ping()
        pub.ping()

    def test_replaced_by_newer(self):
        t = self.topic()
        self.retain(t, "old")
        self.retain(t, "new")
        late = self.client().subscribe_ok([(t, 0)])
        late.expect_publish(t, "new", retain=True)
        late.ping("(only the newest retained message)")

    def test_cleared_by_empty_payload(self):
        t = self.topic()
        self.retain(t, "doomed")
        live = self.client().subscribe_ok([(t, 0)])
        live.expect_publish(t, "doomed", retain=True)
        self.retain(t, "")
        live.expect_publish(t, "", retain=False)  # the empty message is still delivered live
        late = self.client().subscribe_ok([(t, 0)])
        late.expect_nothing(0.3)

    def test_retained_qos_is_min_of_message_and_granted(self):
        t1, t2 = self.topic("/q1"), self.topic("/q2")
        self.retain(t1, "one", qos=1)
        self.retain(t2, "two", qos=2)
        for granted in (0, 1, 2):
            with self.subTest(granted=granted):
                c = self.client()
                for mid, (t, msg_qos, payload) in enumerate(((t1, 1, "one"), (t2, 2, "two")), 1):
                    c.subscribe_ok([(t, granted)], mid=mid)
                    qos = min(granted, msg_qos)
                    got = c.expect_publish(t, payload, qos=qos, retain=True)
                    if qos == 1:
                        c.send(puback(got))
                    elif qos == 2:
                        c.send(pubrec(got))
                        c.expect(pubrel(got))
                        c.send(pubcomp(got))
                c.ping()

    def test_wildcard_subscription_gets_every_match(self):
        p = self.topic()
        stored = {p + "/a": "A", p + "/b/c": "BC", p + "/d": "D", p: "P"}
        for t, payload in stored.items():
            self.retain(t, payload)
        self.retain(p + "x/a", "not matched")
        c = self.client().subscribe_ok([(p + "/#", 0)])
        packets = [c.read_packet() for _ in stored]
        c.ping("(no other retained message)")
        # The order of several retained messages is not specified: compare as
        # a set, each packet byte-exact.
        expected = {publish(t, payload, retain=True) for t, payload in stored.items()}
        self.assertEqual(set(packets), expected)


class DollarRetain(SharedBrokerTestCase):
    """A broker of its own: "#" would otherwise see the other tests' messages."""

    def test_dollar_topic_retained_not_matched_by_hash(self):
        d = "$" + unique_id("r")
        pub = self.client()
        pub.send(publish(d + "/x", "dollar", retain=True))
        pub.send(publish("plain/x", "plain", retain=True))
        pub.ping()
        for filt in ("#", "+/x", "+/#"):
            with self.subTest(filter=filt):
                c = self.client().subscribe_ok([(filt, 0)])
                c.expect_publish("plain/x", "plain", retain=True)
                c.ping("(%s must not match %s/x)" % (filt, d))
        c = self.client().subscribe_ok([(d + "/#", 0)])
        c.expect_publish(d + "/x", "dollar", retain=True)
        c.ping()


if __name__ == "__main__":
    main()
