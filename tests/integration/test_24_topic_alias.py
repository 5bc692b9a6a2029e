#!/usr/bin/python3
"""MQTT 5 topic aliases (section 3.3.2.3.4) both ways: the aliases a client
sets and uses (up to the listener's max_topic_alias, errors 0x94 and 0x82),
their scope (one network connection), that they are never forwarded, and
the aliases the broker itself uses towards a client that announced a Topic
Alias Maximum (up to max_topic_alias_broker), including resends after a
reconnect and a paho client.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_24_topic_alias.py
(mosquitto 2.0.11 never sends topic aliases: the outbound tests are midge-only).
"""

import os
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (CONNACK, DEFAULT_TIMEOUT, DISCONNECT, SharedBrokerTestCase,  # noqa: E402
                       connect, connected_client, disconnect, is_mosquitto, main, parse_props,
                       parse_publish5, parse_v5, prop_user, prop_value, puback, pubcomp,
                       publish, pubrec, pubrel, subscribe, suback, unique_id)

TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
SESSION_EXPIRY = 0x11
NO_ALIASES_OUT = "mosquitto 2.0.11 never sends topic aliases to a client"
# Alias 0 is not permitted [MQTT-3.3.2-8]. The packet parses, so this is a
# protocol error rather than a malformed packet, and 0x94 (Topic Alias
# invalid) is the specific code for it.
ALIAS_ZERO = "mosquitto 2.0.11 answers alias 0 with DISCONNECT 0x81 (malformed packet)"


def alias(n):
    return bytes([TOPIC_ALIAS]) + struct.pack("!H", n)


def alias_max(n):
    return bytes([TOPIC_ALIAS_MAXIMUM]) + struct.pack("!H", n)


def session_expiry(seconds):
    return bytes([SESSION_EXPIRY]) + struct.pack("!I", seconds)


def expect_disconnect(client, reason, msg=""):
    """The broker sends DISCONNECT with `reason`, then closes the connection."""
    pkt = client.read_packet()
    got = parse_v5(pkt) if pkt[0] >> 4 == DISCONNECT else None
    if got is None or got.reason != reason:
        raise AssertionError("expected DISCONNECT 0x%02x, got %s %s" % (reason, pkt.hex(" "), msg))
    client.expect_closed(msg=msg)


class AliasResolver:
    """What a client does with the PUBLISH packets it receives: keeps the
    mappings the broker sets and resolves an empty topic through them."""

    def __init__(self, maximum):
        self.maximum = maximum
        self.mappings = {}

    def resolve(self, pkt):
        p = parse_publish5(pkt)
        a = prop_value(p.props, TOPIC_ALIAS)
        if a is None:
            if not p.topic:
                raise AssertionError("empty topic without an alias: %s" % pkt.hex(" "))
            return p.topic, p
        if not 1 <= a <= self.maximum:
            raise AssertionError("alias %d outside 1..%d [MQTT-3.3.2-11]" % (a, self.maximum))
        if p.topic:
            self.mappings[a] = p.topic
            return p.topic, p
        if a not in self.mappings:
            raise AssertionError("alias %d used before it was set on this connection" % a)
        return self.mappings[a], p


class Helpers:

    def v5(self, client_id=None, props=b"", **kw):
        return self.client(client_id, proto=5, props=props, **kw)

    def sub5(self, topics, props=b"", qos=0, client_id=None):
        """An MQTT 5 subscriber (CONNECT properties `props`) on topics."""
        c = self.v5(client_id, props=props)
        c.send(subscribe(1, [(t, qos) for t in topics], proto=5))
        c.expect(suback(1, [qos] * len(topics), proto=5))
        return c


