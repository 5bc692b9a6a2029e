#!/usr/bin/python3
"""Will messages: when they are published, and how (retain, QoS).

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_05_will.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (DISCONNECT, SharedBrokerTestCase, connack, connect, disconnect,  # noqa: E402
                       is_mosquitto, main, packet, puback, pubcomp, publish, pubrec, pubrel,
                       unique_id)


class Will(SharedBrokerTestCase):

    def setUp(self):
        self.will_topic = self.topic("/will")
        self.sub = self.client().subscribe_ok([(self.will_topic, 2)])

    def willing(self, qos=1, retain=False, payload="gone", **kw):
        return self.client(will=(self.will_topic, payload, qos, retain), **kw)

    def expect_will(self, payload="gone", qos=1, sub=None, timeout=3.0):
        sub = sub or self.sub
        mid = sub.expect_publish(self.will_topic, payload, qos=qos, timeout=timeout)
        if qos == 1:
            sub.send(puback(mid))
        elif qos == 2:
            sub.send(pubrec(mid))
            sub.expect(pubrel(mid))
            sub.send(pubcomp(mid))
        sub.ping()

    def test_will_on_socket_closed_without_disconnect(self):
        self.willing().close()
        self.expect_will()

    def test_no_will_after_disconnect(self):
        c = self.willing()
        c.send(disconnect())
        c.expect_closed()
        self.sub.expect_nothing(0.5)

    def test_will_on_protocol_error(self):
        with self.witness().around():
            c = self.willing()
            c.send(publish("a/+", "bad"))
            c.expect_closed()
        self.expect_will()

    def test_invalid_disconnect_is_a_protocol_error(self):
        # DISCONNECT with a reserved flag or a body is malformed: the
        # connection closes as for any protocol error, and the will goes out.
        for name, data in (("flags 1", packet(DISCONNECT, 1)),
                           ("body", packet(DISCONNECT, 0, b"\x00"))):
            with self.subTest(case=name), self.witness().around():
                c = self.willing()
                c.send(data)
                c.expect_closed()
                self.expect_will()

    def test_will_on_second_connect(self):
        with self.witness().around():
            c = self.willing(client_id="twice-" + unique_id())
            c.send(connect("twice"))
            c.expect_closed()
        if is_mosquitto():
            # mosquitto 2.0.11 drops the will when it closes a connection for
            # a second CONNECT ("Bad client ... sending multiple CONNECT
            # messages"). midge publishes it as for any protocol error
            # (3.1.1 section 3.1.2.5).
            self.sub.expect_nothing(1.0)
        else:
            self.expect_will()

    def test_will_on_keepalive_expiry(self):
        self.willing(keepalive=1)
        # mosquitto needs 5-7 s (its keepalive check runs every 5 s).
        self.expect_will(timeout=9.0 if is_mosquitto() else 3.5)

    def test_will_retained(self):
        self.willing(retain=True).close()
        self.expect_will()  # live: retain 0
        late = self.client().subscribe_ok([(self.will_topic, 1)])
        mid = late.expect_publish(self.will_topic, "gone", qos=1, retain=True)
        late.send(puback(mid))
        self.client().send(publish(self.will_topic, "", retain=True))

    def test_will_qos_capped_by_subscription(self):
        sub1 = self.client().subscribe_ok([(self.will_topic, 1)])
        sub0 = self.client().subscribe_ok([(self.will_topic, 0)])
        self.willing(qos=2).close()
        self.expect_will(qos=2)
        self.expect_will(qos=1, sub=sub1)
        self.expect_will(qos=0, sub=sub0)

    def test_empty_will_payload_published(self):
        self.willing(payload="").close()
        self.expect_will(payload="")

    def test_will_on_takeover(self):
        # mosquitto publishes the old connection's will when a new connection
        # takes its client id over, unless both use clean_session=0 (the
        # session goes on). midge does the same.
        for clean, published in ((True, True), (False, False)):
            with self.subTest(clean_session=clean):
                cid = unique_id("takeover")
                old = self.willing(client_id=cid, clean=clean)
                new = self.raw()
                new.send(connect(cid, clean=clean))
                new.expect(connack(0, session_present=not clean))
                old.expect_closed()
                if published:
                    self.expect_will()
                else:
                    self.sub.expect_nothing(0.5)
                new.send(disconnect())
                new.expect_closed()
                if not clean:
                    self.client(cid, clean=True).send(disconnect())


if __name__ == "__main__":
    main()
