#!/usr/bin/python3
"""Persistent (clean_session=0) and clean sessions, offline queueing, expiry.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_06_session.py
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (SharedBrokerTestCase, disconnect, is_mosquitto, main, puback,  # noqa: E402
                       pubcomp, publish, pubrec, pubrel, unique_id)


class _Sessions(SharedBrokerTestCase):

    def persistent(self, filters):
        """A persistent session subscribed to `filters`, then disconnected."""
        cid = unique_id("session")
        c = self.client(cid, clean=False).subscribe_ok(filters)
        c.send(disconnect())
        c.expect_closed()
        self.addCleanup(lambda: self.client(cid, clean=True).send(disconnect()))
        return cid

    def publish_all(self, messages):
        """Publishes (topic, payload, qos) messages, completing each flow."""
        pub = self.client()
        for mid, (t, payload, qos) in enumerate(messages, 1):
            pub.send(publish(t, payload, qos=qos, mid=mid if qos else None))
            if qos == 1:
                pub.expect(puback(mid))
            elif qos == 2:
                pub.expect(pubrec(mid))
                pub.send(pubrel(mid))
                pub.expect(pubcomp(mid))
        pub.ping()

    def receive(self, c, t, payload, qos):
        mid = c.expect_publish(t, payload, qos=qos)
        if qos == 1:
            c.send(puback(mid))
        elif qos == 2:
            c.send(pubrec(mid))
            c.expect(pubrel(mid))
            c.send(pubcomp(mid))


class Sessions(_Sessions):

    def test_subscriptions_survive_disconnect(self):
        t = self.topic()
        cid = self.persistent([(t, 1)])
        c = self.client(cid, clean=False, session_present=True)
        self.publish_all([(t, "live", 1)])
        self.receive(c, t, "live", 1)
        c.ping()

    def test_offline_messages_queued_in_order(self):
        t = self.topic()
        cid = self.persistent([(t, 2)])
        messages = [(t, "m%d" % i, 1 + i % 2) for i in range(6)]
        self.publish_all(messages[:3] + [(t, "qos0 is not queued", 0)] + messages[3:])
        c = self.client(cid, clean=False, session_present=True)
        # The broker sends them all at once: read them all, then acknowledge.
        mids = [c.expect_publish(topic, payload, qos=qos) for topic, payload, qos in messages]
        for mid, (_, _, qos) in zip(mids, messages):
            if qos == 1:
                c.send(puback(mid))
            else:
                c.send(pubrec(mid))
                c.expect(pubrel(mid))
                c.send(pubcomp(mid))
        c.ping("(only the QoS 1 and 2 messages, each once)")

    def test_clean_session_discards_persistent_session(self):
        t = self.topic()
        cid = self.persistent([(t, 1)])
        self.publish_all([(t, "queued", 1)])
        c = self.client(cid, clean=True, session_present=False)
        c.ping("(no queued message for a clean session)")
        self.publish_all([(t, "after", 1)])
        c.expect_nothing(0.3, msg="(the old subscription must be gone)")
        c.send(disconnect())
        c.expect_closed()
        # A clean session is not kept after it ends either.
        c = self.client(cid, clean=False, session_present=False)
        c.ping()


class QueueQos0(_Sessions):
    broker_options = {"queue_qos0_messages": True}

    def test_qos0_queued_when_enabled(self):
        t = self.topic()
        cid = self.persistent([(t, 1)])
        self.publish_all([(t, "zero", 0), (t, "one", 1), (t, "zero again", 0)])
        c = self.client(cid, clean=False, session_present=True)
        c.expect_publish(t, "zero", qos=0)
        self.receive(c, t, "one", 1)
        c.expect_publish(t, "zero again", qos=0)
        c.ping()


class PersistentClientExpiration(_Sessions):
    # mosquitto accepts only <n>h|d|w|m|y (no seconds): 1h is its shortest.
    broker_options = {"persistent_client_expiration": "1h"}

    def test_session_kept_before_expiry(self):
        t = self.topic()
        cid = self.persistent([(t, 1)])
        self.publish_all([(t, "kept", 1)])
        time.sleep(1.5)  # deliberate offline period, far below the expiry
        c = self.client(cid, clean=False, session_present=True)
        self.receive(c, t, "kept", 1)
        c.ping()


@unittest.skipIf(is_mosquitto(), "midge-only: mosquitto's shortest persistent_client_expiration is 1h")
class PersistentClientExpirationShort(_Sessions):
    broker_options = {"persistent_client_expiration": "1s"}

    def test_session_expires(self):
        t = self.topic()
        cid = self.persistent([(t, 1)])
        self.publish_all([(t, "expired", 1)])
        time.sleep(2.5)  # deliberate offline period, past the expiry
        c = self.client(cid, clean=False, session_present=False)
        c.ping("(an expired session has neither messages nor subscriptions)")
        self.publish_all([(t, "after", 1)])
        c.expect_nothing(0.3)


if __name__ == "__main__":
    main()
