#!/usr/bin/python3
"""Malformed and forbidden packets: each closes its sender's connection and
disturbs nobody else.

A long-lived witness (a QoS 1 publisher/subscriber pair) runs through the
whole table: every message it publishes around each violation must arrive,
in order, exactly once.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_09_malformed.py
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (SharedBrokerTestCase, Witness, is_mosquitto, main,  # noqa: E402
                       unique_id)

# (name, bytes in hex) sent right after a successful CONNECT. "m/t" is 6d 2f 74.
AFTER_CONNECT = [
    ("PUBLISH QoS 3", "36 07 00 03 6d 2f 74 00 01"),
    ("PUBLISH topic with +", "30 05 00 03 6d 2f 2b"),
    ("PUBLISH topic with #", "30 05 00 03 6d 2f 23"),
    ("PUBLISH QoS 1 topic +", "32 05 00 01 2b 00 01"),
    ("PUBLISH empty topic", "30 03 00 00 78"),
    ("PUBLISH QoS 1 packet id 0", "32 07 00 03 6d 2f 74 00 00"),
    ("PUBLISH QoS 2 packet id 0", "34 07 00 03 6d 2f 74 00 00"),
    ("PUBLISH topic invalid UTF-8", "30 05 00 03 6d 2f ff"),
    ("PUBLISH topic with U+0000", "30 05 00 03 6d 00 74"),
    ("PUBLISH topic with a surrogate", "30 05 00 03 ed a0 80"),
    ("PUBLISH topic overlong /", "30 04 00 02 c0 af"),
    ("PUBLISH topic length past the end", "30 04 00 05 6d 2f"),
    ("PUBLISH QoS 1 without packet id", "32 05 00 03 6d 2f 74"),
    ("PUBLISH truncated topic length", "30 01 00"),
    ("PUBREL flags 0", "60 02 00 01"),
    ("SUBSCRIBE flags 0", "80 08 00 01 00 03 6d 2f 74 00"),
    ("UNSUBSCRIBE flags 0", "a0 07 00 01 00 03 6d 2f 74"),
    ("SUBSCRIBE without filters", "82 02 00 01"),
    ("SUBSCRIBE QoS 3", "82 08 00 01 00 03 6d 2f 74 03"),
    ("SUBSCRIBE reserved option bit", "82 08 00 01 00 03 6d 2f 74 04"),
    ("SUBSCRIBE packet id 0", "82 08 00 00 00 03 6d 2f 74 00"),
    ("SUBSCRIBE empty filter", "82 05 00 01 00 00 00"),
    ("SUBSCRIBE without QoS byte", "82 07 00 01 00 03 6d 2f 74"),
    ("SUBSCRIBE filter invalid UTF-8", "82 08 00 01 00 03 6d 2f ff 00"),
    ("UNSUBSCRIBE without filters", "a2 02 00 01"),
    ("UNSUBSCRIBE packet id 0", "a2 07 00 00 00 03 6d 2f 74"),
    ("UNSUBSCRIBE empty filter", "a2 04 00 01 00 00"),
    ("PUBACK too short", "40 01 00"),
    ("PUBACK packet id 0", "40 02 00 00"),
    ("remaining length of 5 bytes", "30 ff ff ff ff 01"),
    ("zero remaining length in 5 bytes", "30 80 80 80 80 00"),
    ("reserved packet type 0", "00 00"),
    ("CONNACK from a client", "20 02 00 00"),
    ("AUTH on MQTT 3.1.1", "f0 00"),
    ("second CONNECT", "10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 78"),
]

# Bytes sent instead of a CONNECT.
INSTEAD_OF_CONNECT = [
    ("HTTP request", "47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a 0d 0a"),
    ("TLS ClientHello start", "16 03 01 00 a5 01 00 00 a1 03 03"),
    ("reserved packet type 0", "00 00"),
    ("PINGREQ", "c0 00"),
    ("CONNECT with protocol level 4 named MQTX", "10 0d 00 04 4d 51 54 58 04 02 00 3c 00 01 78"),
]


class Malformed(SharedBrokerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bystander = Witness(cls.port)
        cls.addClassCleanup(cls.bystander.close)

    def run_table(self, table, connected):
        w = self.bystander
        for name, hexbytes in table:
            with self.subTest(case=name):
                with w.around():
                    if connected:
                        cid = unique_id("bad")
                        c = self.client(cid)
                    else:
                        c = self.raw()
                    c.send(bytes.fromhex(hexbytes))
                    c.expect_closed(2.0, msg="(after %s)" % name)
                if connected and not is_mosquitto():
                    # midge-only: mosquitto words it "Client <id> disconnected
                    # due to protocol error." (or "... malformed packet").
                    self.broker.wait_log(r"Client %s disconnected: \S" % re.escape(cid))

    def test_malformed_after_connect(self):
        self.assertGreaterEqual(len(AFTER_CONNECT), 20)
        before = self.bystander.sent
        self.run_table(AFTER_CONNECT, connected=True)
        self.assertEqual(self.bystander.sent - before, 4 * len(AFTER_CONNECT))
        self.assertEqual(self.bystander.received, self.bystander.sent)

    def test_garbage_instead_of_connect(self):
        before = self.bystander.sent
        self.run_table(INSTEAD_OF_CONNECT, connected=False)
        self.assertEqual(self.bystander.sent - before, 4 * len(INSTEAD_OF_CONNECT))
        self.assertEqual(self.bystander.received, self.bystander.sent)


if __name__ == "__main__":
    main()