class InboundAliases(Helpers, SharedBrokerTestCase):
    """The default listener: clients may set aliases 1..10."""

    def test_connack_announces_the_maximum(self):
        c = self.raw()
        c.send(connect(unique_id(), proto=5))
        pkt = c.read_packet()
        self.assertEqual(pkt[0] >> 4, CONNACK)
        props, _ = parse_props(pkt, 4)
        self.assertEqual(prop_value(props, TOPIC_ALIAS_MAXIMUM), 10)

    def test_set_then_use(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 1)])
        pub = self.v5()
        pub.send(publish(t, "set", qos=1, mid=1, proto=5, props=alias(1)))
        pub.expect(puback(1))
        pub.send(publish("", "use", qos=1, mid=2, proto=5, props=alias(1)))
        pub.expect(puback(2))
        pub.send(publish("", "zero", proto=5, props=alias(1)))
        for payload in ("set", "use", "zero"):
            mid = sub.expect_publish(t, payload, qos=1 if payload != "zero" else 0)
            if mid:
                sub.send(puback(mid))
        pub.ping()
        sub.ping()

    def test_every_alias_up_to_the_maximum(self):
        base = self.topic()
        sub = self.client().subscribe_ok([(base + "/#", 0)])
        pub = self.v5()
        for a in range(1, 11):
            pub.send(publish("%s/%d" % (base, a), "set", proto=5, props=alias(a)))
        for a in range(10, 0, -1):
            pub.send(publish("", "use%d" % a, proto=5, props=alias(a)))
        for a in range(1, 11):
            sub.expect_publish("%s/%d" % (base, a), "set")
        for a in range(10, 0, -1):
            sub.expect_publish("%s/%d" % (base, a), "use%d" % a)
        pub.ping()

    def test_qos2_through_an_alias(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 2)])
        pub = self.v5()
        pub.send(publish(t, "a", qos=2, mid=5, proto=5, props=alias(2)))
        pub.expect(pubrec(5))
        pub.send(publish("", "b", qos=2, mid=6, proto=5, props=alias(2)))
        pub.expect(pubrec(6))
        # A resent PUBLISH (DUP) through the alias is still recognised as the same message.
        pub.send(publish("", "b", qos=2, mid=6, dup=True, proto=5, props=alias(2)))
        pub.expect(pubrec(6))
        for mid in (5, 6):
            pub.send(pubrel(mid))
            pub.expect(pubcomp(mid))
        mids = [sub.expect_publish(t, payload, qos=2) for payload in ("a", "b")]
        for mid in mids:
            sub.send(pubrec(mid))
            sub.expect(pubrel(mid))
            sub.send(pubcomp(mid))
        sub.ping()

    def test_a_new_topic_replaces_the_mapping(self):
        t1, t2 = self.topic("/one"), self.topic("/two")
        sub = self.client().subscribe_ok([(t1, 0), (t2, 0)])
        pub = self.v5()
        pub.send(publish(t1, "1", proto=5, props=alias(3)))
        pub.send(publish("", "2", proto=5, props=alias(3)))
        pub.send(publish(t2, "3", proto=5, props=alias(3)))
        pub.send(publish("", "4", proto=5, props=alias(3)))
        sub.expect_publish(t1, "1")
        sub.expect_publish(t1, "2")
        sub.expect_publish(t2, "3")
        sub.expect_publish(t2, "4")
        pub.ping()

    def test_full_topic_with_an_alias_still_goes_to_that_topic(self):
        t1, t2 = self.topic("/one"), self.topic("/two")
        sub = self.client().subscribe_ok([(t1, 0), (t2, 0)])
        pub = self.v5()
        pub.send(publish(t1, "1", proto=5, props=alias(1)))
        pub.send(publish(t2, "2", proto=5, props=alias(2)))
        pub.send(publish(t1, "3", proto=5, props=alias(1)))
        pub.send(publish("", "4", proto=5, props=alias(2)))
        sub.expect_publish(t1, "1")
        sub.expect_publish(t2, "2")
        sub.expect_publish(t1, "3")
        sub.expect_publish(t2, "4")

    def test_alias_is_not_forwarded(self):
        t = self.topic()
        sub = self.sub5([t])
        pub = self.v5()
        user = prop_user("k", "v")
        pub.send(publish(t, "set", proto=5, props=alias(1) + user))
        pub.send(publish("", "use", proto=5, props=user + alias(1)))
        # Per hop [3.3.2.3.4]: the subscriber sees the topic and the other properties only.
        sub.expect(publish(t, "set", proto=5, props=user))
        sub.expect(publish(t, "use", proto=5, props=user))

    def test_unknown_alias_is_a_protocol_error(self):
        with self.witness().around():
            pub = self.v5()
            pub.send(publish("", "x", proto=5, props=alias(4)))
            expect_disconnect(pub, 0x82)

    def test_unknown_alias_qos1_is_a_protocol_error(self):
        pub = self.v5()
        pub.send(publish(self.topic(), "x", proto=5, props=alias(1)))
        pub.send(publish("", "y", qos=1, mid=3, proto=5, props=alias(2)))
        expect_disconnect(pub, 0x82)

    def test_alias_zero_is_invalid(self):
        self.midge_only(ALIAS_ZERO)
        with self.witness().around():
            pub = self.v5()
            pub.send(publish(self.topic(), "x", proto=5, props=alias(0)))
            expect_disconnect(pub, 0x94)

    def test_alias_zero_with_empty_topic_is_invalid(self):
        self.midge_only(ALIAS_ZERO)
        pub = self.v5()
        pub.send(publish("", "x", proto=5, props=alias(0)))
        expect_disconnect(pub, 0x94)

    def test_alias_above_the_maximum_is_invalid(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 0)])
        pub = self.v5()
        pub.send(publish(t, "x", proto=5, props=alias(11)))
        expect_disconnect(pub, 0x94)
        sub.expect_nothing(msg="(the PUBLISH with the invalid alias is not routed)")

    def test_alias_above_the_maximum_empty_topic_is_invalid(self):
        pub = self.v5()
        pub.send(publish("", "x", qos=1, mid=1, proto=5, props=alias(65535)))
        expect_disconnect(pub, 0x94)

    def test_empty_topic_without_alias_is_a_protocol_error(self):
        pub = self.v5()
        pub.send(publish("", "x", proto=5))
        expect_disconnect(pub, 0x82)

    def test_empty_topic_is_a_protocol_error_in_3_1_1(self):
        pub = self.client()
        pub.send(publish("", "x"))
        pub.expect_closed()

    def test_aliases_belong_to_one_connection(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 0)])
        first = self.v5()
        first.send(publish(t, "first", proto=5, props=alias(1)))
        sub.expect_publish(t, "first")
        other = self.v5()
        other.send(publish("", "other", proto=5, props=alias(1)))
        expect_disconnect(other, 0x82, "(another connection's alias)")
        first.send(publish("", "again", proto=5, props=alias(1)))
        sub.expect_publish(t, "again")

    def test_a_reconnect_starts_without_aliases(self):
        t = self.topic()
        cid = unique_id("alias")
        sub = self.client().subscribe_ok([(t, 0)])
        pub = self.v5(cid, props=session_expiry(60))
        pub.send(publish(t, "before", proto=5, props=alias(1)))
        sub.expect_publish(t, "before")
        pub.send(disconnect(proto=5))
        pub.expect_closed()
        # The session lives on; the aliases do not [MQTT-3.3.2-7].
        again = self.v5(cid, props=session_expiry(60), clean=False, session_present=True)
        again.send(publish("", "after", proto=5, props=alias(1)))
        expect_disconnect(again, 0x82)
        sub.expect_nothing()

    def test_paho_publishes_through_aliases(self):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 1)])
        pub = Paho5(self.port)
        self.addCleanup(pub.close)
        for i, topic in enumerate((t, "", "")):
            props = Properties(PacketTypes.PUBLISH)
            props.TopicAlias = 7
            info = pub.client.publish(topic, "p%d" % i, qos=1, properties=props)
            info.wait_for_publish(DEFAULT_TIMEOUT)
            self.assertEqual(info.rc, mqtt.MQTT_ERR_SUCCESS)
            self.assertTrue(info.is_published())
        for i in range(3):
            mid = sub.expect_publish(t, "p%d" % i, qos=1)
            sub.send(puback(mid))


