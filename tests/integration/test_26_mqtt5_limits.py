#!/usr/bin/python3
"""MQTT 5 limits the broker announces and honours: the CONNACK properties
(topic alias maximum, server keep alive, retain available, maximum packet
size, receive maximum, maximum QoS, in mosquitto's order), and the
client's own Receive Maximum and Maximum Packet Size on what the broker
sends it. Runs against midge, or mosquitto with MIDGE_TEST_TARGET=mosquitto.
"""

import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (CONNACK, DISCONNECT, PUBCOMP, PUBLISH, PUBREC, Broker, BrokerTestCase, RawClient,  # noqa: E402
                       connect, is_mosquitto, parse_props, parse_publish5, puback, publish,
                       pubrel, subscribe, suback, unique_id)

PROP_SERVER_KEEP_ALIVE = 0x13
PROP_RECEIVE_MAXIMUM = 0x21
PROP_TOPIC_ALIAS_MAXIMUM = 0x22
PROP_MAXIMUM_QOS = 0x24
PROP_RETAIN_AVAILABLE = 0x25
PROP_MAXIMUM_PACKET_SIZE = 0x27


def u16(pid, v):
    return bytes([pid]) + struct.pack("!H", v)


def u32(pid, v):
    return bytes([pid]) + struct.pack("!I", v)


def connack_props(port, keepalive=60, props=b"", proto=5):
    """The CONNACK's reason code and properties, in order."""
    with RawClient(port) as c:
        c.send(connect(unique_id(), proto=proto, keepalive=keepalive, props=props))
        pkt = c.read_packet()
    assert pkt[0] >> 4 == CONNACK, pkt
    if proto != 5:
        return pkt[3], []
    props, _ = parse_props(pkt, 4)
    return pkt[3], props


class DefaultConnack(BrokerTestCase):

    def test_defaults(self):
        rc, props = connack_props(self.port)
        self.assertEqual(rc, 0)
        # Only what differs from the protocol's defaults, as mosquitto announces it.
        self.assertEqual(props, [(PROP_TOPIC_ALIAS_MAXIMUM, 10), (PROP_RECEIVE_MAXIMUM, 20)])

    def test_older_clients_get_no_properties(self):
        rc, props = connack_props(self.port, proto=4)
        self.assertEqual((rc, props), (0, []))


class LimitedConnack(BrokerTestCase):
    broker_options = {"max_keepalive": 30, "max_packet_size": 1000,
                      "retain_available": False, "max_inflight_messages": 7}
    broker_listeners = [{"max_qos": 1}]

    def test_every_limit_announced_in_order(self):
        rc, props = connack_props(self.port, keepalive=60)
        self.assertEqual(rc, 0)
        self.assertEqual(props, [(PROP_TOPIC_ALIAS_MAXIMUM, 10), (PROP_SERVER_KEEP_ALIVE, 30),
                                 (PROP_RETAIN_AVAILABLE, 0), (PROP_MAXIMUM_PACKET_SIZE, 1000),
                                 (PROP_RECEIVE_MAXIMUM, 7), (PROP_MAXIMUM_QOS, 1)])

    def test_server_keep_alive_only_when_it_differs(self):
        _, within = connack_props(self.port, keepalive=20)
        _, none = connack_props(self.port, keepalive=0)
        self.assertNotIn(PROP_SERVER_KEEP_ALIVE, [p for p, _ in within])
        self.assertIn((PROP_SERVER_KEEP_ALIVE, 30), none, "keep alive 0 is above any maximum")


