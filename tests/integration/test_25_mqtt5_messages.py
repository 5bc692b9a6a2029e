#!/usr/bin/python3
"""MQTT 5 message and session properties: Will Delay Interval, Message
Expiry Interval, Session Expiry Interval (also changed at DISCONNECT), and
the properties a broker passes through unchanged (payload format, content
type, response topic, correlation data, user properties), including to
MQTT 3.1 and 3.1.1 subscribers of the same message.

Timing-dependent cases use intervals of 1-2 s and bounded waits. Message
expiry counts whole seconds of wall-clock time (in midge and mosquitto), so
a message that must still be alive when it is first delivered gets 2 s, and
one that must be gone is waited for a second longer than its interval. The
same scenarios run against Debian's mosquitto:
    MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_25_mqtt5_messages.py
"""

import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (DISCONNECT, BrokerTestCase, Closed, SharedBrokerTestCase,  # noqa: E402
                       connected_client, describe, disconnect, is_mosquitto, main, parse_props,
                       parse_publish, parse_publish5, parse_v5, prop_bin, prop_str, prop_user,
                       prop_value, puback, pubcomp, publish, pubrec, pubrel, subscribe, suback,
                       unique_id)

# Property identifiers (MQTT 5 section 2.2.2.2).
PAYLOAD_FORMAT, MESSAGE_EXPIRY, CONTENT_TYPE = 0x01, 0x02, 0x03
RESPONSE_TOPIC, CORRELATION_DATA = 0x08, 0x09
SESSION_EXPIRY, WILL_DELAY, USER = 0x11, 0x18, 0x26

RC_DISCONNECT_WITH_WILL = 0x04
RC_UNSPECIFIED_ERROR = 0x80
RC_PROTOCOL_ERROR = 0x82
RC_SESSION_TAKEN_OVER = 0x8E


def prop_u32(pid, value):
    return bytes([pid]) + struct.pack("!I", value)


def prop_u8(pid, value):
    return bytes([pid, value])


def ids(props):
    return [pid for pid, _ in props]


def users(props):
    return [v for pid, v in props if pid == USER]


class _V5(SharedBrokerTestCase):
    """Raw MQTT 5 clients and the packets they get."""

    def v5(self, cid=None, clean=True, expiry=None, session_present=False, props=b"", **kw):
        """A connected MQTT 5 client (expiry: Session Expiry Interval, None = absent)."""
        if expiry is not None:
            props += prop_u32(SESSION_EXPIRY, expiry)
        return self.client(cid, proto=5, clean=clean, props=props,
                           session_present=session_present, **kw)

    def subscribed(self, filters, proto=5, **kw):
        """A client subscribed to [(filter, qos), ...]."""
        if proto == 5:
            c = self.v5(**kw)
        else:
            c = self.client(proto=proto, **kw)
        c.send(subscribe(1, filters, proto=proto))
        c.expect(suback(1, [q for _, q in filters], proto=proto))
        return c

    def get(self, c, timeout=None, ack=True):
        """The next PUBLISH c receives (MQTT 5), acknowledged unless told otherwise."""
        try:
            p = parse_publish5(c.read_packet(timeout))
        except Closed:
            raise AssertionError("connection closed, expected a PUBLISH")
        except OSError:
            raise AssertionError("timed out, expected a PUBLISH")
        if ack and p.qos == 1:
            c.send(puback(p.mid))
        elif ack and p.qos == 2:
            c.send(pubrec(p.mid))
            c.expect(pubrel(p.mid))
            c.send(pubcomp(p.mid))
        return p

    def send_publish(self, topic, payload, qos=1, retain=False, props=b"", proto=5, client=None):
        """Publishes from a fresh (or the given) client and completes the flow."""
        pub = client or (self.v5() if proto == 5 else self.client(proto=proto))
        pub.send(publish(topic, payload, qos=qos, retain=retain, mid=7 if qos else None,
                         proto=proto, props=props))
        if qos == 1:
            got = pub.read_packet()
            self.assertEqual(got[0] >> 4, 4, describe(got))
        elif qos == 2:
            got = pub.read_packet()
            self.assertEqual(got[0] >> 4, 5, describe(got))
            pub.send(pubrel(7))
            got = pub.read_packet()
            self.assertEqual(got[0] >> 4, 7, describe(got))
        pub.ping()
        return pub

    def drop(self, c):
        """Closes the connection without DISCONNECT (the will goes out)."""
        c.close()

    def end_session(self, cid):
        """Ends a persistent session left behind by a test."""
        c = self.v5(cid, clean=True)
        c.send(disconnect())
        c.close()