class InboundAliasesDisabled(Helpers, SharedBrokerTestCase):
    """max_topic_alias 0: the CONNACK announces none and every alias is invalid."""

    broker_listeners = [{"max_topic_alias": 0}]

    def test_connack_announces_no_maximum(self):
        c = self.raw()
        c.send(connect(unique_id(), proto=5))
        pkt = c.read_packet()
        props, _ = parse_props(pkt, 4)
        self.assertEqual(pkt[3], 0)
        self.assertIsNone(prop_value(props, TOPIC_ALIAS_MAXIMUM))

    def test_any_alias_is_invalid(self):
        with self.witness().around():
            pub = self.v5()
            pub.send(publish(self.topic(), "x", proto=5, props=alias(1)))
            expect_disconnect(pub, 0x94)

    def test_plain_topics_still_work(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 0)])
        pub = self.v5()
        pub.send(publish(t, "plain", proto=5))
        sub.expect_publish(t, "plain")


class OutboundAliases(Helpers, SharedBrokerTestCase):
    """The broker's own aliases towards clients that announce a Topic Alias Maximum."""

    def setUp(self):
        self.midge_only(NO_ALIASES_OUT)

    def test_topic_first_then_alias_alone(self):
        t = self.topic()
        sub = self.sub5([t], props=alias_max(2))
        pub = self.client()
        for payload in ("1", "2", "3"):
            pub.send(publish(t, payload))
        sub.expect(publish(t, "1", proto=5, props=alias(1)))
        sub.expect(publish("", "2", proto=5, props=alias(1)))
        sub.expect(publish("", "3", proto=5, props=alias(1)))

    def test_beyond_the_maximum_the_least_recently_used_alias_moves(self):
        a, b, c = self.topic("/a"), self.topic("/b"), self.topic("/c")
        sub = self.sub5([a, b, c], props=alias_max(2))
        pub = self.client()
        for topic, payload in ((a, "1"), (b, "2"), (a, "3"), (c, "4"), (b, "5"), (c, "6"),
                               (a, "7")):
            pub.send(publish(topic, payload))
        sub.expect(publish(a, "1", proto=5, props=alias(1)))
        sub.expect(publish(b, "2", proto=5, props=alias(2)))
        sub.expect(publish("", "3", proto=5, props=alias(1)))
        # Both taken: c gets b's alias (b was used least recently), with its topic.
        sub.expect(publish(c, "4", proto=5, props=alias(2)))
        sub.expect(publish(b, "5", proto=5, props=alias(1)))
        sub.expect(publish("", "6", proto=5, props=alias(2)))
        sub.expect(publish(a, "7", proto=5, props=alias(1)))

    def test_many_topics_resolve_correctly(self):
        base = self.topic()
        sub = self.sub5([base + "/#"], props=alias_max(3))
        pub = self.client()
        sent = []
        for i in range(60):
            topic = "%s/%d" % (base, (i * 7) % 5 if i % 3 else i % 2)
            sent.append((topic, b"m%d" % i))
            pub.send(publish(topic, "m%d" % i))
        resolver = AliasResolver(3)
        got = []
        for _ in sent:
            topic, p = resolver.resolve(sub.read_packet())
            got.append((topic, p.payload))
        self.assertEqual(got, sent)
        sub.ping()

    def test_many_topics_many_aliases(self):
        base = self.topic()
        sub = self.sub5([base + "/#"], props=alias_max(40))
        pub = self.client()
        sent = []
        for i in range(600):
            topic = "%s/%d" % (base, (i * 37 + i // 7) % 100)
            sent.append((topic, b"m%d" % i))
            pub.send(publish(topic, "m%d" % i))
        # The client takes 40, the listener's max_topic_alias_broker (10 by default) wins.
        resolver = AliasResolver(10)
        got = []
        for _ in sent:
            topic, p = resolver.resolve(sub.read_packet())
            got.append((topic, p.payload))
        self.assertEqual(got, sent)
        self.assertEqual(sorted(resolver.mappings), list(range(1, 11)))
        sub.ping()

    def test_aliases_are_per_subscriber_connection(self):
        a, b = self.topic("/a"), self.topic("/b")
        both = self.sub5([a, b], props=alias_max(4))
        only_b = self.sub5([b], props=alias_max(4))
        plain = self.sub5([b])
        pub = self.client()
        big = "x" * 3000  # queued by reference: the header is still per connection
        for topic, payload in ((a, "1"), (b, "2"), (b, big)):
            pub.send(publish(topic, payload))
        both.expect(publish(a, "1", proto=5, props=alias(1)))
        both.expect(publish(b, "2", proto=5, props=alias(2)))
        both.expect(publish("", big, proto=5, props=alias(2)))
        only_b.expect(publish(b, "2", proto=5, props=alias(1)))
        only_b.expect(publish("", big, proto=5, props=alias(1)))
        plain.expect(publish(b, "2", proto=5))
        plain.expect(publish(b, big, proto=5))

    def test_qos1_and_forwarded_properties(self):
        t = self.topic()
        sub = self.sub5([t], props=alias_max(1), qos=1)
        pub = self.v5()
        user = prop_user("k", "v")
        pub.send(publish(t, "1", qos=1, mid=1, proto=5, props=user + alias(5)))
        pub.expect(puback(1))
        pub.send(publish("", "2", qos=1, mid=2, proto=5, props=alias(5) + user))
        pub.expect(puback(2))
        # The publisher's alias 5 stays on its hop; the subscriber gets the broker's alias 1.
        props = [(0x26, (b"k", b"v")), (TOPIC_ALIAS, 1)]
        m1 = parse_publish5(sub.read_packet())
        self.assertEqual((m1.topic, m1.payload, m1.qos, m1.props), (t, b"1", 1, props))
        m2 = parse_publish5(sub.read_packet())
        self.assertEqual((m2.topic, m2.payload, m2.qos, m2.props), ("", b"2", 1, props))
        sub.send(puback(m1.mid))
        sub.send(puback(m2.mid))
        sub.ping()

    def test_no_maximum_no_aliases(self):
        t = self.topic()
        sub = self.sub5([t])
        zero = self.sub5([t], props=alias_max(0))
        pub = self.client()
        pub.send(publish(t, "1"))
        pub.send(publish(t, "2"))
        for c in (sub, zero):
            c.expect(publish(t, "1", proto=5))
            c.expect(publish(t, "2", proto=5))

    def test_older_protocols_never_get_aliases(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 0)])
        pub = self.client()
        pub.send(publish(t, "1"))
        pub.send(publish(t, "2"))
        sub.expect_publish(t, "1")
        sub.expect_publish(t, "2")

    def test_resend_after_reconnect_sets_aliases_again(self):
        t = self.topic()
        cid = unique_id("resend")
        props = session_expiry(300) + alias_max(2)
        sub = self.sub5([t], props=props, qos=1, client_id=cid)
        pub = self.client()
        pub.send(publish(t, "1", qos=1, mid=1))
        pub.send(publish(t, "2", qos=1, mid=2))
        m1 = parse_publish5(sub.read_packet())
        m2 = parse_publish5(sub.read_packet())
        self.assertEqual([(m1.topic, m1.props), (m2.topic, m2.props)],
                         [(t, [(TOPIC_ALIAS, 1)]), ("", [(TOPIC_ALIAS, 1)])])
        sub.close()  # no PUBACK: both stay in flight
        # A new connection has no mapping: the first resend sets alias 1 again.
        again = connected_client(self.port, cid, proto=5, props=props, clean=False,
                                 session_present=True)
        self.addCleanup(again.close)
        again.expect(publish(t, "1", qos=1, dup=True, mid=m1.mid, proto=5, props=alias(1)))
        again.expect(publish("", "2", qos=1, dup=True, mid=m2.mid, proto=5, props=alias(1)))
        again.close()
        # Without a Topic Alias Maximum this time: full topics, no alias.
        third = connected_client(self.port, cid, proto=5, props=session_expiry(300), clean=False,
                                 session_present=True)
        self.addCleanup(third.close)
        third.expect(publish(t, "1", qos=1, dup=True, mid=m1.mid, proto=5))
        third.expect(publish(t, "2", qos=1, dup=True, mid=m2.mid, proto=5))
        third.send(puback(m1.mid))
        third.send(puback(m2.mid))
        third.ping()

    def test_queued_messages_use_the_new_connection_aliases(self):
        t = self.topic()
        cid = unique_id("queued")
        props = session_expiry(300) + alias_max(2)
        sub = self.sub5([t], props=props, qos=1, client_id=cid)
        pub = self.client()
        pub.send(publish(t, "1", qos=1, mid=1))
        pub.expect(puback(1))
        m1 = parse_publish5(sub.read_packet())
        self.assertEqual((m1.topic, m1.props), (t, [(TOPIC_ALIAS, 1)]))
        sub.send(puback(m1.mid))
        sub.send(disconnect(proto=5))
        sub.expect_closed()
        for mid in (2, 3):
            pub.send(publish(t, str(mid), qos=1, mid=mid))
            pub.expect(puback(mid))
        again = connected_client(self.port, cid, proto=5, props=props, clean=False,
                                 session_present=True)
        self.addCleanup(again.close)
        m2 = parse_publish5(again.read_packet())
        m3 = parse_publish5(again.read_packet())
        self.assertEqual([(m2.topic, m2.payload, m2.props), (m3.topic, m3.payload, m3.props)],
                         [(t, b"2", [(TOPIC_ALIAS, 1)]), ("", b"3", [(TOPIC_ALIAS, 1)])])
        again.send(puback(m2.mid))
        again.send(puback(m3.mid))
        again.ping()

    def test_paho_receives_everything(self):
        base = self.topic()
        got = []
        done = threading.Event()
        topics = ["%s/%d" % (base, i) for i in range(5)]
        sent = [(topics[(i * 3) % 5 if i % 4 else 0], b"p%d" % i, i % 2) for i in range(40)]
        resolver = {}

        def on_message(client, userdata, msg):
            a = getattr(msg.properties, "TopicAlias", None)
            topic = msg.topic
            # paho 1.6 hands the alias to the application as received.
            if a is not None:
                if topic:
                    resolver[a] = topic
                else:
                    topic = resolver.get(a, "<unknown alias %d>" % a)
            got.append((topic, bytes(msg.payload), msg.qos, a))
            if len(got) == len(sent):
                done.set()

        sub = Paho5(self.port, alias_maximum=3, on_message=on_message)
        self.addCleanup(sub.close)
        sub.subscribe(base + "/#", 1)
        pub = self.client()
        for i, (topic, payload, qos) in enumerate(sent):
            pub.send(publish(topic, payload, qos=qos, mid=i + 1 if qos else None))
        self.assertTrue(done.wait(DEFAULT_TIMEOUT), "paho got %d of %d" % (len(got), len(sent)))
        self.assertEqual([(t, p, q) for t, p, q, _ in got], sent)
        used = {a for _, _, _, a in got if a is not None}
        self.assertTrue(used and used <= {1, 2, 3}, used)
        self.assertFalse(sub.disconnected.is_set())