class ClientLimits(BrokerTestCase):
    """What the client announces in CONNECT binds what the broker sends it."""

    def v5_client(self, props=b""):
        c = RawClient(self.port)
        c.send(connect(unique_id(), proto=5, props=props))
        pkt = c.read_packet()
        self.assertEqual((pkt[0] >> 4, pkt[3]), (CONNACK, 0))
        return c

    def test_receive_maximum_bounds_messages_in_flight(self):
        t = "rm/" + unique_id()
        sub = self.v5_client(u16(PROP_RECEIVE_MAXIMUM, 2))
        sub.send(subscribe(1, [(t, 1)], proto=5))
        sub.expect(suback(1, [1], proto=5))
        pub = self.client()
        for i in range(5):
            pub.send(publish(t, b"m%d" % i, qos=1, mid=i + 1))
            pub.expect(puback(i + 1))
        first = [parse_publish5(sub.read_packet()) for _ in range(2)]
        self.assertEqual([m.payload for m in first], [b"m0", b"m1"])
        sub.expect_nothing(0.5, "(two unacknowledged: the third waits [MQTT-3.3.4-9])")
        sub.send(puback(first[0].mid, proto=5))
        self.assertEqual(parse_publish5(sub.read_packet()).payload, b"m2")
        if not is_mosquitto():
            # mosquitto 2.0.11 sends a third here while two are unacknowledged.
            sub.expect_nothing(0.3, "(still two in flight)")
        sub.close()

    def test_maximum_packet_size_drops_what_does_not_fit(self):
        t = "mps/" + unique_id()
        sub = self.v5_client(u32(PROP_MAXIMUM_PACKET_SIZE, 100))
        sub.send(subscribe(1, [(t, 1)], proto=5))
        sub.expect(suback(1, [1], proto=5))
        pub = self.client()
        pub.send(publish(t, b"x" * 200, qos=1, mid=1))
        pub.expect(puback(1))
        pub.send(publish(t, b"small", qos=1, mid=2))
        pub.expect(puback(2))
        got = parse_publish5(sub.read_packet())
        self.assertEqual(got.payload, b"small",
                         "the large message is dropped, not sent [MQTT-3.1.2-24/25]")
        sub.close()


class InboundReceiveMaximum(BrokerTestCase):
    broker_options = {"max_inflight_messages": 2}

    def test_one_qos2_exchange_too_many_disconnects_with_0x93(self):
        self.midge_only("mosquitto 2.0.11 does not enforce its receive maximum [MQTT-3.3.4-9]")
        c = RawClient(self.port)
        c.send(connect(unique_id(), proto=5))
        self.assertEqual(c.read_packet()[3], 0)
        t = "rmin/" + unique_id()
        for mid in (1, 2):
            c.send(publish(t, b"x", qos=2, mid=mid, proto=5))
            self.assertEqual(c.read_packet()[0] >> 4, PUBREC)
        c.send(publish(t, b"x", qos=2, mid=3, proto=5))
        got = c.read_packet()
        self.assertEqual((got[0] >> 4, got[2]), (DISCONNECT, 0x93), "receive maximum exceeded")
        c.expect_closed()
        c.close()

    def test_released_exchanges_make_room(self):
        c = RawClient(self.port)
        c.send(connect(unique_id(), proto=5))
        self.assertEqual(c.read_packet()[3], 0)
        t = "rmin/" + unique_id()
        for mid in range(1, 6):
            c.send(publish(t, b"x", qos=2, mid=mid, proto=5))
            self.assertEqual(c.read_packet()[0] >> 4, PUBREC)
            c.send(pubrel(mid, proto=5))
            self.assertEqual(c.read_packet()[0] >> 4, PUBCOMP)
        c.close()


PROP_RESPONSE_INFORMATION = 0x1A
PROP_SERVER_REFERENCE = 0x1C
PROP_REQUEST_RESPONSE_INFORMATION = 0x19


class ServerMoved(BrokerTestCase):
    broker_options = {"server_moved": "mqtt2.example.net:1884"}

    def setUp(self):
        self.midge_only("server_moved is midge's option")
        super().setUp()

    def test_v5_clients_learn_where(self):
        rc, props = connack_props(self.port)
        self.assertEqual(rc, 0x9D)
        self.assertEqual(props, [(PROP_SERVER_REFERENCE, b"mqtt2.example.net:1884")])

    def test_older_clients_are_refused(self):
        rc, _ = connack_props(self.port, proto=4)
        self.assertEqual(rc, 3, "server unavailable")