class WillDelay(_V5):
    """Will Delay Interval [MQTT-3.1.3-9], [MQTT-3.1.2-8]; DISCONNECT [MQTT-3.14.4-3]."""

    def setUp(self):
        self.will_topic = self.topic("/will")
        self.sub = self.subscribed([(self.will_topic, 1)])

    def willing(self, delay=None, expiry=None, will_props=b"", payload="gone", **kw):
        if delay is not None:
            will_props = prop_u32(WILL_DELAY, delay) + will_props
        return self.v5(expiry=expiry, will=(self.will_topic, payload, 1, False),
                       will_props=will_props, **kw)

    def expect_will(self, timeout=3.0, payload=b"gone"):
        p = self.get(self.sub, timeout=timeout)
        self.assertEqual((p.topic, p.payload), (self.will_topic, payload))
        return p

    def test_no_delay_publishes_at_close(self):
        self.drop(self.willing(expiry=10))
        t0 = time.monotonic()
        self.expect_will()
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_delay_zero_publishes_at_close(self):
        self.drop(self.willing(delay=0, expiry=10))
        t0 = time.monotonic()
        self.expect_will()
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_published_when_delay_expires(self):
        cid = unique_id("wd")
        self.drop(self.willing(delay=2, expiry=30, cid=cid))
        t0 = time.monotonic()
        self.sub.expect_nothing(1.2, "(the will waits for its delay)")
        self.expect_will(timeout=3.5)
        self.assertGreater(time.monotonic() - t0, 1.5)
        # The session itself lives on after its will went out.
        self.v5(cid, clean=False, expiry=0, session_present=True).send(disconnect())

    def test_reconnect_before_delay_cancels_will(self):
        cid = unique_id("wd")
        self.drop(self.willing(delay=1, expiry=30, cid=cid))
        time.sleep(0.3)
        back = self.v5(cid, clean=False, expiry=30, session_present=True)
        self.sub.expect_nothing(1.8, "(a new connection to the session cancels the will)")
        back.send(disconnect(proto=5, reason=0, props=prop_u32(SESSION_EXPIRY, 0)))
        back.expect_closed()
        self.sub.expect_nothing(0.3, "(normal disconnection of the new connection)")

    def test_reconnect_without_will_then_crash_sends_nothing(self):
        # The cancelled will does not come back with the next connection's end.
        cid = unique_id("wd")
        self.drop(self.willing(delay=1, expiry=30, cid=cid))
        back = self.v5(cid, clean=False, expiry=0, session_present=True)
        self.drop(back)
        self.sub.expect_nothing(1.6)

    def test_session_end_before_delay_publishes_will(self):
        # Whichever comes first: the session (1 s) ends before the delay (30 s).
        self.drop(self.willing(delay=30, expiry=1))
        t0 = time.monotonic()
        self.expect_will(timeout=4.0)
        self.assertLess(time.monotonic() - t0, 3.5)

    def test_session_ending_at_close_publishes_will_at_once(self):
        self.midge_only("mosquitto 2.0.11 waits for the whole delay although the session "
                        "ended at close (MQTT 5 [MQTT-3.1.2-8]: the delay or the session end, "
                        "whichever comes first)")
        self.drop(self.willing(delay=30, expiry=0))
        t0 = time.monotonic()
        self.expect_will()
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_disconnect_with_will_honours_delay(self):
        cid = unique_id("wd")
        c = self.willing(delay=1, expiry=30, cid=cid)
        c.send(disconnect(proto=5, reason=RC_DISCONNECT_WITH_WILL))
        c.expect_closed()
        t0 = time.monotonic()
        self.sub.expect_nothing(0.6, "(the will waits for its delay)")
        self.expect_will(timeout=3.0)
        self.assertGreater(time.monotonic() - t0, 0.6)
        self.end_session(cid)

    def test_disconnect_with_will_without_delay(self):
        c = self.willing(expiry=0)
        c.send(disconnect(proto=5, reason=RC_DISCONNECT_WITH_WILL))
        c.expect_closed()
        self.expect_will()

    def test_normal_disconnect_discards_delayed_will(self):
        cid = unique_id("wd")
        c = self.willing(delay=1, expiry=30, cid=cid)
        c.send(disconnect(proto=5, reason=0))
        c.expect_closed()
        self.sub.expect_nothing(1.6, "(DISCONNECT 0x00 deletes the will)")
        self.end_session(cid)

    def test_disconnect_error_reason_publishes_will(self):
        self.midge_only("mosquitto 2.0.11 publishes the will for DISCONNECT 0x04 only; "
                        "MQTT 5 [MQTT-3.14.4-3] deletes it for 0x00 alone")
        c = self.willing(expiry=0)
        c.send(disconnect(proto=5, reason=RC_UNSPECIFIED_ERROR))
        c.expect_closed()
        self.expect_will()

    def test_clean_start_reconnect_ends_session_and_publishes_will(self):
        # The session ends because the new connection starts clean: the will
        # goes out then, whatever its delay (MQTT 5 section 3.1.2.5).
        self.midge_only("mosquitto 2.0.11 never publishes a waiting will whose session a "
                        "clean start ends")
        cid = unique_id("wd")
        self.drop(self.willing(delay=30, expiry=30, cid=cid))
        time.sleep(0.2)
        self.sub.expect_nothing(0.2)
        new = self.v5(cid, clean=True)
        self.expect_will(timeout=2.0)
        new.send(disconnect())

    def taken_over(self, old):
        """The old connection is told "session taken over" and closed [MQTT-3.1.4-3]."""
        if is_mosquitto():
            old.expect_closed()  # mosquitto 2.0.11 closes it without a DISCONNECT
            return
        got = parse_v5(old.read_packet())
        self.assertEqual((got.type, got.reason), (DISCONNECT, RC_SESSION_TAKEN_OVER))
        old.expect_closed()

    def test_takeover_continuing_session_cancels_delayed_will(self):
        cid = unique_id("wd")
        old = self.willing(delay=1, expiry=30, cid=cid)
        new = self.v5(cid, clean=False, expiry=30, session_present=True)
        self.taken_over(old)
        self.sub.expect_nothing(1.6, "(the session goes on in the new connection)")
        new.send(disconnect(proto=5, reason=0, props=prop_u32(SESSION_EXPIRY, 0)))

    def test_takeover_continuing_session_without_delay(self):
        # The specification reads both ways here: [MQTT-3.1.2-8] drops the
        # will when a new connection for the client id opens before the delay
        # (0) has elapsed, its explanatory text sends a will without delay.
        # Like mosquitto (and like MQTT 3.1.1 clean_session=0, test_05),
        # midge keeps quiet: the session goes on.
        cid = unique_id("wd")
        old = self.willing(expiry=30, cid=cid)
        new = self.v5(cid, clean=False, expiry=30, session_present=True)
        self.taken_over(old)
        self.sub.expect_nothing(0.6)
        new.send(disconnect(proto=5, reason=0, props=prop_u32(SESSION_EXPIRY, 0)))

    def test_takeover_clean_start_publishes_will(self):
        self.midge_only("mosquitto 2.0.11 drops a delayed will when a clean start ends its "
                        "session (MQTT 5 section 3.1.2.5: it is sent because the session ends)")
        cid = unique_id("wd")
        old = self.willing(delay=30, expiry=30, cid=cid)
        new = self.v5(cid, clean=True)
        self.taken_over(old)
        self.expect_will(timeout=2.0)
        new.send(disconnect())

    def test_will_properties_forwarded_without_will_delay(self):
        props = (prop_u8(PAYLOAD_FORMAT, 1) + prop_str(CONTENT_TYPE, "text/plain")
                 + prop_str(RESPONSE_TOPIC, "r/t") + prop_bin(CORRELATION_DATA, b"\x00\x01")
                 + prop_user("k", "1") + prop_user("k", "2"))
        self.drop(self.willing(delay=0, expiry=0, will_props=props))
        p = self.expect_will()
        self.assertNotIn(WILL_DELAY, ids(p.props), "the Will Delay Interval is not forwarded")
        self.assertEqual(prop_value(p.props, PAYLOAD_FORMAT), 1)
        self.assertEqual(prop_value(p.props, CONTENT_TYPE), b"text/plain")
        self.assertEqual(prop_value(p.props, RESPONSE_TOPIC), b"r/t")
        self.assertEqual(prop_value(p.props, CORRELATION_DATA), b"\x00\x01")
        self.assertEqual(users(p.props), [(b"k", b"1"), (b"k", b"2")])

    def test_will_message_expiry_counts_from_publication(self):
        # The will's Message Expiry Interval is its lifetime once published,
        # however long its connection lasted (section 3.1.3.2.4).
        c = self.willing(expiry=0, will_props=prop_u32(MESSAGE_EXPIRY, 2))
        time.sleep(2.5)
        self.drop(c)
        p = self.expect_will()
        self.assertIn(prop_value(p.props, MESSAGE_EXPIRY), (1, 2))

    def test_delayed_will_to_offline_subscriber_with_expiry(self):
        # A delayed will queued for an offline session keeps its own expiry.
        t = self.will_topic
        sid = unique_id("wsub")
        s = self.subscribed([(t, 1)], cid=sid, clean=False, expiry=30)
        s.send(disconnect())
        s.expect_closed()
        self.drop(self.willing(delay=1, expiry=30, will_props=prop_u32(MESSAGE_EXPIRY, 20)))
        self.expect_will(timeout=3.0)  # the online subscriber: it was published
        s = self.v5(sid, clean=False, expiry=0, session_present=True)
        p = self.get(s)
        self.assertEqual(p.topic, t)
        self.assertTrue(17 <= prop_value(p.props, MESSAGE_EXPIRY) <= 20, p.props)