class OutboundWithinMaximumPacketSize(Helpers, SharedBrokerTestCase):
    """An alias that would make a PUBLISH exceed the client's Maximum Packet
    Size [MQTT-3.1.2-24] is left out; the message still goes, with its topic."""

    def test_alias_left_out_when_the_packet_would_not_fit(self):
        t = self.topic()
        limit = len(publish(t, "p", proto=5))  # fits exactly without an alias
        sub = self.sub5([t], props=alias_max(2) + bytes([0x27]) + struct.pack("!I", limit))
        pub = self.client()
        for _ in range(3):
            pub.send(publish(t, "p"))
        for _ in range(3):
            sub.expect(publish(t, "p", proto=5))
        # A little more room: the alias is used again.
        roomy = self.sub5([t], props=alias_max(2) + bytes([0x27]) + struct.pack("!I", limit + 3))
        pub.send(publish(t, "q"))
        sub.expect(publish(t, "q", proto=5))
        if not is_mosquitto():
            roomy.expect(publish(t, "q", proto=5, props=alias(1)))


class OutboundLimitedByTheListener(Helpers, SharedBrokerTestCase):
    """max_topic_alias_broker 1: one alias at most, whatever the client allows."""

    broker_listeners = [{} if is_mosquitto() else {"max_topic_alias_broker": 1}]

    def test_listener_maximum_wins(self):
        self.midge_only(NO_ALIASES_OUT)
        a, b = self.topic("/a"), self.topic("/b")
        sub = self.sub5([a, b], props=alias_max(10))
        pub = self.client()
        for topic, payload in ((a, "1"), (a, "2"), (b, "3"), (b, "4")):
            pub.send(publish(topic, payload))
        sub.expect(publish(a, "1", proto=5, props=alias(1)))
        sub.expect(publish("", "2", proto=5, props=alias(1)))
        sub.expect(publish(b, "3", proto=5, props=alias(1)))
        sub.expect(publish("", "4", proto=5, props=alias(1)))


