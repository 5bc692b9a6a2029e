#!/usr/bin/python3
"""Unix socket listeners (mosquitto.conf `listener 0 /path`, midge YAML
`unix_socket_path: /path`): raw MQTT 3.1.1 and 5 over AF_UNIX (paho 1.6
cannot connect to a unix socket), exchanges with TCP clients, sessions that
move between the two, per-listener security on the socket, and the socket
file's life: created at start, removed on a clean shutdown, a stale one left
by a killed broker replaced at the next start.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_19_unix_socket.py
"""

import os
import socket
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (Closed, SecureBroker, SecureTestCase, UnixRawClient,  # noqa: E402
                       connack, connack_code, connect, connected_client, disconnect, main,
                       make_password_file, mosquitto_pub, publish, puback, suback, subscribe,
                       unique_id)


class UnixSocket(SecureTestCase):

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.tmp, "midge.sock")
        self.start_broker(listeners=[{}, {"unix_socket_path": self.path}])

    def unix(self, client_id=None, proto=4, **kw):
        """A client on the unix socket past CONNACK 0."""
        c = UnixRawClient(self.path)
        self.addCleanup(c.close)
        c.send(connect(client_id or unique_id("unix"), proto=proto, **kw))
        got = c.read_packet()
        self.assertEqual(got[0], 0x20)
        self.assertEqual(got[3], 0, "CONNACK 0 expected")
        return c

    def test_socket_file_exists(self):
        self.assertTrue(stat.S_ISSOCK(os.stat(self.path).st_mode))

    def test_unix_to_tcp_and_back(self):
        t = self.topic()
        u = self.unix()
        u.subscribe_ok([(t + "/to-unix", 1)])
        tcp = self.client().subscribe_ok([(t + "/to-tcp", 2)])
        tcp.send(publish(t + "/to-unix", "from tcp", qos=1, mid=1))
        tcp.expect(puback(1))
        u.send(puback(u.expect_publish(t + "/to-unix", "from tcp", qos=1)))
        u.send(publish(t + "/to-tcp", b"from unix \x00\xff", qos=1, mid=7))
        u.expect(puback(7))
        mid = tcp.expect_publish(t + "/to-tcp", b"from unix \x00\xff", qos=1)
        tcp.send(puback(mid))
        u.ping()
        tcp.ping()

    def test_mqtt5_on_the_socket(self):
        t = self.topic()
        u = self.unix(proto=5)
        u.send(subscribe(1, [(t, 1)], proto=5))
        u.expect(suback(1, [1], proto=5))
        mosquitto_pub(self.port, "-t", t, "-q", 1, "-m", "to unix v5")
        got = u.read_packet()
        self.assertEqual(got[0] >> 4, 3)
        self.assertTrue(got.endswith(b"to unix v5"), got)

    def test_session_moves_from_unix_to_tcp(self):
        t = self.topic()
        cid = unique_id("mover")
        u = UnixRawClient(self.path)
        u.send(connect(cid, clean=False))
        u.expect(connack(0))
        u.subscribe_ok([(t, 1)])
        u.send(disconnect())
        u.close()
        pub = self.client()
        pub.send(publish(t, "kept", qos=1, mid=1))
        pub.expect(puback(1))
        back = connected_client(self.port, cid, clean=False, session_present=True)
        self.addCleanup(back.close)
        back.send(puback(back.expect_publish(t, "kept", qos=1)))
        back.ping()

    def test_takeover_across_transports(self):
        cid = unique_id("dup")
        u = self.unix(cid)
        tcp = connected_client(self.port, cid)
        self.addCleanup(tcp.close)
        u.expect_closed(msg="(the same client id connected over TCP)")
        tcp.ping()

    def test_many_clients(self):
        t = self.topic()
        subs = [self.unix().subscribe_ok([(t, 0)]) for _ in range(20)]
        self.unix().send(publish(t, "fan-out"))
        for s in subs:
            s.expect_publish(t, "fan-out")

    def test_garbage_closes_only_that_connection(self):
        with self.witness().around():
            bad = UnixRawClient(self.path)
            self.addCleanup(bad.close)
            bad.send(b"\x00\x01garbage")
            bad.expect_closed()
            good = self.unix()
            good.ping()


class UnixSocketLife(SecureTestCase):

    def test_removed_on_shutdown(self):
        path = os.path.join(self.tmp, "life.sock")
        b = SecureBroker(listeners=[{}, {"unix_socket_path": path}])
        try:
            c = UnixRawClient(path)
            c.send(connect(unique_id("bye")))
            c.expect(connack(0))
        finally:
            rc = b.stop()
        self.assertFalse(os.path.exists(path), "the socket file outlived the broker")
        with self.assertRaises(Closed):
            c.read_packet()
        c.close()
        self.assertEqual(rc, 0, "exit status after SIGTERM")

    def test_stale_socket_from_a_killed_broker(self):
        path = os.path.join(self.tmp, "stale.sock")
        first = SecureBroker(listeners=[{}, {"unix_socket_path": path}])
        first.proc.kill()  # no chance to clean up
        first.proc.wait()
        first.stop()
        self.assertTrue(os.path.exists(path), "SIGKILL should leave the file behind")
        with self.assertRaises(ConnectionRefusedError):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
            finally:
                s.close()
        self.start_broker(listeners=[{}, {"unix_socket_path": path}])
        c = UnixRawClient(path)
        self.addCleanup(c.close)
        c.send(connect(unique_id("again")))
        c.expect(connack(0))

    def test_security_on_the_unix_listener(self):
        # per_listener_settings: TCP needs a password, the socket is open
        # (a local-only admin door, a common deployment).
        path = os.path.join(self.tmp, "admin.sock")
        pw = make_password_file(os.path.join(self.tmp, "passwd"), {"alice": "alice-pw"})
        self.start_broker(options={"per_listener_settings": True},
                          listeners=[{"password_file": pw, "allow_anonymous": False},
                                     {"unix_socket_path": path, "allow_anonymous": True}])
        self.assertEqual(connack_code(self.port), 5)
        self.assertEqual(connack_code(self.port, username="alice", password="alice-pw"), 0)
        self.assertEqual(connack_code(None, client=UnixRawClient(path)), 0)


if __name__ == "__main__":
    main()