class MessageExpiry(_V5):
    """Message Expiry Interval [MQTT-3.3.2-5], [MQTT-3.3.2-6]."""

    def offline(self, filters, **kw):
        cid = unique_id("mx")
        c = self.subscribed(filters, cid=cid, clean=False, expiry=30, **kw)
        c.send(disconnect())
        c.expect_closed()
        self.addCleanup(self.end_session, cid)
        return cid

    def test_online_subscriber_gets_the_interval(self):
        t = self.topic()
        sub = self.subscribed([(t, 1)])
        self.send_publish(t, "m", props=prop_u32(MESSAGE_EXPIRY, 30))
        p = self.get(sub)
        self.assertIn(prop_value(p.props, MESSAGE_EXPIRY), (29, 30))

    def test_no_interval_means_none_forwarded(self):
        t = self.topic()
        sub = self.subscribed([(t, 1)])
        self.send_publish(t, "m")
        self.assertNotIn(MESSAGE_EXPIRY, ids(self.get(sub).props))

    def test_queued_messages_expire_while_offline(self):
        t = self.topic()
        cid = self.offline([(t, 1)])
        pub = self.v5()
        self.send_publish(t, "short", props=prop_u32(MESSAGE_EXPIRY, 1), client=pub)
        self.send_publish(t, "forever", client=pub)
        self.send_publish(t, "long", props=prop_u32(MESSAGE_EXPIRY, 60), client=pub)
        self.send_publish(t, "short-qos2", qos=2, props=prop_u32(MESSAGE_EXPIRY, 1), client=pub)
        time.sleep(2.2)
        c = self.v5(cid, clean=False, expiry=30, session_present=True)
        got = [self.get(c) for _ in range(2)]
        self.assertEqual([p.payload for p in got], [b"forever", b"long"])
        self.assertNotIn(MESSAGE_EXPIRY, ids(got[0].props))
        self.assertTrue(56 <= prop_value(got[1].props, MESSAGE_EXPIRY) <= 58, got[1].props)
        c.expect_nothing(0.3, "(expired messages are not sent)")

    def test_interval_reduced_by_waiting_time(self):
        t = self.topic()
        cid = self.offline([(t, 2)])
        self.send_publish(t, "m", qos=2, props=prop_u32(MESSAGE_EXPIRY, 10))
        time.sleep(1.5)
        c = self.v5(cid, clean=False, expiry=30, session_present=True)
        p = self.get(c)
        left = prop_value(p.props, MESSAGE_EXPIRY)
        self.assertTrue(7 <= left <= 9, "Message Expiry Interval %s after 1.5 s of 10" % left)

    def test_inflight_message_continues_after_expiry(self):
        # Onward delivery started (the PUBLISH was sent), so the QoS 1 flow
        # continues after a reconnect even though the interval has passed.
        self.midge_only("mosquitto 2.0.11 drops an expired message it had already sent "
                        "(MQTT 5 [MQTT-3.3.2-5] deletes only those not yet sent)")
        t = self.topic()
        cid = unique_id("mx")
        c = self.subscribed([(t, 1)], cid=cid, clean=False, expiry=30)
        self.send_publish(t, "sent", props=prop_u32(MESSAGE_EXPIRY, 2))
        first = self.get(c, ack=False)
        self.assertEqual(first.payload, b"sent")
        c.close()
        time.sleep(3.1)
        c = self.v5(cid, clean=False, expiry=0, session_present=True)
        raw = c.read_packet()
        again = parse_publish5(raw)
        self.assertTrue(raw[0] & 0x08, "re-sent with DUP: %s" % describe(raw))
        self.assertEqual((again.payload, again.mid), (b"sent", first.mid))
        c.send(puback(again.mid))
        c.ping()

    def test_retained_message_expires(self):
        t = self.topic()
        self.send_publish(t, "kept", retain=True, props=prop_u32(MESSAGE_EXPIRY, 2))
        early = self.subscribed([(t, 1)])
        p = self.get(early)
        self.assertTrue(p.retain)
        self.assertIn(prop_value(p.props, MESSAGE_EXPIRY), (1, 2))
        time.sleep(3.1)
        late = self.subscribed([(t, 1)])
        late.expect_nothing(0.5, "(an expired retained message is not sent)")

    def test_retained_interval_reduced(self):
        t = self.topic()
        self.send_publish(t, "r", retain=True, props=prop_u32(MESSAGE_EXPIRY, 30))
        time.sleep(1.2)
        p = self.get(self.subscribed([(t, 1)]))
        self.assertTrue(p.retain)
        self.assertTrue(27 <= prop_value(p.props, MESSAGE_EXPIRY) <= 29, p.props)
        self.send_publish(t, "", retain=True)

    def test_expired_retained_replaced_and_cleared(self):
        # An expired retained message leaves room for the next one on its topic.
        t = self.topic()
        self.send_publish(t, "old", retain=True, props=prop_u32(MESSAGE_EXPIRY, 1))
        time.sleep(2.2)
        self.send_publish(t, "new", retain=True)
        p = self.get(self.subscribed([(t, 1)]))
        self.assertEqual((p.payload, p.retain), (b"new", True))
        self.send_publish(t, "", retain=True)
        self.subscribed([(t, 1)]).expect_nothing(0.3)

    def test_v311_offline_subscriber_also_loses_expired_message(self):
        t = self.topic()
        cid = unique_id("mx3")
        c = self.client(cid, clean=False).subscribe_ok([(t, 1)])
        c.send(disconnect())
        c.expect_closed()
        self.send_publish(t, "short", props=prop_u32(MESSAGE_EXPIRY, 1))
        self.send_publish(t, "plain")
        time.sleep(2.2)
        c = self.client(cid, clean=False, session_present=True)
        mid = c.expect_publish(t, "plain", qos=1)
        c.send(puback(mid))
        c.ping()
        c.send(disconnect())
        self.client(cid, clean=True).send(disconnect())