class OutboundLargeTable(Helpers, SharedBrokerTestCase):
    """max_topic_alias_broker 500: the client's own maximum (300) bounds the table."""

    broker_listeners = [{} if is_mosquitto() else {"max_topic_alias_broker": 500}]

    def test_hundreds_of_topics(self):
        self.midge_only(NO_ALIASES_OUT)
        base = self.topic()
        sub = self.sub5([base + "/#"], props=alias_max(300))
        pub = self.client()
        sent = []
        # Fewer than max_queued_messages (1000): QoS 0 beyond that may be dropped.
        for i in range(900):
            topic = "%s/%d" % (base, (i * 131 + i // 11) % 450 if i % 2 else i % 200)
            sent.append((topic, b"m%d" % i))
            pub.send(publish(topic, "m%d" % i))
        resolver = AliasResolver(300)
        got = []
        for _ in sent:
            topic, p = resolver.resolve(sub.read_packet())
            got.append((topic, p.payload))
        self.assertEqual(got, sent)
        self.assertEqual(sorted(resolver.mappings), list(range(1, 301)))
        sub.ping()


class OutboundDisabled(Helpers, SharedBrokerTestCase):
    """max_topic_alias_broker 0: the broker never sends an alias."""

    broker_listeners = [{} if is_mosquitto() else {"max_topic_alias_broker": 0}]

    def test_no_aliases_even_when_the_client_takes_them(self):
        t = self.topic()
        sub = self.sub5([t], props=alias_max(5))
        pub = self.client()
        for payload in ("1", "2", "3"):
            pub.send(publish(t, payload))
        for payload in ("1", "2", "3"):
            sub.expect(publish(t, payload, proto=5))

    def test_inbound_aliases_still_work(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 0)])
        pub = self.v5()
        pub.send(publish(t, "1", proto=5, props=alias(1)))
        pub.send(publish("", "2", proto=5, props=alias(1)))
        sub.expect_publish(t, "1")
        sub.expect_publish(t, "2")


