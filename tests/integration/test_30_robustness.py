#!/usr/bin/python3
"""Robustness: limits and faults, with the broker serving on and nothing lost.

Each case puts the broker under one kind of pressure, then checks that a new
client is still served and that a bystander's QoS 1 stream (a Witness) lost
nothing: out of file descriptors, a full disk under the store, a connection
storm (descriptors and heap back at their baseline), thousands of half-open
sockets, 10k subscriptions from one client, a topic of 10k levels, keepalive
deadlines for many clients at once, a subscriber that never reads, the
memory_limit, and empty policy files failing closed at start and on reload.

Run alone: /usr/bin/python3 tests/integration/test_30_robustness.py
"""

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (Broker, Closed, SecureTestCase, RawClient, _Helpers,  # noqa: E402
                       _stop_checked, connack, connect, connected_client, disconnect,
                       is_mosquitto, main, make_password_file, parse_publish, pingreq,
                       pingresp, private_dir, puback, publish, subscribe, unique_id,
                       wait_for, write_file)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RobustCase(_Helpers, unittest.TestCase):
    """A broker per test, with options per test."""

    def start(self, preexec=None, **options):
        opts = {"sys_interval": 1}
        opts.update(options)
        b = Broker(options=opts, start=False)
        if preexec:
            # the harness starts the process; a wrapper applies the limit first
            b.args = []
            orig = subprocess.Popen

            def popen(cmd, **kw):
                return orig(cmd, preexec_fn=preexec, **kw)
            subprocess.Popen = popen
            try:
                b.start()
            finally:
                subprocess.Popen = orig
        else:
            b.start()
        # a broker the test stopped itself (returncode known) was checked then
        self.addCleanup(lambda: b.proc.returncode is None and _stop_checked(b))
        self.broker = b
        self.port = b.port
        return b

    def heap(self):
        """$SYS/broker/heap/current, fresh (the next publication after now)."""
        c = connected_client(self.port, unique_id("heap"))
        c.send(subscribe(1, [("$SYS/broker/heap/current", 0)]))
        c.read_packet()
        values = []
        deadline = time.monotonic() + 5
        while len(values) < 2 and time.monotonic() < deadline:
            try:
                values.append(int(parse_publish(c.read_packet(timeout=3)).payload))
            except socket.timeout:
                break
        c.close()
        return values[-1]

    def serves(self, what):
        """A new client connects, subscribes and gets its own message."""
        c = connected_client(self.port, unique_id("fresh"))
        t = "fresh/" + unique_id()
        c.subscribe_ok([(t, 1)])
        c.send(publish(t, "hello", qos=1, mid=7))
        got = set()
        for _ in range(2):
            got.add(c.read_packet()[0] >> 4)
        self.assertEqual(got, {3, 4}, "a new client is not served after %s" % what)
        c.close()