class QueueLimits(BrokerTestCase):
    broker_options = {"max_queued_messages": 2}

    def test_expired_messages_do_not_take_queue_room(self):
        self.midge_only("mosquitto 2.0.11 counts expired messages against max_queued_messages "
                        "until the client comes back")
        t = self.topic()
        cid = unique_id("mq")
        c = connected_client5(self.port, cid, clean=False, expiry=30)
        c.send(subscribe(1, [(t, 1)], proto=5))
        c.expect(suback(1, [1], proto=5))
        c.send(disconnect())
        c.close()
        pub = connected_client5(self.port, unique_id("p"))
        self.addCleanup(pub.close)
        for mid, (payload, props) in enumerate((("a", prop_u32(MESSAGE_EXPIRY, 1)),
                                                ("b", prop_u32(MESSAGE_EXPIRY, 1))), 1):
            pub.send(publish(t, payload, qos=1, mid=mid, proto=5, props=props))
            pub.read_packet()
        time.sleep(2.2)
        pub.send(publish(t, "fresh", qos=1, mid=3, proto=5))
        pub.read_packet()
        pub.ping()
        c = connected_client5(self.port, cid, clean=False, expiry=0, session_present=True)
        self.addCleanup(c.close)
        p = parse_publish5(c.read_packet())
        self.assertEqual(p.payload, b"fresh")
        c.send(puback(p.mid))
        c.expect_nothing(0.3)


