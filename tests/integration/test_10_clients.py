#!/usr/bin/python3
"""Real clients through the broker: Debian's paho-mqtt (MQTT 3.1.1 and 3.1)
and mosquitto_pub / mosquitto_sub, QoS 0/1/2 in every combination, retained
messages, wills, persistent sessions, a 1000-message stream, credentials.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_10_clients.py
"""

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (MosquittoSub, PahoClient, SharedBrokerTestCase, main,  # noqa: E402
                       mosquitto_pub, unique_id)

PROTOCOLS = {3: "MQTT 3.1", 4: "MQTT 3.1.1"}


def payload_for(tag):
    """A payload that is not text: NUL, 0xff and the tag."""
    return b"\x00\xff" + tag.encode()


class Clients(SharedBrokerTestCase):

    def paho(self, client_id=None, **kw):
        c = PahoClient(self.port, client_id=unique_id("paho") if client_id is None else client_id, **kw)
        self.addCleanup(c.close)
        return c

    def sub(self, topics, qos=0, args=()):
        s = MosquittoSub(self.port, topics, qos=qos, args=args)
        self.addCleanup(s.stop)
        return s

    def wait_disconnected(self, client_id):
        """Waits until the broker has logged the end of client_id's connection."""
        self.broker.wait_log(r"Client %s (disconnected|closed its connection)" % re.escape(client_id))

    # QoS matrix ----------------------------------------------------------

    def test_paho_every_qos_combination(self):
        for pub_proto, sub_proto in ((4, 4), (3, 3), (3, 4), (4, 3)):
            with self.subTest(publisher=PROTOCOLS[pub_proto], subscriber=PROTOCOLS[sub_proto]):
                base = self.topic()
                subs = {}
                for sub_qos in (0, 1, 2):
                    subs[sub_qos] = self.paho(protocol=sub_proto)
                    self.assertEqual(subs[sub_qos].subscribe(base + "/#", sub_qos), [sub_qos])
                pub = self.paho(protocol=pub_proto)
                for pub_qos in (0, 1, 2):
                    pub.publish("%s/q%d" % (base, pub_qos), payload_for("q%d" % pub_qos), qos=pub_qos)
                pub.publish(base + "/end", b"end", qos=2)
                for sub_qos, s in subs.items():
                    got = s.wait_for(lambda msgs: any(m[0] == base + "/end" for m in msgs),
                                     what="the end marker")
                    expected = [("%s/q%d" % (base, q), payload_for("q%d" % q), min(q, sub_qos), False)
                                for q in (0, 1, 2)]
                    expected.append((base + "/end", b"end", sub_qos, False))
                    # Each message exactly once, at min(publish QoS, subscription QoS).
                    self.assertEqual(sorted(got), sorted(expected), "subscriber QoS %d" % sub_qos)

    def test_mosquitto_pub_to_mosquitto_sub(self):
        topic = self.topic()
        sub2 = self.sub([topic], qos=2, args=["-C", 3, "-W", 10])
        sub0 = self.sub([topic], qos=0, args=["-C", 3, "-W", 10])
        for qos in (0, 1, 2):
            mosquitto_pub(self.port, "-t", topic, "-q", qos, "-m", "qos %d" % qos)
        self.assertEqual(sub2.wait_exit(10), 0, sub2.output())
        self.assertEqual(sub0.wait_exit(10), 0, sub0.output())
        self.assertEqual(sorted(sub2.messages),
                         [(topic, b"qos %d" % q, q, False) for q in (0, 1, 2)])
        self.assertEqual(sorted(sub0.messages),
                         [(topic, b"qos %d" % q, 0, False) for q in (0, 1, 2)])

    def test_paho_to_mosquitto_sub(self):
        for proto in (4, 3):
            with self.subTest(publisher=PROTOCOLS[proto]):
                topic = self.topic()
                sub = self.sub([topic], qos=2, args=["-C", 4, "-W", 10])
                pub = self.paho(protocol=proto)
                for qos in (0, 1, 2):
                    pub.publish(topic, payload_for("q%d" % qos), qos=qos)
                pub.publish(topic, b"", qos=1)  # an empty payload is a message too
                self.assertEqual(sub.wait_exit(10), 0, sub.output())
                self.assertEqual(sorted(sub.messages),
                                 sorted([(topic, payload_for("q%d" % q), q, False) for q in (0, 1, 2)]
                                        + [(topic, b"", 1, False)]))

    def test_mosquitto_pub_to_paho(self):
        for proto in (4, 3):
            with self.subTest(subscriber=PROTOCOLS[proto]):
                topic = self.topic()
                s = self.paho(protocol=proto)
                self.assertEqual(s.subscribe(topic, 2), [2])
                for qos in (0, 1, 2):
                    mosquitto_pub(self.port, "-t", topic, "-q", qos, "-m", "from mosquitto_pub %d" % qos)
                got = s.wait_messages(3)
                self.assertEqual(sorted(got),
                                 [(topic, b"from mosquitto_pub %d" % q, q, False) for q in (0, 1, 2)])

    # Retained ------------------------------------------------------------

    def test_retained_with_mosquitto_clients(self):
        topic, ctl = self.topic("/state"), self.topic("/ctl")
        mosquitto_pub(self.port, "-t", topic, "-q", 1, "-r", "-m", "on")
        late = self.sub([topic], qos=1, args=["-C", 1, "-W", 10])
        self.assertEqual(late.wait_exit(10), 0, late.output())
        self.assertEqual(late.messages, [(topic, b"on", 1, True)])
        # A new retained message replaces it.
        mosquitto_pub(self.port, "-t", topic, "-q", 0, "-r", "-m", "off")
        late = self.sub([topic], qos=1, args=["-C", 1, "-W", 10])
        self.assertEqual(late.wait_exit(10), 0, late.output())
        self.assertEqual(late.messages, [(topic, b"off", 0, True)])
        # -n -r: a retained empty message clears it.
        mosquitto_pub(self.port, "-t", topic, "-n", "-r")
        after = self.sub([topic, ctl], qos=1)
        mosquitto_pub(self.port, "-t", ctl, "-q", 1, "-m", "sync")
        # Retained messages come right after the SUBACK, before anything
        # published later: once ctl is here, nothing retained is pending.
        after.wait_messages(1)
        self.assertEqual(after.messages, [(ctl, b"sync", 1, False)])

    # Wills ---------------------------------------------------------------

    def test_will_when_paho_socket_drops(self):
        for proto in (4, 3):
            with self.subTest(protocol=PROTOCOLS[proto]):
                will_topic = self.topic("/will")
                sub = self.sub([will_topic], qos=1, args=["-C", 1, "-W", 10])
                c = self.paho(protocol=proto, will=(will_topic, "gone %d" % proto, 1, False))
                c.abort()
                self.assertEqual(sub.wait_exit(10), 0, sub.output())
                self.assertEqual(sub.messages, [(will_topic, b"gone %d" % proto, 1, False)])

    def test_will_when_paho_process_is_killed(self):
        will_topic = self.topic("/will")
        sub = self.sub([will_topic], qos=1, args=["-C", 1, "-W", 10])
        script = textwrap.dedent("""
            import sys, threading, paho.mqtt.client as mqtt
            ready = threading.Event()
            c = mqtt.Client(client_id=sys.argv[2], reconnect_on_failure=False)
            c.on_connect = lambda *a: ready.set()
            c.will_set(sys.argv[3], b"killed", 2, False)
            c.connect("127.0.0.1", int(sys.argv[1]), 60)
            c.loop_start()
            if ready.wait(5):
                print("ready", flush=True)
                threading.Event().wait(60)
        """)
        proc = subprocess.Popen([sys.executable, "-c", script, str(self.port), unique_id("doomed"),
                                 will_topic], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        first = []
        reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(10)
        self.assertEqual(first, [b"ready\n"], "the paho script did not connect")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        self.assertEqual(sub.wait_exit(10), 0, sub.output())
        self.assertEqual(sub.messages, [(will_topic, b"killed", 1, False)])

    def test_no_will_after_clean_disconnect(self):
        will_topic, ctl = self.topic("/will"), self.topic("/ctl")
        sub = self.sub([will_topic, ctl], qos=1)
        cid = unique_id("polite")
        c = self.paho(client_id=cid, will=(will_topic, "should not be sent", 1, False))
        c.disconnect()
        self.wait_disconnected(cid)
        mosquitto_pub(self.port, "-t", ctl, "-q", 1, "-m", "sync")
        sub.wait_messages(1)
        self.assertEqual(sub.messages, [(ctl, b"sync", 1, False)])

    # Sessions --------------------------------------------------------------

    def test_persistent_session_gets_offline_messages(self):
        for proto in (4, 3):
            with self.subTest(protocol=PROTOCOLS[proto]):
                topic, cid = self.topic(), unique_id("persist")
                c = self.paho(client_id=cid, clean_session=False, protocol=proto)
                self.assertEqual(c.subscribe(topic, 1), [1])
                c.disconnect()
                self.wait_disconnected(cid)
                for i in range(3):
                    mosquitto_pub(self.port, "-t", topic, "-q", 1, "-m", "offline %d" % i)
                again = self.paho(client_id=cid, clean_session=False, protocol=proto)
                if proto == 4:  # MQTT 3.1 has no session present flag
                    self.assertTrue(again.session_present)
                got = again.wait_messages(3)
                self.assertEqual(got, [(topic, b"offline %d" % i, 1, False) for i in range(3)])
                # A clean session starts empty and removes the stored one.
                again.disconnect()
                self.wait_disconnected(cid)
                clean = self.paho(client_id=cid, clean_session=True, protocol=proto)
                if proto == 4:
                    self.assertFalse(clean.session_present)

    # Volume ------------------------------------------------------------------

    def test_thousand_qos1_messages_in_order(self):
        topic = self.topic()
        sub = self.sub([topic], qos=1, args=["-C", 1000, "-W", 30])
        pub = self.paho()
        infos = [pub.publish(topic, str(i), qos=1, wait=False) for i in range(1000)]
        for info in infos:
            info.wait_for_publish(20)
            self.assertTrue(info.is_published())
        self.assertEqual(sub.wait_exit(20), 0, sub.output()[-2000:])
        payloads = [m[1] for m in sub.messages]
        self.assertEqual(len(payloads), 1000)
        self.assertEqual(payloads, [str(i).encode() for i in range(1000)])
        self.assertEqual({m[2] for m in sub.messages}, {1})

    # Credentials -------------------------------------------------------------

    def test_username_and_password_on_an_anonymous_broker(self):
        topic = self.topic()
        sub = self.sub([topic], qos=1, args=["-C", 1, "-W", 10, "-u", "user", "-P", "pass",
                                            "-i", unique_id("withpass")])
        mosquitto_pub(self.port, "-t", topic, "-q", 1, "-m", "hello", "-u", "other", "-P", "x")
        self.assertEqual(sub.wait_exit(10), 0, sub.output())
        self.assertEqual(sub.messages, [(topic, b"hello", 1, False)])


if __name__ == "__main__":
    main()