class FileDescriptors(RobustCase):

    def setUp(self):
        self.midge_only("the log and recovery checked are midge's")

    def test_out_of_descriptors_then_recovers(self):
        """With a descriptor limit of 64, a flood of 150 connections is refused or
        closed; when they go, accepting resumes and nobody else lost anything."""
        limit = 64
        self.start(preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        w = self.witness()
        w.publish(2)
        flood = []
        for _ in range(150):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                flood.append(s)
            except OSError:
                break
        self.broker.wait_log(r"unable to accept a connection", timeout=10)
        w.publish(2)
        for s in flood:
            s.close()
        time.sleep(0.5)
        wait_for(lambda: open_fds(self.broker.proc.pid) < limit - 10, timeout=10,
                 what="descriptors to be released")
        self.serves("running out of descriptors")
        w.publish(2)
        w.verify()


class DiskFull(RobustCase):
    """The store's file system fills up: a clear error, the publishers whose
    messages could not be stored are disconnected (never acknowledged), and when
    space returns the broker stores again; what was acknowledged is all there
    after a restart."""

    def setUp(self):
        self.midge_only("midge's store")
        self.mnt = private_dir("midgetest-full-")
        self.addCleanup(shutil.rmtree, self.mnt, True)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", self.mnt],
                          capture_output=True).returncode != 0:
            self.skipTest("cannot mount a small tmpfs here (needs root)")
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt], capture_output=True)

    def test_disk_full_then_space_returns(self):
        opts = {"persistence": True, "persistence_location": self.mnt + "/",
                "persistence_file": "store", "persistence_max_size": 64 << 20}
        self.start(**opts)
        w = self.witness()
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (4 << 20))
        acked = []
        c = connected_client(self.port, "filler")
        try:
            for i in range(2000):
                c.send(publish("full/%d" % i, "%05d" % i + "x" * 9995, qos=1, mid=i % 60000 + 1,
                               retain=True))
                c.expect(puback(i % 60000 + 1), timeout=5)
                acked.append(i)
        except AssertionError:
            pass
        self.assertLess(len(acked), 2000, "the disk never filled")
        self.broker.wait_log(r"Error: persistence: .*failed")
        self.broker.wait_log(r"filler was disconnected: its changes could not be stored")
        os.unlink(filler)
        # space is back: storing works again, for everyone
        c = connected_client(self.port, "after")
        c.send(publish("full/after", "back", qos=1, mid=1, retain=True))
        c.expect(puback(1), timeout=10)
        w.publish(2)
        w.verify()
        self.serves("a full disk")
        # no corruption: everything acknowledged is there after a restart
        _stop_checked(self.broker)
        self.start(**opts)
        r = connected_client(self.port, "reader")
        r.send(subscribe(1, [("full/#", 0)]))
        r.read_packet()
        topics = set()
        try:
            while True:
                topics.add(parse_publish(r.read_packet(timeout=2)).topic.decode())
        except socket.timeout:
            pass
        missing = [i for i in acked if "full/%d" % i not in topics]
        self.assertEqual(missing, [], "acknowledged retained messages lost")
        self.assertIn("full/after", topics)


class Storms(RobustCase):

    def setUp(self):
        self.midge_only("reads midge's $SYS heap counter")

    def test_connection_storm_returns_to_baseline(self):
        """10k clients connect and drop (five waves of 2000, some without DISCONNECT):
        afterwards the broker holds as many descriptors and as much heap as before."""
        self.start(max_connections=-1)
        w = self.witness()
        time.sleep(1.2)
        fds0, heap0 = open_fds(self.broker.proc.pid), self.heap()
        for wave in range(5):
            socks = []
            for i in range(2000):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                s.sendall(connect("storm-%d-%d" % (wave, i)))
                socks.append(s)
            for i, s in enumerate(socks):
                s.settimeout(10)
                self.assertEqual(s.recv(4), connack(0))
                if i % 2:
                    s.sendall(disconnect())
                s.close()
            w.publish(1)
        wait_for(lambda: open_fds(self.broker.proc.pid) <= fds0, timeout=15,
                 what="descriptors back to %d" % fds0)
        time.sleep(1.2)
        heap1 = self.heap()
        self.assertLess(heap1, heap0 + 256 * 1024, "heap %d -> %d after the storm" % (heap0, heap1))
        w.verify()
        self.serves("a connection storm")

    def test_half_open_sockets_are_cheap_and_expire(self):
        """2000 sockets that connect and never send CONNECT cost little memory each and
        are closed after connect_timeout."""
        self.start(connect_timeout=2)
        w = self.witness()
        pid = self.broker.proc.pid
        rss0 = rss_kb(pid)
        socks = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(2000)]
        wait_for(lambda: open_fds(pid) >= 2000, timeout=10, what="the sockets to be accepted")
        grew = rss_kb(pid) - rss0
        self.assertLess(grew * 1024 / 2000, 4096, "%d kB for 2000 idle sockets" % grew)
        w.publish(2)
        # all closed by the broker after connect_timeout
        deadline = time.monotonic() + 10
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            self.assertEqual(s.recv(1), b"", "a half-open socket was left open")
            s.close()
        w.verify()
        self.serves("2000 half-open sockets")


