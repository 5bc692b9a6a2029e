#!/usr/bin/python3
"""Operations: the HTTP side (/metrics moving with traffic, /health, /ready, on an
http listener and on a websockets listener's port), JSON log lines, client
lifecycle events as messages, systemd's notification protocol (READY,
WATCHDOG, RELOADING, STOPPING), and `midge --convert`.

midge only: mosquitto has none of these.
Run alone: /usr/bin/python3 tests/integration/test_32_operations.py
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (MIDGE_BIN, Broker, RawClient, SecureBroker, _Helpers,  # noqa: E402
                       _stop_checked, free_port,
                       connack, connect, connected_client, disconnect, is_mosquitto, main,
                       parse_publish, private_dir, publish, subscribe, unique_id, wait_for,
                       write_file)


def http_get(port, path, method="GET"):
    """(status, headers dict, body text)."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def parse_metrics(text):
    """{'name{labels}': value} of a Prometheus text exposition; checks its shape."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            if line.startswith("# TYPE"):
                assert line.split()[3] in ("counter", "gauge"), line
            continue
        m = re.match(r'^([a-z_]+(?:\{[^}]*\})?) (-?[0-9.e+]+)$', line)
        assert m, "not a metric line: %r" % line
        out[m.group(1)] = float(m.group(2))
    return out


@unittest.skipIf(is_mosquitto(), "midge's operations features")
class Http(_Helpers, unittest.TestCase):

    def setUp(self):
        self.broker = SecureBroker(options={"sys_interval": 1},
                                   listeners=[{}, {"protocol": "http"}, {"protocol": "websockets"}])
        self.addCleanup(_stop_checked, self.broker)
        self.port, self.http, self.ws = self.broker.ports[:3]

    def metrics(self, port=None):
        status, headers, body = http_get(port or self.http, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        return parse_metrics(body)

    def test_metrics_move_with_traffic(self):
        """Counters of messages by QoS, bytes, connections, queues and drops follow traffic."""
        before = self.metrics()
        sub = connected_client(self.port, "m-sub")
        sub.subscribe_ok([("m/#", 1)])
        pub = connected_client(self.port, "m-pub")
        for i in range(5):
            pub.send(publish("m/x", "payload%d" % i, qos=1, mid=i + 1))
            pub.read_packet()
            sub.read_packet()
        pub.send(publish("m/q0", "zero"))
        sub.read_packet()
        pub.send(publish("m/r", "kept", qos=1, mid=9, retain=True))
        pub.read_packet()
        after = self.metrics()

        def moved(key):
            return after[key] - before.get(key, 0)
        self.assertEqual(moved('midge_messages_received_total{qos="1"}'), 6)
        self.assertEqual(moved('midge_messages_received_total{qos="0"}'), 1)
        self.assertGreaterEqual(moved('midge_messages_sent_total{qos="1"}'), 5)
        self.assertEqual(moved("midge_connections_total"), 2)
        self.assertGreaterEqual(after["midge_clients_connected"], 2)
        self.assertGreater(moved("midge_bytes_received_total"), 60)
        self.assertGreater(moved("midge_publish_bytes_received_total"), 40)
        self.assertEqual(after["midge_retained_messages"], before["midge_retained_messages"] + 1)
        self.assertGreaterEqual(after["midge_subscriptions"], 1)
        listener = 'midge_listener_connections{listener="%d",protocol="mqtt"}' % self.port
        self.assertEqual(after[listener], 2)
        # a drop by reason: QoS 0 to an offline persistent session
        off = connected_client(self.port, "m-off", clean=False)
        off.subscribe_ok([("drop/#", 0)])
        off.send(disconnect())
        off.close()
        time.sleep(0.2)
        pub.send(publish("drop/x", "lost"))
        pub.ping()
        key = 'midge_messages_dropped_total{reason="offline_qos0"}'
        wait_for(lambda: self.metrics()[key] - after[key] == 1, timeout=10,
                 what="one offline QoS 0 drop counted")

    def test_queue_depth_gauge(self):
        """Messages queued for an offline session show in midge_queued_messages."""
        c = connected_client(self.port, "q-sess", clean=False)
        c.subscribe_ok([("q/#", 1)])
        c.send(disconnect())
        c.close()
        time.sleep(0.2)
        base = self.metrics()["midge_queued_messages"]
        pub = connected_client(self.port, "q-pub")
        for i in range(7):
            pub.send(publish("q/x", "m", qos=1, mid=i + 1))
            pub.read_packet()
        # The session's worker queues them when its inbox is read: soon, not at once.
        wait_for(lambda: self.metrics()["midge_queued_messages"] == base + 7, timeout=10,
                 what="7 queued messages in the gauge")
        connected_client(self.port, "q-sess", clean=True).close()
        wait_for(lambda: self.metrics()["midge_queued_messages"] == base, timeout=10,
                 what="the gauge back to %d" % base)

    def test_health_ready_and_errors(self):
        """/health and /ready answer 200; other paths 404, other methods 405; HEAD has no
        body; a websockets listener answers them too and still upgrades."""
        self.assertEqual(http_get(self.http, "/health")[::2], (200, "ok\n"))
        self.assertEqual(http_get(self.http, "/ready")[::2], (200, "ready\n"))
        self.assertEqual(http_get(self.http, "/nothing")[0], 404)
        self.assertEqual(http_get(self.http, "/metrics", method="POST")[0], 405)
        status, headers, body = http_get(self.http, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, ""))
        self.assertGreater(int(headers["Content-Length"]), 100)
        self.assertIn("midge_clients_connected", "".join(self.metrics(self.ws)))
        self.assertEqual(http_get(self.ws, "/health")[::2], (200, "ok\n"))
        self.assertEqual(http_get(self.ws, "/elsewhere")[0], 426)

    def test_request_too_large_or_malformed(self):
        """A request head over 8 kB gets 431, garbage 400; the broker serves on."""
        s = socket.create_connection(("127.0.0.1", self.http))
        s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000)
        self.assertIn(b" 431 ", s.recv(200))
        s.close()
        s = socket.create_connection(("127.0.0.1", self.http))
        s.sendall(b"\x10\x00garbage\r\n\r\n")
        self.assertIn(b" 400 ", s.recv(200))
        s.close()
        self.assertEqual(http_get(self.http, "/health")[0], 200)


@unittest.skipIf(is_mosquitto(), "midge's operations features")
class Logs(_Helpers, unittest.TestCase):

    def test_json_lines_with_stable_keys(self):
        """log_format json: every line is an object with time, level and msg; a failed
        login names address, client id and user name (fail2ban)."""
        d = private_dir()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        pw = write_file(d, "passwd", "")
        b = Broker(options={"log_format": "json", "password_file": pw,
                            "allow_anonymous": False}, verbose=False)
        self.addCleanup(_stop_checked, b)
        c = RawClient(b.port)
        c.send(connect("intruder", username="mallory", password="guess"))
        c.read_packet()
        c.close()
        m = b.wait_log(r'"event":"connect_refused"')
        objects = [json.loads(line) for line in b.log().splitlines() if line.startswith("{")]
        self.assertTrue(objects)
        for o in objects:
            self.assertTrue({"time", "level", "msg"} <= set(o), o)
            self.assertRegex(o["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        refused = [o for o in objects if o.get("event") == "connect_refused"][0]
        self.assertEqual((refused["client_id"], refused["username"], refused["address"]),
                         ("intruder", "mallory", "127.0.0.1"))
        self.assertIsInstance(refused["port"], int)
        self.assertTrue(m)

    def test_lifecycle_events(self):
        """client_events: $SYS/broker/clients/connected/<id> and .../disconnected/<id>
        carry JSON with the client's details and why it left."""
        b = Broker(options={"client_events": True})
        self.addCleanup(_stop_checked, b)
        w = connected_client(b.port, "watcher")
        w.subscribe_ok([("$SYS/broker/clients/connected/#", 0),
                        ("$SYS/broker/clients/disconnected/#", 0)])
        c = connected_client(b.port, "dev+1", keepalive=1)

        def event():
            # "$SYS/broker/clients/connected" itself is the count, not an event
            while True:
                p = parse_publish(w.read_packet(timeout=5))
                if p.topic.count(b"/") > 3:
                    return p
        got = event()
        self.assertEqual(got.topic, b"$SYS/broker/clients/connected/dev_1")
        details = json.loads(got.payload)
        self.assertEqual((details["client_id"], details["keepalive"], details["protocol"]),
                         ("dev+1", 1, 4))
        # silent: the keepalive ends it
        got = event()
        self.assertEqual(got.topic, b"$SYS/broker/clients/disconnected/dev_1")
        self.assertIn("timeout", json.loads(got.payload)["reason"])
        c.close()


