#!/usr/bin/python3
"""PUBLISH flows (QoS 0/1/2 both ways), retransmission, ordering, PUBLISH
errors and the size / retain options.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_02_publish.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (AUTH, PUBACK, PUBLISH, PUBREL, SUBSCRIBE, SharedBrokerTestCase,  # noqa: E402
                       connack, connect, is_mosquitto, main, mqtt_str, packet,
                       pingresp, puback, pubcomp, publish, pubrec, pubrel, suback, unique_id,
                       unsuback)


class PublishFlows(SharedBrokerTestCase):

    def test_qos0_both_directions(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 2)])
        pub = self.client()
        pub.send(publish(t, "zero"))
        sub.expect_publish(t, "zero", qos=0)
        pub.ping()
        sub.ping()

    def test_qos1_both_directions(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 2)])
        pub = self.client()
        pub.send(publish(t, "one", qos=1, mid=7))
        pub.expect(puback(7))
        mid = sub.expect_publish(t, "one", qos=1)
        sub.send(puback(mid))
        sub.ping()
        pub.ping()

    def test_qos2_both_directions(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 2)])
        pub = self.client()
        pub.send(publish(t, "two", qos=2, mid=8))
        pub.expect(pubrec(8))
        pub.send(pubrel(8))
        pub.expect(pubcomp(8))
        mid = sub.expect_publish(t, "two", qos=2)
        sub.send(pubrec(mid))
        sub.expect(pubrel(mid))
        sub.send(pubcomp(mid))
        sub.ping()
        pub.ping()

    def test_qos_downgraded_to_granted(self):
        t = self.topic()
        sub0 = self.client().subscribe_ok([(t, 0)])
        sub1 = self.client().subscribe_ok([(t, 1)])
        pub = self.client()
        pub.send(publish(t, "down", qos=2, mid=3))
        pub.expect(pubrec(3))
        pub.send(pubrel(3))
        pub.expect(pubcomp(3))
        sub0.expect_publish(t, "down", qos=0)
        sub1.send(puback(sub1.expect_publish(t, "down", qos=1)))
        sub0.ping()
        sub1.ping()

    def test_qos2_duplicate_not_delivered_twice(self):
        # mosquitto delivers a QoS 2 message on PUBREL; midge may deliver on
        # PUBLISH: only "exactly one copy once the flow is done" is asserted.
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 0)])
        pub = self.client()
        pub.send(publish(t, "once", qos=2, mid=21))
        pub.expect(pubrec(21))
        pub.send(publish(t, "once", qos=2, mid=21, dup=True))
        pub.expect(pubrec(21))
        pub.send(pubrel(21))
        pub.expect(pubcomp(21))
        sub.expect_publish(t, "once", qos=0)
        sub.expect_nothing(0.3)

    def test_pubrel_for_unknown_id_gets_pubcomp(self):
        pub = self.client()
        pub.send(pubrel(99))
        pub.expect(pubcomp(99))
        pub.ping()

    def test_dup_on_qos0_accepted_and_forwarded_without_dup(self):
        # Spec: DUP must be 0 for QoS 0 [MQTT-3.3.1-2], but no close is
        # required; mosquitto accepts it and forwards with DUP 0.
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 1)])
        pub = self.client()
        pub.send(publish(t, "d", qos=0, dup=True))
        sub.expect_publish(t, "d", qos=0)
        pub.ping()

    def test_retransmission_with_dup_on_session_resume(self):
        t = self.topic()
        cid = unique_id("resume")
        sub = self.client(cid, clean=False).subscribe_ok([(t, 2)])
        pub = self.client()
        pub.send(publish(t, "q1", qos=1, mid=1))
        pub.expect(puback(1))
        pub.send(publish(t, "q2", qos=2, mid=2))
        pub.expect(pubrec(2))
        pub.send(pubrel(2))
        pub.expect(pubcomp(2))
        m1 = sub.expect_publish(t, "q1", qos=1)
        m2 = sub.expect_publish(t, "q2", qos=2)
        sub.close()  # no acknowledgement

        sub = self.client(cid, clean=False, session_present=True)
        sub.expect_publish(t, "q1", qos=1, dup=True, mid=m1)
        sub.expect_publish(t, "q2", qos=2, dup=True, mid=m2)
        sub.send(puback(m1))
        sub.send(pubrec(m2))
        sub.expect(pubrel(m2))
        sub.close()  # PUBREL not completed

        sub = self.client(cid, clean=False, session_present=True)
        sub.expect(pubrel(m2), msg="(PUBREL re-sent, not the PUBLISH)")
        sub.send(pubcomp(m2))
        sub.ping()
        sub.close()

        sub = self.client(cid, clean=True)
        sub.ping()

    def test_qos1_stream_order(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 1)])
        pub = self.client()
        n = 100
        pub.send(b"".join(publish(t, "n%03d" % i, qos=1, mid=i + 1) for i in range(n)))
        for i in range(n):
            mid = sub.expect_publish(t, "n%03d" % i, qos=1, msg="(message %d)" % i)
            sub.send(puback(mid))
        for i in range(n):
            pub.expect(puback(i + 1))
        sub.ping()

    # Errors that close the connection -----------------------------------------
    def assert_closes(self, data, cid=None):
        with self.witness().around():
            c = self.client(cid)
            c.send(data)
            c.expect_closed()

    def test_publish_qos3_closes(self):
        self.assert_closes(packet(PUBLISH, 0x06, mqtt_str("q3/t") + b"\x00\x01p"))

    def test_publish_wildcard_topic_closes(self):
        for topic in ("a/+", "a/#", "+", "#"):
            for qos in (0, 1):
                with self.subTest(topic=topic, qos=qos):
                    self.assert_closes(publish(topic, "p", qos=qos, mid=1 if qos else None))

    def test_publish_empty_topic_closes(self):
        self.assert_closes(publish("", "p"))

    def test_publish_packet_id_0_closes(self):
        for qos in (1, 2):
            with self.subTest(qos=qos):
                self.assert_closes(publish("pid0/t", "p", qos=qos, mid=0))

    def test_publish_invalid_topic_encoding_closes(self):
        for name, topic in (("invalid UTF-8", b"a/\xff"), ("U+0000", b"a/\x00b"),
                            ("surrogate", b"a/\xed\xa0\x80")):
            with self.subTest(case=name):
                self.assert_closes(publish(topic, "p"))

    def test_reserved_flags_wrong_closes(self):
        cases = {
            "PUBREL flags 0": packet(PUBREL, 0, b"\x00\x01"),
            "SUBSCRIBE flags 0": packet(SUBSCRIBE, 0, b"\x00\x01" + mqtt_str("f/t") + b"\x00"),
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                self.assert_closes(data)

    def test_puback_reserved_flags(self):
        data = packet(PUBACK, 0x02, b"\x00\x01")
        if is_mosquitto():
            # mosquitto 2.0.11 does not check PUBACK's flags (nor PUBREC's or
            # PUBCOMP's). midge follows [MQTT-2.2.2-2]: invalid flags close.
            c = self.client()
            c.send(data)
            c.ping()
        else:
            self.assert_closes(data)

    def test_remaining_length_of_five_bytes_closes(self):
        self.assert_closes(b"\x30\xff\xff\xff\xff\x01")
        self.assert_closes(b"\x30\x80\x80\x80\x80\x00")

    def test_server_only_packets_from_client(self):
        self.assert_closes(connack(0))
        self.assert_closes(packet(AUTH, 0))
        self.assert_closes(packet(AUTH, 0, b"\x00\x00"))
        for name, data in (("SUBACK", suback(1, [0])), ("UNSUBACK", unsuback(1)),
                           ("PINGRESP", pingresp())):
            with self.subTest(packet=name):
                if is_mosquitto():
                    # mosquitto 2.0.11 silently ignores SUBACK, UNSUBACK and
                    # PINGRESP from a client; midge treats them as the
                    # protocol violation they are and closes.
                    c = self.client()
                    c.send(data)
                    c.ping()
                else:
                    self.assert_closes(data)


class UpgradeOutgoingQos(SharedBrokerTestCase):
    broker_options = {"upgrade_outgoing_qos": True}

    def test_qos0_publish_delivered_at_granted_qos(self):
        t = self.topic()
        sub1 = self.client().subscribe_ok([(t, 1)])
        sub2 = self.client().subscribe_ok([(t, 2)])
        pub = self.client()
        pub.send(publish(t, "up", qos=0))
        sub1.send(puback(sub1.expect_publish(t, "up", qos=1)))
        mid = sub2.expect_publish(t, "up", qos=2)
        sub2.send(pubrec(mid))
        sub2.expect(pubrel(mid))
        sub2.send(pubcomp(mid))
        sub1.ping()
        sub2.ping()


class MessageSizeLimit(SharedBrokerTestCase):
    broker_options = {"message_size_limit": 10}

    def test_payload_at_limit_delivered(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 0)])
        pub = self.client()
        pub.send(publish(t, "0123456789", qos=1, mid=1))
        pub.expect(puback(1))
        sub.expect_publish(t, "0123456789")

    def test_oversized_payload_dropped_but_acknowledged(self):
        # mosquitto (3.1.1 publisher): the connection stays open, QoS 1 gets
        # its PUBACK and QoS 2 its PUBREC/PUBCOMP, but nothing is delivered
        # or retained.
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 2)])
        pub = self.client()
        big = "0123456789A"
        pub.send(publish(t, big, qos=0))
        pub.send(publish(t, big, qos=1, mid=2))
        pub.expect(puback(2))
        pub.send(publish(t, big, qos=2, mid=3))
        pub.expect(pubrec(3))
        pub.send(pubrel(3))
        pub.expect(pubcomp(3))
        pub.send(publish(t, big, qos=1, mid=4, retain=True))
        pub.expect(puback(4))
        pub.ping()
        sub.expect_nothing(0.3)
        late = self.client()
        late.subscribe_ok([(t, 2)])
        late.expect_nothing(0.3, msg="(an oversized message must not be retained)")

    def test_oversized_will_refused_rc_5(self):
        # mosquitto: CONNACK rc 5 (not authorised) then close; log
        # "Client will connected with too large Will payload".
        with self.witness().around():
            c = self.raw()
            c.send(connect("bigwill", will=("w/t", "0123456789A", 0, False)))
            c.expect(connack(5))
            c.expect_closed()
        self.client(will=("w/t", "0123456789", 0, False)).ping()


class MaxPacketSize(SharedBrokerTestCase):
    # mosquitto compares remaining length + 1 with max_packet_size (it does
    # not count the length bytes); midge counts the whole packet. The tests
    # stay clear of the 1-4 bytes where the two differ.
    broker_options = {"max_packet_size": 64}

    def test_packet_of_max_size_accepted(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 0)])
        pub = self.client()
        data = publish(t, "x" * (64 - len(publish(t, ""))))
        self.assertEqual(len(data), 64)
        pub.send(data)
        sub.expect(data)

    def test_oversized_packet_closes(self):
        t = self.topic()
        with self.witness().around():
            c = self.client()
            c.send(publish(t, "x" * 100))
            c.expect_closed()

    def test_oversized_length_closes_before_body(self):
        with self.witness().around():
            c = self.client()
            c.send(b"\x30\x7f")  # announces 127 bytes, sends none of them
            c.expect_closed()

    def test_oversized_connect_closes_without_connack(self):
        with self.witness().around():
            c = self.raw()
            c.send(connect("x" * 70))
            c.expect_closed()


class RetainUnavailable(SharedBrokerTestCase):
    broker_options = {"retain_available": False}

    def test_retained_publish_closes(self):
        # mosquitto (3.1.1 publisher): closes the connection, no PUBACK, the
        # message is neither delivered nor stored (log "disconnected due to
        # QoS too high or retain not supported" for the CONNECT case).
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 1)])
        for qos in (0, 1):
            with self.subTest(qos=qos), self.witness().around():
                c = self.client()
                c.send(publish(t, "r", qos=qos, retain=True, mid=5 if qos else None))
                c.expect_closed()
        sub.expect_nothing(0.3)

    def test_non_retained_publish_works(self):
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 1)])
        pub = self.client()
        pub.send(publish(t, "plain", qos=1, mid=1))
        pub.expect(puback(1))
        sub.send(puback(sub.expect_publish(t, "plain", qos=1)))

    def test_retained_will_refused(self):
        with self.witness().around():
            c = self.raw()
            c.send(connect("rwill", will=("w/t", "x", 0, True)))
            c.expect_closed()


if __name__ == "__main__":
    main()