class BigRequests(RobustCase):

    def test_ten_thousand_subscriptions(self):
        """One client subscribes to 10k filters (in SUBSCRIBEs of 500), receives by them,
        and unsubscribes; others are undisturbed."""
        self.start(max_queued_messages=0)
        w = self.witness()
        c = connected_client(self.port, "hoarder")
        filters = ["many/%d/+" % i for i in range(10000)]
        for k in range(0, 10000, 500):
            c.send(subscribe(k // 500 + 1, [(f, 1) for f in filters[k:k + 500]]))
            ack = c.read_packet(timeout=20)
            self.assertEqual(ack[0] >> 4, 9)
            self.assertEqual(ack[-500:], bytes([1]) * 500)
        w.publish(2)
        p = connected_client(self.port, "many-pub")
        for i in (0, 4321, 9999):
            p.send(publish("many/%d/x" % i, "v%d" % i))
            self.assertEqual(parse_publish(c.read_packet(timeout=10)).payload, b"v%d" % i)
        c.send(disconnect())
        c.close()
        w.publish(2)
        w.verify()
        self.serves("10k subscriptions")

    def test_topic_of_ten_thousand_levels(self):
        """A topic of 10k levels (20 kB) is routed to "#" and to an exact subscription,
        retained and matched, without the broker running out of stack."""
        self.start()
        w = self.witness()
        deep = "/".join(["l"] * 10000)
        near = connected_client(self.port, "deep-sub")
        near.subscribe_ok([(deep, 0), ("l/#", 0)])
        p = connected_client(self.port, "deep-pub")
        p.send(publish(deep, "down there", retain=True))
        got = parse_publish(near.read_packet(timeout=10))
        self.assertEqual((got.topic.decode(), got.payload), (deep, b"down there"))
        near.expect_nothing(0.5, "one copy for overlapping subscriptions")
        late = connected_client(self.port, "deep-late")
        late.send(subscribe(1, [("l/+/l/#", 0)]))
        late.read_packet()
        self.assertEqual(parse_publish(late.read_packet(timeout=10)).payload, b"down there")
        w.publish(2)
        w.verify()
        self.serves("a 10k-level topic")


class Keepalive(RobustCase):

    def test_every_client_closed_within_one_and_a_half_keepalives(self):
        """30 silent clients with keepalives of 1, 2 and 3 s, all at once: each is closed
        after 1 x and before 1.5 x its keepalive (+ 0.5 s of margin), while a pinging
        client with keepalive 1 stays."""
        self.midge_only("mosquitto checks keepalives every 5 s (measured in test_01)")
        self.start()
        w = self.witness()
        w.publish(2)
        clients = []
        for i in range(30):
            ka = 1 + i % 3
            c = connected_client(self.port, "ka-%d" % i, keepalive=ka)
            clients.append((ka, time.monotonic(), c))
        pinger = connected_client(self.port, "ka-pinger", keepalive=1)
        closed = {}
        deadline = time.monotonic() + 6
        while len(closed) < len(clients) and time.monotonic() < deadline:
            pinger.send(pingreq())
            pinger.expect(pingresp(), timeout=1)
            for i, (ka, t0, c) in enumerate(clients):
                if i in closed:
                    continue
                try:
                    c.read_packet(timeout=0.01)
                except socket.timeout:
                    continue
                except Closed:
                    closed[i] = time.monotonic() - t0
            time.sleep(0.05)
        for i, (ka, _, _) in enumerate(clients):
            self.assertIn(i, closed, "client with keepalive %d never closed" % ka)
            self.assertGreaterEqual(closed[i], ka * 0.99, "keepalive %d: closed early" % ka)
            self.assertLessEqual(closed[i], ka * 1.5 + 0.5,
                                 "keepalive %d: closed after %.2f s" % (ka, closed[i]))
        w.publish(2)
        w.verify()
        self.serves("30 keepalive deadlines")


class SlowSubscriber(RobustCase):

    def test_subscriber_that_never_reads(self):
        """A QoS 0 and a QoS 1 subscriber that never read while 40 MB is published to them:
        the broker's heap stays within its queue limits, and others lose nothing."""
        self.midge_only("reads midge's $SYS heap counter")
        self.start(max_queued_messages=100, max_queued_bytes=1 << 20)
        w = self.witness()
        time.sleep(1.2)
        heap0 = self.heap()
        sleepers = []
        for qos in (0, 1):
            s = RawClient(self.port)
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.send(connect("sleeper-%d" % qos))
            s.read_packet()
            s.send(subscribe(1, [("flood/#", qos)]))
            s.read_packet()
            sleepers.append(s)
        p = connected_client(self.port, "flooder")
        payload = b"z" * 10000
        for i in range(4000):
            p.send(publish("flood/x", payload, qos=1, mid=i % 60000 + 1))
            p.read_packet(timeout=10)  # PUBACK
        time.sleep(1.2)
        heap1 = self.heap()
        # per subscriber: 1 MB queued + what the socket and its output pause hold
        self.assertLess(heap1 - heap0, 12 << 20, "heap grew %d bytes" % (heap1 - heap0))
        w.publish(2)
        w.verify()
        self.serves("a subscriber that never reads")


class MemoryLimit(RobustCase):

    def test_memory_limit_refuses_new_work_then_recovers(self):
        """With memory_limit a little above what the broker uses idle, a flood towards a
        subscriber that never reads meets the limit: new connections get CONNACK 3 (or
        the flooder is cut off) instead of the machine running out; once that subscriber
        goes, a new client is served."""
        self.midge_only("mosquitto's allocations just fail, without CONNACK 3")
        probe = self.start()
        time.sleep(1.2)
        base = self.heap()
        _stop_checked(probe)
        self.start(memory_limit=base + (6 << 20), max_queued_messages=0)
        s = RawClient(self.port)
        s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.send(connect("hog-sub"))
        s.read_packet()
        s.send(subscribe(1, [("hog/#", 1)]))
        s.read_packet()
        p = connected_client(self.port, "hog-pub")
        refused = False
        try:
            for i in range(3000):
                p.send(publish("hog/x", b"m" * 10000, qos=1, mid=i % 60000 + 1))
                p.read_packet(timeout=10)
        except (AssertionError, Closed, OSError, socket.timeout):
            refused = True
        if not refused:
            c = RawClient(self.port)
            c.send(connect(unique_id("late")))
            refused = c.read_packet(timeout=5) == connack(3)
        self.assertTrue(refused, "memory_limit never refused anything")
        s.close()
        time.sleep(1.5)
        self.serves("reaching memory_limit")


class FailClosed(SecureTestCase):
    """Empty policy files never widen access: an empty ACL file allows nothing, an empty
    password file lets nobody in, at start; a reload that brings them either applies
    them or keeps the old policy, never anything more open."""

    def refused_sub(self, port, topic):
        c = connected_client(port, unique_id())
        c.send(subscribe(1, [(topic, 0)]))
        code = c.read_packet()[-1]
        c.close()
        return code == 0x80

    def login(self, port, user, password):
        c = RawClient(port)
        c.send(connect(unique_id(), username=user, password=password))
        got = c.read_packet()
        c.close()
        return got == connack(0)

    def test_empty_acl_file_denies_everything(self):
        b = self.start_broker(options={"acl_file": self.file("acl", "")})
        self.assertTrue(self.refused_sub(b.port, "any/topic"), "granted with an empty ACL")

    def test_reload_to_empty_acl_file_never_widens(self):
        acl = self.file("acl", "topic readwrite open/#\n")
        b = self.start_broker(options={"acl_file": acl})
        self.assertFalse(self.refused_sub(b.port, "open/x"))
        self.assertTrue(self.refused_sub(b.port, "secret/x"))
        self.file("acl", "")
        b.signal(signal.SIGHUP)
        b.wait_log(r"Reload")
        time.sleep(0.5)
        self.assertTrue(self.refused_sub(b.port, "secret/x"), "the reload widened access")

    def test_empty_password_file_lets_nobody_in(self):
        b = self.start_broker(options={"password_file": self.file("passwd", ""),
                                       "allow_anonymous": False})
        self.assertFalse(self.login(b.port, "alice", "secret"))
        self.assertFalse(self.login(b.port, None, None) if False else False)

    def test_reload_to_empty_password_file_never_widens(self):
        pw = self.password_file({"alice": "secret"})
        b = self.start_broker(options={"password_file": pw, "allow_anonymous": False})
        self.assertTrue(self.login(b.port, "alice", "secret"))
        self.file("passwd", "")
        b.signal(signal.SIGHUP)
        b.wait_log(r"Reload")
        time.sleep(0.5)
        self.assertFalse(self.login(b.port, "mallory", "anything"), "the reload widened access")
        self.assertFalse(self.login(b.port, "alice", "wrong"))


if __name__ == "__main__":
    main()