class UseAnotherServer(BrokerTestCase):
    broker_options = {"use_another_server": "other.example.net"}

    def setUp(self):
        self.midge_only("use_another_server is midge's option")
        super().setUp()

    def test_temporary_redirect(self):
        rc, props = connack_props(self.port)
        self.assertEqual((rc, props), (0x9C, [(PROP_SERVER_REFERENCE, b"other.example.net")]))


class ResponseInformation(BrokerTestCase):
    broker_options = {"response_information": "replies/"}

    def setUp(self):
        self.midge_only("response_information is midge's option")
        super().setUp()

    def test_only_when_asked(self):
        _, plain = connack_props(self.port)
        _, asked = connack_props(self.port, props=bytes([PROP_REQUEST_RESPONSE_INFORMATION, 1]))
        self.assertNotIn(PROP_RESPONSE_INFORMATION, [p for p, _ in plain])
        self.assertIn((PROP_RESPONSE_INFORMATION, b"replies/"), asked)


PROP_REQUEST_PROBLEM_INFORMATION = 0x17
PROP_REASON_STRING = 0x1F


class ProblemInformation(BrokerTestCase):
    """A server DISCONNECT says why in a Reason String, unless the client
    asked for no problem information."""

    def violate(self, props=b""):
        c = RawClient(self.port)
        c.send(connect(unique_id(), proto=5, props=props))
        self.assertEqual(c.read_packet()[3], 0)
        c.send(subscribe(1, [("a/#", 0x04)], proto=5)[:-1] + b"\x03")  # QoS 3: protocol error
        got = c.read_packet()
        c.close()
        self.assertEqual(got[0] >> 4, DISCONNECT)
        props, _ = parse_props(got, 3) if len(got) > 3 else ([], 0)
        return got[2], props

    def test_reason_string_by_default(self):
        self.midge_only("mosquitto 2.0.11 sends no reason strings")
        reason, props = self.violate()
        self.assertGreaterEqual(reason, 0x80)
        self.assertTrue(props and props[0][0] == PROP_REASON_STRING and props[0][1], props)

    def test_none_when_not_asked(self):
        reason, props = self.violate(bytes([PROP_REQUEST_PROBLEM_INFORMATION, 0]))
        self.assertGreaterEqual(reason, 0x80)
        self.assertEqual(props, [], "no reason string [MQTT-3.1.2-29]")


class DisconnectReasons(BrokerTestCase):

    def test_a_server_only_reason_is_malformed(self):
        self.midge_only("mosquitto 2.0.11 takes any reason code [MQTT-3.14.2-1]")
        c = RawClient(self.port)
        c.send(connect(unique_id(), proto=5))
        self.assertEqual(c.read_packet()[3], 0)
        c.send(bytes([0xE0, 0x02, 0x8B, 0x00]))  # 0x8B "server shutting down" is the server's
        got = c.read_packet()
        self.assertEqual((got[0] >> 4, got[2]), (DISCONNECT, 0x81))
        c.close()

    def test_client_reasons_close_quietly(self):
        for reason in (0x00, 0x04, 0x80, 0x98):
            c = RawClient(self.port)
            c.send(connect(unique_id(), proto=5))
            self.assertEqual(c.read_packet()[3], 0)
            c.send(bytes([0xE0, 0x02, reason, 0x00]))
            c.expect_closed(msg="(0x%02x)" % reason)
            c.close()


class KeepAlive(BrokerTestCase):

    def test_expired_keep_alive_says_why(self):
        self.midge_only("mosquitto 2.0.11 closes late and without a DISCONNECT")
        c = RawClient(self.port)
        c.send(connect(unique_id(), proto=5, keepalive=1))
        self.assertEqual(c.read_packet()[3], 0)
        got = c.read_packet(timeout=4)
        self.assertEqual(got[0] >> 4, DISCONNECT, got)
        self.assertEqual(got[2], 0x8D, "keep alive timeout")
        c.expect_closed()
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