def connected_client5(port, cid, clean=True, expiry=None, session_present=False):
    props = prop_u32(SESSION_EXPIRY, expiry) if expiry is not None else b""
    return connected_client(port, cid, proto=5, clean=clean, props=props,
                            session_present=session_present)


class SessionExpiry(_V5):
    """Session Expiry Interval at CONNECT (section 3.1.2.11.2) and DISCONNECT [MQTT-3.14.2-2]."""

    def persistent(self, expiry, t=None):
        cid = unique_id("sx")
        t = t or self.topic()
        c = self.subscribed([(t, 1)], cid=cid, clean=False, expiry=expiry)
        return cid, t, c

    def test_session_kept_within_interval(self):
        cid, t, c = self.persistent(10)
        c.send(disconnect())
        c.expect_closed()
        self.send_publish(t, "queued")
        c = self.v5(cid, clean=False, expiry=0, session_present=True)
        self.assertEqual(self.get(c).payload, b"queued")
        c.send(disconnect())

    def test_session_expires_after_interval(self):
        cid, t, c = self.persistent(1)
        c.send(disconnect())
        c.expect_closed()
        time.sleep(2.2)
        c = self.v5(cid, clean=False, expiry=0, session_present=False)
        self.send_publish(t, "after")
        c.expect_nothing(0.3, "(the expired session's subscription is gone)")

    def test_absent_interval_ends_session_at_close(self):
        cid, t, c = self.persistent(None)
        c.close()
        time.sleep(0.2)
        self.v5(cid, clean=False, session_present=False).send(disconnect())

    def test_disconnect_extends_interval(self):
        cid, t, c = self.persistent(1)
        c.send(disconnect(proto=5, reason=0, props=prop_u32(SESSION_EXPIRY, 30)))
        c.expect_closed()
        time.sleep(2.0)
        self.v5(cid, clean=False, expiry=0, session_present=True).send(disconnect())

    def test_disconnect_sets_zero(self):
        cid, t, c = self.persistent(30)
        c.send(disconnect(proto=5, reason=0, props=prop_u32(SESSION_EXPIRY, 0)))
        c.expect_closed()
        time.sleep(0.2)
        self.v5(cid, clean=False, session_present=False).send(disconnect())

    def test_disconnect_shortens_interval(self):
        cid, t, c = self.persistent(60)
        c.send(disconnect(proto=5, reason=0, props=prop_u32(SESSION_EXPIRY, 1)))
        c.expect_closed()
        time.sleep(2.2)
        self.v5(cid, clean=False, session_present=False).send(disconnect())

    def test_disconnect_without_interval_keeps_connect_value(self):
        cid, t, c = self.persistent(30)
        c.send(disconnect(proto=5, reason=0, props=prop_user("a", "b")))
        c.expect_closed()
        self.v5(cid, clean=False, expiry=0, session_present=True).send(disconnect())

    def test_nonzero_at_disconnect_after_zero_is_protocol_error(self):
        # [MQTT-3.14.2-2]: the server answers with DISCONNECT 0x82, the
        # connection closes as for any protocol error (the will goes out) and
        # the session still ends.
        will_topic = self.topic("/will")
        sub = self.subscribed([(will_topic, 1)])
        cid = unique_id("sx")
        c = self.v5(cid, clean=False, expiry=0, will=(will_topic, "w", 1, False))
        c.send(disconnect(proto=5, reason=0, props=prop_u32(SESSION_EXPIRY, 30)))
        got = parse_v5(c.read_packet())
        self.assertEqual((got.type, got.reason), (DISCONNECT, RC_PROTOCOL_ERROR))
        c.expect_closed()
        p = self.get(sub)
        self.assertEqual(p.payload, b"w")
        self.v5(cid, clean=False, session_present=False).send(disconnect())

    def test_v311_clean_session_zero_unaffected(self):
        cid = unique_id("sx3")
        t = self.topic()
        c = self.client(cid, clean=False).subscribe_ok([(t, 1)])
        c.send(disconnect())
        c.expect_closed()
        time.sleep(1.2)
        c = self.client(cid, clean=False, session_present=True)
        c.send(disconnect())
        self.client(cid, clean=True).send(disconnect())