@unittest.skipIf(is_mosquitto(), "midge's operations features")
class Systemd(_Helpers, unittest.TestCase):

    def test_notify_protocol(self):
        """Under systemd (NOTIFY_SOCKET, WATCHDOG_USEC): READY=1 once serving, WATCHDOG=1
        at half the period, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM."""
        d = tempfile.mkdtemp()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(5)
        self.addCleanup(sock.close)
        b = Broker(start=False, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        b.start()
        self.addCleanup(_stop_checked, b)

        def expect(word):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                msg = sock.recv(4096).decode()
                if word in msg.split("\n"):
                    return msg
            self.fail("no %s from the broker" % word)
        self.assertIn("STATUS=running", expect("READY=1"))
        t0 = time.monotonic()
        expect("WATCHDOG=1")
        expect("WATCHDOG=1")
        self.assertLess(time.monotonic() - t0, 1.5, "the watchdog is fed every 0.2 s")
        b.signal(signal.SIGHUP)
        expect("RELOADING=1")
        expect("READY=1")
        b.signal(signal.SIGTERM)
        expect("STOPPING=1")

    def test_service_file(self):
        """The unit says Type=notify and runs the installed binary on the installed config."""
        unit = os.path.join(os.path.dirname(os.path.abspath(MIDGE_BIN)), "etc", "midge.service")
        if not os.path.exists(unit):
            self.skipTest("etc/midge.service is made by make in the build tree")
        text = open(unit).read()
        self.assertIn("Type=notify", text)
        self.assertIn("WatchdogSec=", text)
        self.assertRegex(text, r"ExecStart=/\S+/midge -c /\S+/midge/midge.yaml")
        self.assertNotIn("@", text.split("[Service]")[1].split("[Install]")[0].replace("$MAINPID", ""))


@unittest.skipIf(is_mosquitto(), "midge's operations features")
class Convert(_Helpers, unittest.TestCase):

    def test_convert_mosquitto_conf(self):
        """midge --convert prints YAML that starts a broker doing what the mosquitto.conf did."""
        d = private_dir()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        conf = write_file(d, "mosquitto.conf",
                          "user root\nallow_anonymous true\nmax_queued_messages 5\n"
                          "listener %d 127.0.0.1\nmax_connections 3\n" % free_port())
        out = subprocess.run([MIDGE_BIN, "--convert", conf], capture_output=True, text=True,
                             timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("max_queued_messages: 5", out.stdout)
        self.assertIn("max_connections: 3", out.stdout)
        yaml_path = write_file(d, "midge.yaml", out.stdout)
        check = subprocess.run([MIDGE_BIN, "-t", "-c", yaml_path], capture_output=True, text=True,
                               timeout=10)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        # and it runs
        b = Broker(raw_config=out.stdout, config_name="converted.yaml")
        self.addCleanup(_stop_checked, b)
        connected_client(b.port, unique_id()).close()

    def test_convert_errors(self):
        """A broken file: its errors with file:line, exit status 1, no YAML."""
        d = private_dir()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        conf = write_file(d, "bad.conf", "max_queued_mesages 5\n")
        out = subprocess.run([MIDGE_BIN, "--convert", conf], capture_output=True, text=True,
                             timeout=10)
        self.assertEqual(out.returncode, 1)
        self.assertIn("bad.conf:1", out.stderr)
        self.assertEqual(out.stdout, "")


if __name__ == "__main__":
    main()