class Paho5:
    """A paho-mqtt 1.6 MQTT 5 client on its own network thread, optionally
    announcing a Topic Alias Maximum (the harness's PahoClient sends no
    CONNECT properties)."""

    def __init__(self, port, alias_maximum=None, on_message=None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        self.client = mqtt.Client(client_id=unique_id("paho"), protocol=mqtt.MQTTv5,
                                  reconnect_on_failure=False)
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subscribed = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_disconnect = lambda *a: self.disconnected.set()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        if on_message:
            self.client.on_message = on_message
        props = None
        if alias_maximum is not None:
            props = Properties(PacketTypes.CONNECT)
            props.TopicAliasMaximum = alias_maximum
        self.client.connect("127.0.0.1", port, 60, clean_start=True, properties=props)
        self.client.loop_start()
        if not self.connected.wait(DEFAULT_TIMEOUT):
            self.client.loop_stop()
            raise AssertionError("paho: no CONNACK")

    def subscribe(self, topic, qos):
        self.subscribed.clear()
        self.client.subscribe(topic, qos)
        if not self.subscribed.wait(DEFAULT_TIMEOUT):
            raise AssertionError("paho: no SUBACK")

    def close(self):
        if not self.disconnected.is_set():
            try:
                self.client.disconnect()
                self.disconnected.wait(2)
            except Exception:
                pass
        self.client.loop_stop()


if __name__ == "__main__":
    main()