class PassThrough(_V5):
    """Properties forwarded unaltered: payload format [MQTT-3.3.2-4], response topic
    [MQTT-3.3.2-15], correlation data [MQTT-3.3.2-16], user properties in order
    [MQTT-3.3.2-17], [MQTT-3.3.2-18], content type [MQTT-3.3.2-20]; older protocol
    versions get packets of their own."""

    def test_payload_format_and_content_type(self):
        t = self.topic()
        sub = self.subscribed([(t, 1)])
        props = (prop_u8(PAYLOAD_FORMAT, 1)
                 + prop_str(CONTENT_TYPE, "application/json; charset=utf-8"))
        self.send_publish(t, '{"a": 1}', props=props)
        p = self.get(sub)
        self.assertEqual(p.payload, b'{"a": 1}')
        self.assertEqual(prop_value(p.props, PAYLOAD_FORMAT), 1)
        self.assertEqual(prop_value(p.props, CONTENT_TYPE), b"application/json; charset=utf-8")

    def test_payload_format_zero_kept(self):
        t = self.topic()
        sub = self.subscribed([(t, 0)])
        self.send_publish(t, b"\xff\x00", qos=0, props=prop_u8(PAYLOAD_FORMAT, 0))
        p = self.get(sub)
        self.assertEqual((p.payload, prop_value(p.props, PAYLOAD_FORMAT)), (b"\xff\x00", 0))

    def test_user_properties_in_order_with_repeated_names(self):
        t = self.topic()
        sub = self.subscribed([(t, 1)])
        pairs = [("a", "1"), ("b", "2"), ("a", "3"), ("a", "1"), ("", ""), ("ünï", "cödé")]
        props = b"".join(prop_user(k, v) for k, v in pairs)
        self.send_publish(t, "m", props=props)
        p = self.get(sub)
        self.assertEqual(users(p.props), [(k.encode(), v.encode()) for k, v in pairs])

    def test_all_forwardable_properties_keep_their_order(self):
        t = self.topic()
        sub = self.subscribed([(t, 2)])
        props = (prop_user("first", "1") + prop_bin(CORRELATION_DATA, b"\x00id\xff")
                 + prop_str(CONTENT_TYPE, "ct") + prop_user("mid", "2")
                 + prop_str(RESPONSE_TOPIC, "reply/here") + prop_u8(PAYLOAD_FORMAT, 1)
                 + prop_user("last", "3"))
        self.send_publish(t, "m", qos=2, props=props)
        p = self.get(sub)
        want, _ = parse_props(bytes([len(props)]) + props, 0)
        self.assertEqual(p.props, want)

    def test_request_response(self):
        # A requester asks on a request topic with a response topic and
        # correlation data; the responder answers there with the same
        # correlation data (section 4.10).
        req_t, resp_t = self.topic("/req"), self.topic("/resp")
        requester = self.subscribed([(resp_t, 1)])
        responder = self.subscribed([(req_t, 1)])
        self.send_publish(req_t, "what time", client=requester,
                          props=(prop_str(RESPONSE_TOPIC, resp_t)
                                 + prop_bin(CORRELATION_DATA, b"\x01\x02")))
        q = self.get(responder)
        self.assertEqual(prop_value(q.props, RESPONSE_TOPIC).decode(), resp_t)
        corr = prop_value(q.props, CORRELATION_DATA)
        self.assertEqual(corr, b"\x01\x02")
        self.send_publish(prop_value(q.props, RESPONSE_TOPIC).decode(), "noon", client=responder,
                          props=prop_bin(CORRELATION_DATA, corr))
        a = self.get(requester)
        self.assertEqual((a.topic, a.payload, prop_value(a.props, CORRELATION_DATA)),
                         (resp_t, b"noon", b"\x01\x02"))

    def test_request_response_with_paho(self):
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        req_t, resp_t = self.topic("/req"), self.topic("/resp")
        got = {}
        done = threading.Event()

        def client(name):
            c = mqtt.Client(client_id=unique_id(name), protocol=mqtt.MQTTv5)
            connected = threading.Event()
            subscribed = threading.Event()
            c.on_connect = lambda *a: connected.set()
            c.on_subscribe = lambda *a: subscribed.set()
            c.connect("127.0.0.1", self.port)
            c.loop_start()
            self.addCleanup(c.loop_stop)
            self.addCleanup(c.disconnect)
            self.assertTrue(connected.wait(5))
            return c, subscribed

        def on_request(c, userdata, msg):
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = msg.properties.CorrelationData
            props.UserProperty = [("echo", msg.payload.decode())]
            c.publish(msg.properties.ResponseTopic, b"pong", qos=1, properties=props)

        def on_response(c, userdata, msg):
            got["msg"] = msg
            done.set()

        responder, rs = client("responder")
        responder.on_message = on_request
        responder.subscribe(req_t, qos=1)
        requester, qs = client("requester")
        requester.on_message = on_response
        requester.subscribe(resp_t, qos=1)
        self.assertTrue(rs.wait(5) and qs.wait(5))
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = resp_t
        props.CorrelationData = b"req-42"
        props.ContentType = "text/plain"
        props.PayloadFormatIndicator = 1
        requester.publish(req_t, b"ping", qos=1, properties=props)
        self.assertTrue(done.wait(5), "no response")
        msg = got["msg"]
        self.assertEqual((msg.topic, msg.payload), (resp_t, b"pong"))
        self.assertEqual(msg.properties.CorrelationData, b"req-42")
        self.assertEqual(msg.properties.UserProperty, [("echo", "ping")])

    def test_retained_message_keeps_properties(self):
        t = self.topic()
        props = (prop_str(CONTENT_TYPE, "ct") + prop_user("k", "v")
                 + prop_bin(CORRELATION_DATA, b"c"))
        self.send_publish(t, "r", retain=True, props=props)
        p = self.get(self.subscribed([(t, 1)]))
        self.assertTrue(p.retain)
        self.assertEqual(prop_value(p.props, CONTENT_TYPE), b"ct")
        self.assertEqual(prop_value(p.props, CORRELATION_DATA), b"c")
        self.assertEqual(users(p.props), [(b"k", b"v")])
        self.send_publish(t, "", retain=True)

    def test_mixed_protocol_subscribers(self):
        # One MQTT 5 message with properties to an MQTT 3.1 (MQIsdp), a 3.1.1
        # and a 5.0 subscriber: each gets a valid packet of its own version,
        # the older ones without any property.
        t = self.topic()
        v31 = self.subscribed([(t, 1)], proto=3)
        v311 = self.subscribed([(t, 1)], proto=4)
        v5 = self.subscribed([(t, 1)], proto=5)
        props = (prop_u8(PAYLOAD_FORMAT, 1) + prop_str(CONTENT_TYPE, "text/plain")
                 + prop_str(RESPONSE_TOPIC, "r") + prop_bin(CORRELATION_DATA, b"c")
                 + prop_user("k", "v") + prop_u32(MESSAGE_EXPIRY, 60))
        self.send_publish(t, "hello", props=props)
        for c in (v31, v311):
            raw = c.read_packet()
            p = parse_publish(raw)
            self.assertEqual((p.topic, p.payload, p.qos), (t.encode(), b"hello", 1), describe(raw))
            # Exactly: header, topic, packet id, payload; nothing in between.
            self.assertEqual(raw, publish(t, "hello", qos=1, mid=p.mid), describe(raw))
            c.send(puback(p.mid))
            c.ping()
        p = self.get(v5)
        self.assertEqual(p.payload, b"hello")
        self.assertEqual(users(p.props), [(b"k", b"v")])
        self.assertEqual(prop_value(p.props, CONTENT_TYPE), b"text/plain")
        self.assertIn(prop_value(p.props, MESSAGE_EXPIRY), (59, 60))

    def test_v311_message_to_v5_subscriber(self):
        t = self.topic()
        v5 = self.subscribed([(t, 1)])
        self.send_publish(t, "old", proto=4)
        raw = v5.read_packet()
        p = parse_publish5(raw)
        self.assertEqual((p.payload, p.props), (b"old", []), describe(raw))
        v5.send(puback(p.mid))
        v5.ping()


if __name__ == "__main__":
    main()
