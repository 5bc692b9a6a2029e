"""midgetest: the harness shared by midge's integration tests.

Starts a real broker binary on a free loopback port with a generated
configuration, and offers a raw-socket MQTT client for byte-exact tests.
The same test can run against Debian's mosquitto (MIDGE_TEST_TARGET=mosquitto)
to check that midge matches what mosquitto users see.

Environment:
  MIDGE_BIN          path of the midge binary (default: ./midge in the build dir)
  MIDGE_TEST_TARGET  "midge" (default) or "mosquitto"
  MIDGE_TEST_KEEP    keep temporary directories and broker logs
"""

import collections
import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

TARGET = os.environ.get("MIDGE_TEST_TARGET", "midge")
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("MIDGE_SRCDIR", os.path.normpath(os.path.join(HERE, "..", "..")))
MIDGE_BIN = os.environ.get("MIDGE_BIN", os.path.join(os.getcwd(), "midge"))
MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")
DEFAULT_TIMEOUT = 5.0

# Packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15


def is_mosquitto():
    return TARGET == "mosquitto"


def free_port():
    """A port that was free a moment ago (only for brokers that cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Polls predicate() until it is true; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


# ---------------------------------------------------------------- config

def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mosq_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_yaml(options, listeners):
    lines = []
    for key, value in options.items():
        if isinstance(value, (list, tuple)):
            lines.append("%s:" % key)
            lines.extend("  - %s" % _yaml_scalar(x) for x in value)
        else:
            lines.append("%s: %s" % (key, _yaml_scalar(value)))
    lines.append("listeners:")
    for listener in listeners:
        first = True
        for key, value in listener.items():
            lines.append("%s%s: %s" % ("  - " if first else "    ", key, _yaml_scalar(value)))
            first = False
    return "\n".join(lines) + "\n"


def to_mosquitto_conf(options, listeners):
    lines = []
    for key, value in options.items():
        if key in ("workers", "connect_timeout", "backpressure", "backpressure_timeout"):
            continue  # midge-only options
        if isinstance(value, (list, tuple)):
            lines.extend("%s %s" % (key, _mosq_scalar(x)) for x in value)
        else:
            lines.append("%s %s" % (key, _mosq_scalar(value)))
    for listener in listeners:
        listener = dict(listener)
        port = listener.pop("port")
        addr = listener.pop("bind_address", "127.0.0.1")
        lines.append("listener %d %s" % (port, addr))
        for key, value in listener.items():
            lines.append("%s %s" % (key, _mosq_scalar(value)))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- broker

class Broker:
    """A broker process with a generated configuration.

    options: global options (mosquitto names); listeners: list of dicts, by
    default one plain MQTT listener on 127.0.0.1 with allow_anonymous true.
    raw_config: use this text as the whole configuration file instead
    (format by `config_name`'s extension); the port must then be known.
    """

    def __init__(self, options=None, listeners=None, raw_config=None, config_name=None,
                 args=None, verbose=True, start=True, env=None):
        self.options = {"allow_anonymous": True}
        if options:
            self.options.update(options)
        self.listeners = listeners
        self.raw_config = raw_config
        self.config_name = config_name
        self.args = list(args or [])
        self.verbose = verbose
        self.env = env
        self.proc = None
        self.port = None
        self.ports = []
        self.log_lines = []
        self._log_lock = threading.Lock()
        self.tmpdir = tempfile.mkdtemp(prefix="midgetest-")
        if start:
            self.start()

    # Configuration -------------------------------------------------------
    def _write_config(self):
        if self.raw_config is not None:
            name = self.config_name or ("broker.conf" if is_mosquitto() else "broker.yaml")
            path = os.path.join(self.tmpdir, name)
            with open(path, "w") as f:
                f.write(self.raw_config)
            return path
        listeners = self.listeners or [{}]
        filled = []
        for listener in listeners:
            l = {"port": 0, "bind_address": "127.0.0.1"}
            l.update(listener)
            if is_mosquitto() and l["port"] == 0:
                l["port"] = free_port()
            filled.append(l)
        options = dict(self.options)
        if is_mosquitto():
            path = os.path.join(self.tmpdir, "broker.conf")
            text = to_mosquitto_conf(options, filled)
            self.ports = [l["port"] for l in filled]
        else:
            options.setdefault("user", "root")
            path = os.path.join(self.tmpdir, "broker.yaml")
            text = to_yaml(options, filled)
        with open(path, "w") as f:
            f.write(text)
        return path

    # Process ---------------------------------------------------------------
    def command(self, config_path):
        binary = MOSQUITTO_BIN if is_mosquitto() else MIDGE_BIN
        cmd = [binary, "-c", config_path]
        if self.verbose:
            cmd.append("-v")
        return cmd + self.args

    def start(self):
        self.config_path = self._write_config()
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.command(self.config_path), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.tmpdir, env=env)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        expected = len(self.listeners or [{}]) if self.raw_config is None else 1
        if is_mosquitto() and self.ports:
            # Wait for mosquitto's "running" line (or, if it logs elsewhere, for
            # its ports in /proc/net) rather than probing the port: a probe
            # connection that closes before CONNECT skews mosquitto 2.0's
            # per-listener connection count (max_connections).
            wait_for(lambda: self._log_has(r"mosquitto version \S+ running")
                     or all(listening_addresses(p) for p in self.ports)
                     or self.proc.poll() is not None, timeout=10, what="mosquitto to start")
            if self.proc.poll() is not None:
                raise AssertionError("mosquitto exited with %s:\n%s" % (self.proc.returncode, self.log()))
        else:
            wait_for(lambda: len(self._listen_ports()) >= expected or self.proc.poll() is not None,
                     timeout=10, what="broker to listen")
            if self.proc.poll() is not None:
                raise AssertionError("broker exited with %s:\n%s" % (self.proc.returncode, self.log()))
            self.ports = self._listen_ports()
        self.port = self.ports[0]
        return self

    def _log_has(self, pattern):
        with self._log_lock:
            return any(re.search(pattern, line) for line in self.log_lines)

    def _listen_ports(self):
        ports = []
        with self._log_lock:
            for line in self.log_lines:
                m = re.search(r"Opening ipv[46] listen socket on port (\d+)", line)
                if m and int(m.group(1)) not in ports:
                    ports.append(int(m.group(1)))
        return ports

    def _read_log(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._log_lock:
                self.log_lines.append(line)

    def log(self):
        # Once the broker has exited, its last lines may still be in the pipe:
        # the reader thread ends when it has read them all.
        if self.proc is not None and self.proc.poll() is not None:
            self._reader.join(timeout=5)
        with self._log_lock:
            return "\n".join(self.log_lines)

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT):
        """Waits until a log line matches the regular expression; returns the match."""
        rx = re.compile(pattern)

        def find():
            with self._log_lock:
                for line in self.log_lines:
                    m = rx.search(line)
                    if m:
                        return m
            return None
        return wait_for(find, timeout=timeout, what="log line /%s/" % pattern)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        self.proc.stdout.close()
        rc = self.proc.returncode
        if os.environ.get("MIDGE_TEST_KEEP"):
            sys.stderr.write("kept %s\n" % self.tmpdir)
        else:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- packets

def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def mqtt_str(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return struct.pack("!H", len(s)) + s


def packet(ptype, flags, body=b""):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def props_block(raw=b""):
    return varint(len(raw)) + raw


def connect(client_id="", clean=True, keepalive=60, proto=4, will=None, username=None,
            password=None, props=b"", will_props=b"", flags_override=None, proto_name=None):
    """CONNECT. will = (topic, payload, qos, retain)."""
    name = proto_name if proto_name is not None else ("MQIsdp" if proto == 3 else "MQTT")
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    if flags_override is not None:
        flags = flags_override
    body = mqtt_str(name) + bytes([proto, flags]) + struct.pack("!H", keepalive)
    if proto == 5:
        body += props_block(props)
    body += mqtt_str(client_id)
    if will:
        if proto == 5:
            body += props_block(will_props)
        body += mqtt_str(will[0]) + mqtt_str(will[1])
    if username is not None:
        body += mqtt_str(username)
    if password is not None:
        body += mqtt_str(password)
    return packet(CONNECT, 0, body)


def connack(rc=0, session_present=False, proto=4, props=None):
    body = bytes([1 if session_present else 0, rc])
    if proto == 5:
        body += props_block(props or b"")
    return packet(CONNACK, 0, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, mid=None, proto=4, props=b""):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    flags = (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    body = mqtt_str(topic)
    if qos > 0:
        body += struct.pack("!H", mid)
    if proto == 5:
        body += props_block(props)
    return packet(PUBLISH, flags, body + payload)


def ack(ptype, mid, proto=4, reason=None, props=None):
    flags = 0x02 if ptype == PUBREL else 0
    body = struct.pack("!H", mid)
    if proto == 5 and (reason is not None or props is not None):
        body += bytes([reason or 0])
        if props is not None:
            body += props_block(props)
    return packet(ptype, flags, body)


def puback(mid, **kw):
    return ack(PUBACK, mid, **kw)


def pubrec(mid, **kw):
    return ack(PUBREC, mid, **kw)


def pubrel(mid, **kw):
    return ack(PUBREL, mid, **kw)


def pubcomp(mid, **kw):
    return ack(PUBCOMP, mid, **kw)


def subscribe(mid, topics, proto=4, props=b""):
    """topics: list of (filter, options byte) or a single filter with qos."""
    body = struct.pack("!H", mid)
    if proto == 5:
        body += props_block(props)
    for topic, opts in topics:
        body += mqtt_str(topic) + bytes([opts])
    return packet(SUBSCRIBE, 0x02, body)


def suback(mid, codes, proto=4, props=b""):
    body = struct.pack("!H", mid)
    if proto == 5:
        body += props_block(props)
    return packet(SUBACK, 0, body + bytes(codes))


def unsubscribe(mid, topics, proto=4, props=b""):
    body = struct.pack("!H", mid)
    if proto == 5:
        body += props_block(props)
    for topic in topics:
        body += mqtt_str(topic)
    return packet(UNSUBSCRIBE, 0x02, body)


def unsuback(mid, codes=None, proto=4, props=b""):
    body = struct.pack("!H", mid)
    if proto == 5:
        body += props_block(props) + bytes(codes or [])
    return packet(UNSUBACK, 0, body)


def pingreq():
    return packet(PINGREQ, 0)


def pingresp():
    return packet(PINGRESP, 0)


def disconnect(proto=4, reason=None, props=None):
    body = b""
    if proto == 5 and (reason is not None or props is not None):
        body = bytes([reason or 0])
        if props is not None:
            body += props_block(props)
    return packet(DISCONNECT, 0, body)


def describe(data):
    """A readable name for a packet, for assertion messages."""
    if not data:
        return "<nothing>"
    names = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
             7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
             12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}
    return "%s %s" % (names.get(data[0] >> 4, "?"), data.hex(" "))


Publish = collections.namedtuple("Publish", "topic payload qos retain dup mid")


def parse_publish(data):
    """Decodes a whole MQTT 3.1/3.1.1 PUBLISH packet (topic as bytes)."""
    if not data or data[0] >> 4 != PUBLISH:
        raise AssertionError("expected a PUBLISH, got %s" % describe(data))
    i = 1
    while data[i] & 0x80:
        i += 1
    body = data[i + 1:]
    tlen = struct.unpack("!H", body[:2])[0]
    topic, rest = body[2:2 + tlen], body[2 + tlen:]
    qos = (data[0] >> 1) & 3
    mid = None
    if qos:
        mid, rest = struct.unpack("!H", rest[:2])[0], rest[2:]
    return Publish(topic, rest, qos, bool(data[0] & 1), bool(data[0] & 8), mid)


# ---------------------------------------------------------------- raw client

class Closed(Exception):
    pass


class RawClient:
    """A TCP connection speaking raw MQTT bytes."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed()
            self.buf += chunk

    def read_packet(self, timeout=None):
        """Returns the next whole packet as bytes; raises Closed or socket.timeout."""
        timeout = self.timeout if timeout is None else timeout
        self._fill(2, timeout)
        length, mult, i = 0, 1, 1
        while True:
            self._fill(i + 1, timeout)
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        self._fill(i + length, timeout)
        pkt, self.buf = self.buf[:i + length], self.buf[i + length:]
        return pkt

    def expect(self, expected, timeout=None, msg=""):
        try:
            got = self.read_packet(timeout)
        except Closed:
            raise AssertionError("connection closed, expected %s %s" % (describe(expected), msg))
        except socket.timeout:
            raise AssertionError("timed out, expected %s %s" % (describe(expected), msg))
        if got != expected:
            raise AssertionError("expected %s\n     got %s %s" % (describe(expected), describe(got), msg))
        return got

    def expect_closed(self, timeout=None, msg=""):
        """Asserts that the broker closes the connection (any pending packet is a failure)."""
        try:
            got = self.read_packet(timeout)
        except Closed:
            return
        except socket.timeout:
            raise AssertionError("connection still open %s" % msg)
        raise AssertionError("expected the connection to close, got %s %s" % (describe(got), msg))

    def expect_nothing(self, timeout=0.5, msg=""):
        try:
            got = self.read_packet(timeout)
        except socket.timeout:
            return
        except Closed:
            raise AssertionError("connection closed, expected it to stay quiet %s" % msg)
        raise AssertionError("expected no packet, got %s %s" % (describe(got), msg))

    def expect_publish(self, topic, payload=b"", qos=0, retain=False, dup=False, mid=None,
                       timeout=None, msg=""):
        """Expects a PUBLISH byte for byte. The broker picks the packet id of a
        QoS 1/2 message: pass mid=None to accept any non-zero id. Returns the id."""
        try:
            got = self.read_packet(timeout)
        except Closed:
            raise AssertionError("connection closed, expected a PUBLISH on %r %s" % (topic, msg))
        except socket.timeout:
            raise AssertionError("timed out, expected a PUBLISH on %r %s" % (topic, msg))
        if qos and mid is None and got[0] >> 4 == PUBLISH:
            mid = parse_publish(got).mid or 0
            if mid == 0:
                raise AssertionError("PUBLISH with packet id 0: %s %s" % (describe(got), msg))
        expected = publish(topic, payload, qos=qos, retain=retain, dup=dup, mid=mid)
        if got != expected:
            raise AssertionError("expected %s\n     got %s %s" % (describe(expected), describe(got), msg))
        return mid

    def subscribe_ok(self, topics, mid=1, granted=None):
        """SUBSCRIBE [(filter, qos), ...]; expects a SUBACK granting `granted`
        (by default exactly the requested QoS)."""
        self.send(subscribe(mid, topics))
        self.expect(suback(mid, granted if granted is not None else [q for _, q in topics]))
        return self

    def ping(self, msg=""):
        """PINGREQ -> PINGRESP: the connection is alive and everything the
        broker sent before it has been read."""
        self.send(pingreq())
        self.expect(pingresp(), msg=msg)

    def closed_after(self, timeout, msg=""):
        """Waits for the broker to close the connection; returns the seconds it took."""
        t0 = time.monotonic()
        self.expect_closed(timeout, msg)
        return time.monotonic() - t0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connected_client(port, client_id="", proto=4, session_present=False, **kw):
    """A RawClient past CONNECT and a successful CONNACK."""
    c = RawClient(port)
    c.send(connect(client_id, proto=proto, **kw))
    if proto == 5:
        got = c.read_packet()
        if got[0] != 0x20 or got[3] != 0 or (got[2] & 1) != int(session_present):
            raise AssertionError("expected a successful CONNACK, got %s" % describe(got))
    else:
        c.expect(connack(0, session_present=session_present, proto=proto))
    return c


_ids = itertools.count(1)


def unique_id(prefix="c"):
    """A name (client id, topic level) not used before in this process."""
    return "%s%d" % (prefix, next(_ids))


class Witness:
    """A bystander: a subscriber and a publisher exchanging a QoS 1 stream on
    their own topic, to prove that another client's protocol violation
    disturbed nobody else and lost nothing:

        with self.witness().around():
            bad.send(garbage)
            bad.expect_closed()

    around() publishes n messages before the block and n after it, then
    verify() checks that the subscriber got every one, in order, exactly once.
    """

    def __init__(self, port, name=None):
        name = name or unique_id("witness")
        self.topic = "witness/" + name
        self.sub = connected_client(port, name + "-s")
        self.sub.subscribe_ok([(self.topic, 1)])
        self.pub = connected_client(port, name + "-p")
        self.sent = self.received = 0
        self._mids = itertools.cycle(range(1, 65536))

    def publish(self, n=2):
        for _ in range(n):
            mid = next(self._mids)
            self.pub.send(publish(self.topic, "m%d" % self.sent, qos=1, mid=mid))
            self.pub.expect(puback(mid), msg="(witness publisher)")
            self.sent += 1

    def verify(self):
        """Receives and acknowledges everything published so far; nothing else may arrive."""
        while self.received < self.sent:
            mid = self.sub.expect_publish(self.topic, "m%d" % self.received, qos=1,
                                          msg="(witness subscriber, message %d)" % self.received)
            self.sub.send(puback(mid))
            self.received += 1
        self.sub.ping("(witness subscriber: nothing more than %d messages)" % self.sent)
        self.pub.ping("(witness publisher)")

    @contextlib.contextmanager
    def around(self, n=2):
        self.publish(n)
        yield self
        self.publish(n)
        self.verify()

    def close(self):
        for c in (self.sub, self.pub):
            try:
                c.send(disconnect())
            except OSError:
                pass
            c.close()


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def sanitizer_report(text):
    """The first line of a sanitizer report in a broker's output, or None."""
    for line in text.splitlines():
        if any(mark in line for mark in SANITIZER_MARKS):
            return line
    return None


def _stop_checked(broker):
    """Stops the broker and fails if it died, did not exit cleanly on SIGTERM,
    or a sanitizer reported anything (a leak counts)."""
    alive, log = broker.alive(), broker.log()
    rc = broker.stop()
    if not alive:
        raise AssertionError("the broker died during the test:\n" + log)
    if is_mosquitto():
        return
    log = broker.log()
    report = sanitizer_report(log)
    if report:
        raise AssertionError("sanitizer report from the broker: %s\n%s" % (report, log[-6000:]))
    if rc != 0:
        raise AssertionError("the broker exited with %s after SIGTERM:\n%s" % (rc, log[-6000:]))


class _Helpers:
    """Clients, witnesses and extra brokers that are cleaned up after the test."""

    def client(self, client_id=None, port=None, **kw):
        """A client past a successful CONNACK (client_id None: a fresh unique id)."""
        c = connected_client(port or self.port, unique_id() if client_id is None else client_id, **kw)
        self.addCleanup(c.close)
        return c

    def raw(self, port=None):
        """A bare TCP connection, nothing sent yet."""
        c = RawClient(port or self.port)
        self.addCleanup(c.close)
        return c

    def witness(self, port=None):
        w = Witness(port or self.port)
        self.addCleanup(w.close)
        return w

    def topic(self, suffix=""):
        return "t/%s/%s%s" % (self._testMethodName, unique_id("n"), suffix)

    def midge_only(self, why):
        """Skips the rest of the test on mosquitto (say what mosquitto does instead)."""
        if is_mosquitto():
            self.skipTest("midge-only: " + why)


class BrokerTestCase(_Helpers, unittest.TestCase):
    """A test case with a broker started per test (override broker_options)."""

    broker_options = None
    broker_listeners = None

    def setUp(self):
        self.broker = Broker(options=self.broker_options, listeners=self.broker_listeners)
        self.port = self.broker.port

    def tearDown(self):
        _stop_checked(self.broker)


class SharedBrokerTestCase(_Helpers, unittest.TestCase):
    """A test case whose tests share one broker per class: give every client
    and topic a unique name (self.client(), self.topic())."""

    broker_options = None
    broker_listeners = None

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(options=cls.broker_options, listeners=cls.broker_listeners)
        cls.addClassCleanup(_stop_checked, cls.broker)  # runs even if a subclass's setUpClass fails
        cls.port = cls.broker.port

    def tearDown(self):
        if not self.broker.alive():
            self.fail("the broker died during the test:\n" + self.broker.log())


def main():
    unittest.main(verbosity=2)


# =====================================================================
# Real clients (added for test_08_sys, test_10_clients, test_11_cli).
# Only additions below this line: mosquitto_pub / mosquitto_sub as
# subprocesses, a blocking wrapper around paho-mqtt, and a way to see
# which addresses a port listens on without connecting to it.
# =====================================================================

MOSQUITTO_PUB_BIN = os.environ.get("MOSQUITTO_PUB", "mosquitto_pub")
MOSQUITTO_SUB_BIN = os.environ.get("MOSQUITTO_SUB", "mosquitto_sub")


def broker_binary():
    """The binary of the broker under test (midge, or mosquitto when targeted)."""
    return MOSQUITTO_BIN if is_mosquitto() else MIDGE_BIN


def _proc_net_addr(hexaddr):
    if len(hexaddr) == 8:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hexaddr, 16)))
    words = struct.pack("<4I", *(int(hexaddr[i:i + 8], 16) for i in range(0, 32, 8)))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening_addresses(port):
    """The local addresses with a TCP socket listening on `port` ("127.0.0.1",
    "0.0.0.0", "::1", "::"), read from /proc/net: nothing connects to it."""
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    addr, hexport = fields[1].split(":")
                    if fields[3] == "0A" and int(hexport, 16) == port:
                        found.add(_proc_net_addr(addr))
        except FileNotFoundError:
            pass
    return found


def mosquitto_pub(port, *args, timeout=10, check=True):
    """Runs mosquitto_pub against 127.0.0.1:port with `args`; returns the
    CompletedProcess (stdout and stderr together, as text)."""
    cmd = [MOSQUITTO_PUB_BIN, "-h", "127.0.0.1", "-p", str(port)] + [str(a) for a in args]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, timeout=timeout)
    res.stdout = res.stdout.decode("utf-8", "replace")
    if check and res.returncode != 0:
        raise AssertionError("%s exited with %d:\n%s" % (" ".join(cmd), res.returncode, res.stdout))
    return res


class MosquittoSub:
    """A mosquitto_sub process (-d, line-buffered through stdbuf) whose
    messages are parsed as they arrive. The constructor returns once it has
    its SUBACK. messages: list of (topic, payload bytes, qos, retain).

        with MosquittoSub(port, ["a/#"], qos=1, args=["-C", "3", "-W", "10"]) as sub:
            ...
            msgs = sub.wait_messages(3)
            self.assertEqual(sub.wait_exit(), 0)
    """

    def __init__(self, port, topics, qos=0, args=(), wait_subscribed=True, timeout=DEFAULT_TIMEOUT):
        cmd = ["stdbuf", "-oL", MOSQUITTO_SUB_BIN, "-h", "127.0.0.1", "-p", str(port),
               "-d", "-q", str(qos), "-F", "MSG %r %q %x %t"]
        for t in topics:
            cmd += ["-t", t]
        self.cmd = cmd + [str(a) for a in args]
        self.lines = []
        self.messages = []
        self.eof = False
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait_subscribed:
            try:
                self.wait_line(r"^Subscribed \(mid", timeout)
            except AssertionError:
                self.stop()
                raise

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append(line)
                if line.startswith("MSG "):
                    _, retain, qos, payload, topic = line.split(" ", 4)
                    self.messages.append((topic, bytes.fromhex(payload), int(qos), retain == "1"))
                self._cond.notify_all()
        with self._cond:
            self.eof = True
            self._cond.notify_all()

    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def _wait(self, predicate, timeout, what):
        with self._cond:
            if not self._cond.wait_for(lambda: predicate() or self.eof, timeout):
                raise AssertionError("timed out after %.1fs waiting for mosquitto_sub %s; output:\n%s"
                                     % (timeout, what, "\n".join(self.lines)))
            if not predicate():
                raise AssertionError("mosquitto_sub ended before %s; output:\n%s"
                                     % (what, "\n".join(self.lines)))

    def wait_line(self, pattern, timeout=DEFAULT_TIMEOUT):
        rx = re.compile(pattern)
        self._wait(lambda: any(rx.search(l) for l in self.lines), timeout, "line /%s/" % pattern)

    def wait_messages(self, n, timeout=DEFAULT_TIMEOUT):
        """Waits for at least n messages; returns them all."""
        self._wait(lambda: len(self.messages) >= n, timeout, "%d messages" % n)
        with self._cond:
            return list(self.messages)

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        """Waits for the process to end (e.g. after -C n); returns its exit code."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("mosquitto_sub still running after %.1fs; output:\n%s"
                                 % (timeout, self.output()))
        self._reader.join(2)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class PahoClient:
    """A paho-mqtt client (Debian's python3-paho-mqtt 1.6) on its own network
    thread, with blocking helpers. protocol: 3 (MQTT 3.1), 4 (3.1.1) or 5;
    will: (topic, payload, qos, retain). messages: list of
    (topic, payload bytes, qos, retain). It never reconnects by itself."""

    def __init__(self, port, client_id="", clean_session=True, protocol=4, will=None,
                 username=None, password=None, keepalive=60, timeout=DEFAULT_TIMEOUT,
                 expect_rc=0):
        import paho.mqtt.client as mqtt  # only the real-client tests need paho
        self.mqtt = mqtt
        self.port = port
        self.timeout = timeout
        version = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}[protocol]
        kw = {} if protocol == 5 else {"clean_session": clean_session}
        self.client = mqtt.Client(client_id=client_id, protocol=version,
                                  reconnect_on_failure=False, **kw)
        self.messages = []
        self.connack = None  # (flags dict, rc)
        self.suback = {}
        self._cond = threading.Condition()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        if will:
            self.client.will_set(will[0], will[1], will[2], will[3])
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.connect("127.0.0.1", port, keepalive)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.client.loop_stop()
            raise AssertionError("paho client %r: no CONNACK within %.1fs" % (client_id, timeout))
        rc = self.connack[1]
        if expect_rc is not None and rc != expect_rc:
            self.close()
            raise AssertionError("paho client %r: CONNACK rc %s, expected %s" % (client_id, rc, expect_rc))

    def _on_connect(self, client, userdata, flags, rc, *props):
        self.connack = (flags, rc)
        self.connected.set()

    def _on_disconnect(self, client, userdata, rc, *props):
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, *props):
        with self._cond:
            self.suback[mid] = list(granted)
            self._cond.notify_all()

    @property
    def session_present(self):
        return bool(self.connack[0].get("session present"))

    def subscribe(self, topic, qos=0):
        """SUBSCRIBE and wait for the SUBACK; returns the granted QoS list."""
        rc, mid = self.client.subscribe(topic, qos)
        if rc != self.mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("paho subscribe(%r) failed: %s" % (topic, rc))
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self.suback, self.timeout):
                raise AssertionError("no SUBACK for %r within %.1fs" % (topic, self.timeout))
            return self.suback[mid]

    def publish(self, topic, payload, qos=0, retain=False, wait=True):
        """PUBLISH; with wait, returns once the flow is complete (sent for QoS 0,
        PUBACK for 1, PUBCOMP for 2)."""
        info = self.client.publish(topic, payload, qos, retain)
        if info.rc != self.mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("paho publish(%r) failed: %s" % (topic, info.rc))
        if wait:
            info.wait_for_publish(self.timeout)
            if not info.is_published():
                raise AssertionError("paho publish(%r, qos %d) not acknowledged within %.1fs"
                                     % (topic, qos, self.timeout))
        return info

    def wait_messages(self, n, timeout=None):
        """Waits for at least n messages; returns them all."""
        timeout = self.timeout if timeout is None else timeout
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= n, timeout):
                raise AssertionError("paho client got %d of %d messages within %.1fs: %r"
                                     % (len(self.messages), n, timeout, self.messages[:20]))
            return list(self.messages)

    def wait_for(self, predicate, timeout=None, what="a message"):
        """Waits until predicate(messages) is true; returns the messages."""
        timeout = self.timeout if timeout is None else timeout
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.messages), timeout):
                raise AssertionError("paho client: timed out after %.1fs waiting for %s; got %r"
                                     % (timeout, what, self.messages[-20:]))
            return list(self.messages)

    def disconnect(self):
        """A clean DISCONNECT (no will); returns once the socket is closed."""
        self.client.disconnect()
        if not self.disconnected.wait(self.timeout):
            raise AssertionError("paho client did not disconnect within %.1fs" % self.timeout)
        self.client.loop_stop()

    def abort(self):
        """Drops the connection without DISCONNECT, as a crash would (the will goes out)."""
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if not self.disconnected.wait(self.timeout):
            raise AssertionError("paho client did not notice its socket closing")
        self.client.loop_stop()

    def close(self):
        if self.connected.is_set() and not self.disconnected.is_set():
            try:
                self.client.disconnect()
                self.disconnected.wait(2)
            except Exception:
                pass
        self.client.loop_stop()


# =====================================================================
# Security and transports (added for test_14 .. test_19: password and
# ACL files, TLS, PSK, WebSockets, unix sockets). Only additions below
# this line: a Broker subclass whose configuration writers also know unix
# socket listeners and per-listener security, helpers for password files
# and throwaway certificates, and raw clients over TLS, WebSockets and
# AF_UNIX sockets built on RawClient.
# =====================================================================

import base64  # noqa: E402
import hashlib  # noqa: E402
import ssl  # noqa: E402

MOSQUITTO_PASSWD_BIN = os.environ.get("MOSQUITTO_PASSWD", "/usr/bin/mosquitto_passwd")
GEN_TEST_CERTS = os.path.join(SRCDIR, "scripts", "gen-test-certs.sh")
LISTEN_LINE = re.compile(r"Opening (?:ipv[46]|websockets) listen socket on port (\d+)")


def _is_unix(listener):
    return "unix_socket_path" in listener


def to_mosquitto_conf_ext(options, listeners):
    """Like to_mosquitto_conf, and also: per_listener_settings goes first
    (mosquitto refuses it after any other security option), options whose
    value is None are left out, and {"unix_socket_path": P} becomes
    `listener 0 P`."""
    lines = []
    items = sorted(options.items(), key=lambda kv: kv[0] != "per_listener_settings")
    for key, value in items:
        if value is None or key in ("workers", "connect_timeout"):
            continue
        if isinstance(value, (list, tuple)):
            lines.extend("%s %s" % (key, _mosq_scalar(x)) for x in value)
        else:
            lines.append("%s %s" % (key, _mosq_scalar(value)))
    for listener in listeners:
        listener = dict(listener)
        if _is_unix(listener):
            lines.append("listener 0 %s" % listener.pop("unix_socket_path"))
        else:
            lines.append("listener %d %s" % (listener.pop("port"), listener.pop("bind_address", "127.0.0.1")))
        for key, value in listener.items():
            if value is not None:
                lines.append("%s %s" % (key, _mosq_scalar(value)))
    return "\n".join(lines) + "\n"


def to_yaml_ext(options, listeners):
    """Like to_yaml, leaving out None values; a unix socket listener carries
    unix_socket_path and no port or bind_address."""
    options = {k: v for k, v in options.items() if v is not None}
    listeners = [{k: v for k, v in l.items() if v is not None} for l in listeners]
    return to_yaml(options, listeners)


class SecureBroker(Broker):
    """A Broker for the security and transport tests.

    Listeners may be unix sockets ({"unix_socket_path": path}) and may carry
    security options (password_file, acl_file, allow_anonymous, ...): with
    options["per_listener_settings"] true, the harness's default global
    `allow_anonymous true` is left out (give it per listener). Any option set
    to None is left out, e.g. allow_anonymous=None to see the broker's own
    default. mosquitto runs with `user root` so that it can read the test's
    private files at start and again on SIGHUP (as root it would otherwise
    drop to the mosquitto user).

    ports: the TCP listeners' ports, in listener order (WebSockets
    included); unix_paths: the unix socket paths.
    """

    def __init__(self, options=None, listeners=None, start=True, **kw):
        opts = dict(options or {})
        if opts.get("per_listener_settings") and "allow_anonymous" not in opts:
            opts["allow_anonymous"] = None
        super().__init__(options=opts, listeners=listeners, start=False, **kw)
        self.unix_paths = [l["unix_socket_path"] for l in (listeners or []) if _is_unix(l)]
        if start:
            self.start()

    def _write_config(self):
        if self.raw_config is not None:
            return super()._write_config()
        filled = []
        for listener in self.listeners or [{}]:
            if _is_unix(listener):
                filled.append(dict(listener))
                continue
            l = {"port": 0, "bind_address": "127.0.0.1"}
            l.update(listener)
            if is_mosquitto() and l["port"] == 0:
                l["port"] = free_port()
            filled.append(l)
        options = dict(self.options)
        if is_mosquitto():
            options.setdefault("user", "root")
            path = os.path.join(self.tmpdir, "broker.conf")
            text = to_mosquitto_conf_ext(options, filled)
            self.ports = [l["port"] for l in filled if not _is_unix(l)]
        else:
            options.setdefault("user", "root")
            path = os.path.join(self.tmpdir, "broker.yaml")
            text = to_yaml_ext(options, filled)
        with open(path, "w") as f:
            f.write(text)
        return path

    def _tcp_listeners(self):
        return [l for l in (self.listeners or [{}]) if not _is_unix(l)]

    def _logged_ports(self):
        ports = []
        with self._log_lock:
            for line in self.log_lines:
                m = LISTEN_LINE.search(line)
                if m and int(m.group(1)) not in ports:
                    ports.append(int(m.group(1)))
        return ports

    def _started(self):
        if is_mosquitto():
            return self._log_has(r"mosquitto version \S+ running")
        # The path exists from bind(), before listen(): wait for the broker's line instead.
        return (len(self._logged_ports()) >= len(self._tcp_listeners())
                and all(self._log_has(r"Opening unix listen socket on path %s\." % re.escape(p))
                        for p in self.unix_paths))

    def _launch(self):
        self.config_path = self._write_config()
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.command(self.config_path), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.tmpdir, env=env)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def start(self):
        self._launch()
        wait_for(lambda: self._started() or self.proc.poll() is not None,
                 timeout=10, what="the broker to start")
        if self.proc.poll() is not None:
            self._reader.join(2)
            raise AssertionError("broker exited with %s:\n%s" % (self.proc.returncode, self.log()))
        if not is_mosquitto():
            self.ports = self._logged_ports()
        self.port = self.ports[0] if self.ports else None
        return self

    def start_refused(self, timeout=10):
        """Starts the broker expecting it to reject its configuration and exit;
        returns (exit status, whole log). Fails if it starts serving."""
        self._launch()
        wait_for(lambda: self._started() or self.proc.poll() is not None,
                 timeout=timeout, what="the broker to exit (or start)")
        if self.proc.poll() is None:
            raise AssertionError("the broker started although its configuration is bad:\n" + self.log())
        self._reader.join(2)
        return self.proc.returncode, self.log()

    def log_since(self, mark):
        """The log lines after the first `mark` lines (mark = len(broker.log_lines))."""
        with self._log_lock:
            return "\n".join(self.log_lines[mark:])


def make_password_file(path, users, hash_type=None):
    """Writes a password file with mosquitto_passwd -b: users maps user name to
    password; hash_type None ($7$, PBKDF2-SHA512, mosquitto 2.0's default) or
    "sha512" ($6$). Appends to an existing file (replacing a user's line)."""
    for i, (user, password) in enumerate(users.items()):
        cmd = [MOSQUITTO_PASSWD_BIN]
        if hash_type:
            cmd += ["-H", hash_type]
        if i == 0 and not os.path.exists(path):
            cmd.append("-c")
        cmd += ["-b", path, user, password]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(path, 0o644)
    return path


def connack_code(port, client_id=None, proto=4, host="127.0.0.1", client=None, **kw):
    """Sends CONNECT on a new connection and returns the CONNACK's return code
    (reason code for MQTT 5); None if the connection closed without one. The
    connection is closed afterwards. client: an unconnected RawClient to use."""
    c = client or RawClient(port, host)
    try:
        c.send(connect(unique_id() if client_id is None else client_id, proto=proto, **kw))
        try:
            got = c.read_packet()
        except (Closed, OSError):
            return None
        if got[0] != 0x20:
            raise AssertionError("expected a CONNACK, got %s" % describe(got))
        return got[3]
    finally:
        c.close()


class UnixRawClient(RawClient):
    """A RawClient over an AF_UNIX stream socket."""

    def __init__(self, path, timeout=DEFAULT_TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.timeout = timeout
        self.buf = b""


class TLSRawClient(RawClient):
    """A RawClient over TLS. context: an ssl.SSLContext; server_hostname for
    SNI and name checks. The handshake happens in the constructor (it raises
    ssl.SSLError or OSError when the server refuses it there). A TLS alert or
    EOF later (as when a TLS 1.3 server rejects the client's certificate
    after the client has finished its handshake) reads as Closed, and
    tls_error keeps what was seen."""

    def __init__(self, port, context, server_hostname="localhost", host="127.0.0.1",
                 timeout=DEFAULT_TIMEOUT):
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise
        self.timeout = timeout
        self.buf = b""
        self.tls_error = None

    def _fill(self, n, timeout):
        try:
            return RawClient._fill(self, n, timeout)
        except ssl.SSLError as e:  # an alert from the server
            self.tls_error = e
            raise Closed()
        except (BrokenPipeError, ConnectionResetError) as e:
            self.tls_error = e
            raise Closed()

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (ssl.SSLError, BrokenPipeError, ConnectionResetError) as e:
            self.tls_error = e


def tls_context(cafile=None, certfile=None, keyfile=None, check_hostname=True,
                minimum=None, maximum=None):
    """A client-side ssl.SSLContext trusting cafile (None: trust nothing, no
    verification) with an optional client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = check_hostname
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def tls_connack(port, context, server_hostname="localhost", **kw):
    """Connects over TLS and sends CONNECT. Returns ("connack", code) when
    the broker answers, ("handshake", error) when the TLS handshake fails,
    ("closed", error or None) when the connection closes after the handshake
    without a CONNACK."""
    try:
        c = TLSRawClient(port, context, server_hostname=server_hostname)
    except (ssl.SSLError, OSError) as e:
        return ("handshake", e)
    try:
        c.send(connect(kw.pop("client_id", None) or unique_id("tls"), **kw))
        try:
            got = c.read_packet()
        except Closed:
            return ("closed", c.tls_error)
        if got[0] != 0x20:
            raise AssertionError("expected a CONNACK, got %s" % describe(got))
        return ("connack", got[3])
    finally:
        c.close()


class Certs:
    """Throwaway certificates made by scripts/gen-test-certs.sh in a temporary
    directory (see the script for the files). Make one per test module:

        CERTS = Certs(["alice", "bob"])   # client-alice.crt, client-bob.crt
        CERTS.path("ca.crt"); CERTS.client("alice") -> (crt, key)
        CERTS.cleanup()
    """

    def __init__(self, client_cns=("client",)):
        self.dir = tempfile.mkdtemp(prefix="midgetest-certs-")
        os.chmod(self.dir, 0o755)
        res = subprocess.run(["sh", GEN_TEST_CERTS, self.dir] + list(client_cns),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if res.returncode != 0:
            raise RuntimeError("gen-test-certs.sh failed:\n" + res.stdout.decode("utf-8", "replace"))

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def ca(self):
        return self.path("ca.crt")

    def pair(self, name):
        """(NAME.crt, NAME.key)."""
        return self.path(name + ".crt"), self.path(name + ".key")

    def client(self, cn):
        return self.pair("client-" + cn)

    def server_listener(self, **extra):
        """Listener options for a TLS listener with the server certificate."""
        l = {"cafile": self.ca, "certfile": self.path("server.crt"), "keyfile": self.path("server.key")}
        l.update(extra)
        return l

    def cleanup(self):
        if os.environ.get("MIDGE_TEST_KEEP"):
            sys.stderr.write("kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class PahoTransportClient(PahoClient):
    """A PahoClient over TLS and/or WebSockets (paho-mqtt 1.6).

    tls: dict of tls_set() keyword arguments (ca_certs, certfile, keyfile,
    tls_version, ...), or an ssl.SSLContext given to tls_set_context();
    insecure: tls_insecure_set(True) (no host name check); transport: "tcp"
    or "websockets"; ws_path, ws_headers: ws_set_options(). With
    expect_rc=None a refused connection is not a failure: look at connack /
    connect_error."""

    def __init__(self, port, client_id="", clean_session=True, protocol=4, will=None,
                 username=None, password=None, keepalive=60, timeout=DEFAULT_TIMEOUT,
                 expect_rc=0, tls=None, insecure=False, transport="tcp", ws_path=None,
                 ws_headers=None, host="127.0.0.1"):
        import paho.mqtt.client as mqtt
        self.mqtt = mqtt
        self.port = port
        self.timeout = timeout
        version = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}[protocol]
        kw = {} if protocol == 5 else {"clean_session": clean_session}
        self.client = mqtt.Client(client_id=client_id, protocol=version, transport=transport,
                                  reconnect_on_failure=False, **kw)
        self.messages = []
        self.connack = None
        self.connect_error = None
        self.suback = {}
        self._cond = threading.Condition()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        if isinstance(tls, ssl.SSLContext):
            self.client.tls_set_context(tls)
        elif tls is not None:
            self.client.tls_set(**tls)
        if insecure:
            self.client.tls_insecure_set(True)
        if transport == "websockets" and (ws_path or ws_headers):
            self.client.ws_set_options(path=ws_path or "/mqtt", headers=ws_headers)
        if will:
            self.client.will_set(will[0], will[1], will[2], will[3])
        if username is not None:
            self.client.username_pw_set(username, password)
        try:
            self.client.connect(host, port, keepalive)
        except (ssl.SSLError, OSError, ValueError) as e:
            self.connect_error = e
            if expect_rc is None:
                return
            raise AssertionError("paho client %r: connect failed: %r" % (client_id, e))
        self.client.loop_start()
        if not self.connected.wait(timeout):
            self.client.loop_stop()
            if expect_rc is None:
                return
            raise AssertionError("paho client %r: no CONNACK within %.1fs" % (client_id, timeout))
        rc = self.connack[1]
        if expect_rc is not None and rc != expect_rc:
            self.close()
            raise AssertionError("paho client %r: CONNACK rc %s, expected %s" % (client_id, rc, expect_rc))


# ---------------------------------------------------------------- websockets

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_CONT, WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def ws_accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    """One WebSocket frame (client frames are masked)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        (int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    return head + key + masked


def ws_upgrade_request(path="/mqtt", host="127.0.0.1", key=None, protocol="mqtt", extra=""):
    key = key or base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, host, key))
    if protocol:
        req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
    return (req + extra + "\r\n").encode(), key


class WSRawClient(RawClient):
    """A RawClient speaking MQTT inside WebSocket binary frames (RFC 6455),
    over TCP or, with context, TLS. The constructor performs the upgrade
    (response: the status line and headers). send() puts each MQTT packet in
    one masked binary frame; the reading side reassembles the frames'
    payloads, answers nothing by itself, and keeps control frames in
    `control` (opcode, payload). Closed is raised on EOF or a close frame."""

    def __init__(self, port, path="/mqtt", protocol="mqtt", context=None, host="127.0.0.1",
                 timeout=DEFAULT_TIMEOUT, upgrade=True):
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = context.wrap_socket(raw, server_hostname="localhost") if context else raw
        self.timeout = timeout
        self.buf = b""
        self.wire = b""
        self.control = []
        self.response = None
        if upgrade:
            req, key = ws_upgrade_request(path, protocol=protocol)
            self.sock.sendall(req)
            self.response = self.read_http(timeout)
            status = self.response.split("\r\n", 1)[0]
            if " 101 " not in status + " ":
                raise AssertionError("WebSocket upgrade refused: %r" % self.response)
            if ("sec-websocket-accept: " + ws_accept_key(key).lower()) not in self.response.lower():
                raise AssertionError("bad Sec-WebSocket-Accept in %r" % self.response)

    def read_http(self, timeout=None):
        """Reads an HTTP response head (up to the blank line); returns it as text."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n\r\n" not in self.wire:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed()
            self.wire += chunk
        head, self.wire = self.wire.split(b"\r\n\r\n", 1)
        return head.decode("latin-1")

    def _wire_fill(self, n, deadline):
        while len(self.wire) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                raise Closed()
            self.wire += chunk

    def read_frame(self, timeout=None):
        """The next frame as (fin, opcode, payload); raises Closed or socket.timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._wire_fill(2, deadline)
        b0, b1 = self.wire[0], self.wire[1]
        n, i = b1 & 0x7F, 2
        if n == 126:
            self._wire_fill(4, deadline)
            n, i = struct.unpack("!H", self.wire[2:4])[0], 4
        elif n == 127:
            self._wire_fill(10, deadline)
            n, i = struct.unpack("!Q", self.wire[2:10])[0], 10
        if b1 & 0x80:
            raise AssertionError("the server sent a masked frame")
        self._wire_fill(i + n, deadline)
        payload, self.wire = self.wire[i:i + n], self.wire[i + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def _fill(self, n, timeout):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            fin, opcode, payload = self.read_frame(max(0.0, deadline - time.monotonic()))
            if opcode in (WS_BINARY, WS_CONT, WS_TEXT):
                self.buf += payload
            else:
                self.control.append((opcode, payload))
                if opcode == WS_CLOSE:
                    raise Closed()

    def send(self, data):
        self.sock.sendall(ws_frame(WS_BINARY, data))

    def send_raw(self, data):
        self.sock.sendall(data)


def private_dir(prefix="midgetest-files-"):
    """A temporary directory for a test's files (readable by a broker that
    dropped privileges); the caller removes it."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def write_file(directory, name, text, mode=0o644):
    path = os.path.join(directory, name)
    with open(path, "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class SecureTestCase(_Helpers, unittest.TestCase):
    """A test case that starts its own SecureBrokers: self.start_broker()
    (stopped and checked after the test; the first one sets self.broker and
    self.port), self.file() for files in a per-test directory."""

    def setUp(self):
        self.tmp = private_dir()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.broker = None
        self.port = None

    def file(self, name, text, mode=0o644):
        return write_file(self.tmp, name, text, mode)

    def password_file(self, users, name="passwd", hash_type=None):
        return make_password_file(os.path.join(self.tmp, name), users, hash_type)

    def start_broker(self, options=None, listeners=None, **kw):
        b = SecureBroker(options=options, listeners=listeners, **kw)
        self.addCleanup(_stop_checked, b)
        if self.broker is None:
            self.broker, self.port = b, b.port
        return b

    def start_refused(self, options=None, listeners=None, **kw):
        """(exit status, log) of a broker that must refuse to start."""
        b = SecureBroker(options=options, listeners=listeners, start=False, **kw)
        self.addCleanup(b.stop)
        return b.start_refused()

    def reload(self, broker, ready, what="the reloaded configuration"):
        """SIGHUP, then waits until ready() is true: the reload has taken
        effect (brokers may apply it asynchronously)."""
        broker.signal(signal.SIGHUP)
        wait_for(ready, timeout=10, what=what)
        if not broker.alive():
            self.fail("the broker died on SIGHUP:\n" + broker.log())


class LoginWitness(Witness):
    """A Witness whose subscriber and publisher log in: connect_kw are
    connect() keyword arguments (username=..., password=...)."""

    def __init__(self, port, name=None, **connect_kw):
        name = name or unique_id("witness")
        self.topic = "witness/" + name
        self.sub = connected_client(port, name + "-s", **connect_kw)
        self.sub.subscribe_ok([(self.topic, 1)])
        self.pub = connected_client(port, name + "-p", **connect_kw)
        self.sent = self.received = 0
        self._mids = itertools.cycle(range(1, 65536))


def expect_ack(client, ptype, mid, reason=None, msg=""):
    """Reads an acknowledgement (PUBACK, PUBREC, ...) for `mid`. reason None:
    any success code (below 0x80: mosquitto answers a QoS 1/2 PUBLISH that
    nobody is subscribed to with 0x10, "no matching subscribers"), in
    either encoding MQTT 5 allows (the reason byte may be left out when it
    is 0); else exactly that reason code. Returns the packet."""
    got = client.read_packet()
    if got[0] >> 4 != ptype or got[2:4] != struct.pack("!H", mid):
        raise AssertionError("expected an ack of type %d for mid %d, got %s %s"
                             % (ptype, mid, describe(got), msg))
    code = got[4] if len(got) > 4 else 0
    if (code >= 0x80) if reason is None else (code != reason):
        raise AssertionError("expected reason %s, got %s %s"
                             % ("< 0x80" if reason is None else "0x%02x" % reason, describe(got), msg))
    return got


# =====================================================================
# Plugins (added for test_20 .. test_22: the plugin ABI, the example
# plugins and the plugin SDK). Only additions below this line: where the
# built plugins are, a broker whose YAML configuration carries nested
# `plugins:` sections (globally and per listener), a reader for the log of
# tests/plugins/probe.c, and MQTT 5 property and AUTH helpers.
# =====================================================================

import urllib.parse  # noqa: E402

# The build directory: the Makefile exports it; by hand it is MIDGE_BIN's directory.
PLUGIN_DIR = os.environ.get("MIDGE_PLUGIN_DIR") or os.path.dirname(os.path.abspath(MIDGE_BIN))


def plugin_path(name):
    """The absolute path of the built plugin <name>.so: one of the test
    plugins (tests/plugins/.libs: probe, bad_version, no_init), an example
    (plugins/examples/<name>/.libs) or anything in the build directory's
    .libs. The test plugins are built by `make check` (or
    `make tests/plugins/probe.la`)."""
    for sub in ("tests/plugins/.libs", "plugins/examples/%s/.libs" % name, ".libs"):
        path = os.path.join(PLUGIN_DIR, sub, name + ".so")
        if os.path.exists(path):
            return path
    raise AssertionError("plugin %s.so is not built under %s (run `make check`, or "
                         "`make tests/plugins/%s.la` / `make plugins/examples/%s/%s.la`)"
                         % (name, PLUGIN_DIR, name, name, name))


_YAML_KEY = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def _yaml_key(k):
    return k if _YAML_KEY.match(str(k)) else _yaml_scalar(str(k))


def yaml_block(value, indent=0):
    """Block-style YAML lines for nested dicts, lists and scalars (every
    string double-quoted). None values in mappings are left out."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                continue
            if isinstance(v, (dict, list, tuple)):
                if not v:
                    lines.append("%s%s: %s" % (pad, _yaml_key(k), "{}" if isinstance(v, dict) else "[]"))
                else:
                    lines.append("%s%s:" % (pad, _yaml_key(k)))
                    lines.extend(yaml_block(v, indent + 1))
            else:
                lines.append("%s%s: %s" % (pad, _yaml_key(k), _yaml_scalar(v)))
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (dict, list, tuple)) and item:
                sub = yaml_block(item, indent + 1)
                sub[0] = pad + "- " + sub[0].lstrip()
                lines.extend(sub)
            else:
                lines.append("%s- %s" % (pad, _yaml_scalar(item)))
    else:
        lines.append(pad + _yaml_scalar(value))
    return lines


class PluginBroker(SecureBroker):
    """A SecureBroker (midge only) whose YAML may nest: options["plugins"]
    and a listener's "plugins" are lists of {path, options: {...}, name}.

    rewrite(options=..., listeners=...) writes the configuration again
    (same file) for a SIGHUP reload; listeners keep port 0 in the file, which
    is what the running broker was started with."""

    def __init__(self, options=None, listeners=None, start=True, **kw):
        if is_mosquitto():
            raise AssertionError("PluginBroker is for midge only (use midge_only())")
        super().__init__(options=options, listeners=listeners, start=start, **kw)

    def _write_config(self):
        if self.raw_config is not None:
            return super()._write_config()
        filled = []
        for listener in self.listeners or [{}]:
            l = {} if _is_unix(listener) else {"port": 0, "bind_address": "127.0.0.1"}
            l.update(listener)
            filled.append(l)
        doc = {"user": "root"}
        doc.update(self.options)
        doc["listeners"] = filled
        path = os.path.join(self.tmpdir, "broker.yaml")
        with open(path, "w") as f:
            f.write("\n".join(yaml_block(doc)) + "\n")
        return path

    def rewrite(self, options=None, listeners=None):
        if options is not None:
            self.options = dict(options)
        if listeners is not None:
            self.listeners = listeners
        self.config_path = self._write_config()
        return self.config_path

    def config_text(self):
        with open(self.config_path) as f:
            return f.read()


class ProbeLog:
    """The log of tests/plugins/probe.c (its option log_file): one line per
    call, `<event> key=value ...` with %XX escapes. entries() gives dicts
    with "event" and the fields (a key given twice, like "up", maps to a
    list). A line still being written (no newline yet) is not read."""

    def __init__(self, path):
        self.path = path

    @staticmethod
    def parse(line):
        parts = line.split(" ")
        entry = {"event": parts[0]}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            value = urllib.parse.unquote(value)
            if key in entry:
                prev = entry[key]
                entry[key] = (prev if isinstance(prev, list) else [prev]) + [value]
            else:
                entry[key] = value
        return entry

    def entries(self, since=0):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        lines = data.decode("utf-8", "replace").split("\n")[:-1]
        return [self.parse(line) for line in lines[since:] if line]

    def mark(self):
        """A position: entries(since=mark) are the lines written after it."""
        return len(self.entries())

    @staticmethod
    def _matches(entry, event, fields):
        if entry["event"] != event:
            return False
        for k, v in fields.items():
            have = entry.get(k)
            want = str(int(v)) if isinstance(v, bool) else str(v)
            if isinstance(have, list):
                if want not in have:
                    return False
            elif have != want:
                return False
        return True

    def find(self, event, since=0, **fields):
        """Every entry of `event` whose fields equal the given ones."""
        return [e for e in self.entries(since) if self._matches(e, event, fields)]

    def count(self, event, since=0, **fields):
        return len(self.find(event, since, **fields))

    def wait(self, event, timeout=DEFAULT_TIMEOUT, since=0, n=1, **fields):
        """Waits for n matching entries; returns the first."""
        what = "%d probe line(s) %s %s in %s" % (n, event, fields, self.path)
        try:
            found = wait_for(lambda: (lambda m: m if len(m) >= n else None)(
                self.find(event, since, **fields)), timeout=timeout, what=what)
        except AssertionError:
            raise AssertionError("timed out waiting for %s; the log has:\n%s"
                                 % (what, self.text()[-4000:]))
        return found[0]

    def text(self):
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return "(no log file)"


# MQTT 5 properties: identifier -> encoding.
_PROP_TYPES = {pid: kind for pids, kind in (
    ((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), "byte"),
    ((0x13, 0x21, 0x22, 0x23), "u16"),
    ((0x02, 0x11, 0x18, 0x27), "u32"),
    ((0x0B,), "varint"),
    ((0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F), "str"),
    ((0x09, 0x16), "bin"),
    ((0x26,), "pair")) for pid in pids}

PROP_AUTH_METHOD, PROP_AUTH_DATA, PROP_REASON_STRING, PROP_USER = 0x15, 0x16, 0x1F, 0x26


def prop_str(pid, s):
    return bytes([pid]) + mqtt_str(s)


def prop_bin(pid, b):
    if isinstance(b, str):
        b = b.encode()
    return bytes([pid]) + struct.pack("!H", len(b)) + b


def prop_user(name, value):
    return bytes([PROP_USER]) + mqtt_str(name) + mqtt_str(value)


def read_varint(data, i):
    """(value, next index) of the variable byte integer at data[i]."""
    value, mult = 0, 1
    while True:
        b = data[i]
        i += 1
        value += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return value, i


def parse_props(data, i):
    """(list of (identifier, value), next index) of the property block at
    data[i]. Strings and binary data are bytes; a user property is (name, value)."""
    length, i = read_varint(data, i)
    end = i + length
    props = []
    while i < end:
        pid = data[i]
        i += 1
        kind = _PROP_TYPES.get(pid)
        if kind == "byte":
            props.append((pid, data[i]))
            i += 1
        elif kind == "u16":
            props.append((pid, struct.unpack("!H", data[i:i + 2])[0]))
            i += 2
        elif kind == "u32":
            props.append((pid, struct.unpack("!I", data[i:i + 4])[0]))
            i += 4
        elif kind == "varint":
            v, i = read_varint(data, i)
            props.append((pid, v))
        elif kind in ("str", "bin"):
            n = struct.unpack("!H", data[i:i + 2])[0]
            props.append((pid, bytes(data[i + 2:i + 2 + n])))
            i += 2 + n
        elif kind == "pair":
            n = struct.unpack("!H", data[i:i + 2])[0]
            name = bytes(data[i + 2:i + 2 + n])
            i += 2 + n
            m = struct.unpack("!H", data[i:i + 2])[0]
            props.append((pid, (name, bytes(data[i + 2:i + 2 + m]))))
            i += 2 + m
        else:
            raise AssertionError("unknown property 0x%02x in %s" % (pid, data.hex(" ")))
    return props, end


def prop_value(props, pid):
    """The first value of property pid in a parse_props() list, or None."""
    for p, v in props:
        if p == pid:
            return v
    return None


def _body(pkt):
    _, i = read_varint(pkt, 1)
    return i


Packet5 = collections.namedtuple("Packet5", "type flags reason props rest")


def parse_v5(pkt):
    """Decodes an MQTT 5 CONNACK, AUTH, DISCONNECT, PUBACK/PUBREC/PUBREL/PUBCOMP
    header: Packet5(type, flags, reason, props, rest). For a CONNACK flags
    is the acknowledge flags; for acks rest is the packet id. A reason left
    out (allowed when it is 0 and there are no properties) reads as 0."""
    ptype, i = pkt[0] >> 4, _body(pkt)
    if ptype == CONNACK:
        props, _ = parse_props(pkt, i + 2)
        return Packet5(ptype, pkt[i], pkt[i + 1], props, b"")
    if ptype in (AUTH, DISCONNECT):
        if i >= len(pkt):
            return Packet5(ptype, 0, 0, [], b"")
        props, _ = parse_props(pkt, i + 1) if i + 1 < len(pkt) else ([], i + 1)
        return Packet5(ptype, 0, pkt[i], props, b"")
    if ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        mid = struct.unpack("!H", pkt[i:i + 2])[0]
        reason = pkt[i + 2] if i + 2 < len(pkt) else 0
        props, _ = parse_props(pkt, i + 3) if i + 3 < len(pkt) else ([], i + 3)
        return Packet5(ptype, 0, reason, props, mid)
    raise AssertionError("parse_v5: unexpected %s" % describe(pkt))


Publish5 = collections.namedtuple("Publish5", "topic payload qos retain mid props")


def parse_publish5(pkt):
    """Decodes an MQTT 5 PUBLISH (topic as text, payload as bytes)."""
    if pkt[0] >> 4 != PUBLISH:
        raise AssertionError("expected a PUBLISH, got %s" % describe(pkt))
    i = _body(pkt)
    tlen = struct.unpack("!H", pkt[i:i + 2])[0]
    topic = pkt[i + 2:i + 2 + tlen].decode("utf-8")
    i += 2 + tlen
    qos = (pkt[0] >> 1) & 3
    mid = None
    if qos:
        mid = struct.unpack("!H", pkt[i:i + 2])[0]
        i += 2
    props, i = parse_props(pkt, i)
    return Publish5(topic, bytes(pkt[i:]), qos, bool(pkt[0] & 1), mid, props)


def auth_packet(reason, method=None, data=None):
    """An MQTT 5 AUTH packet with Authentication Method / Data properties."""
    raw = b""
    if method is not None:
        raw += prop_str(PROP_AUTH_METHOD, method)
    if data is not None:
        raw += prop_bin(PROP_AUTH_DATA, data)
    return packet(AUTH, 0, bytes([reason]) + props_block(raw))


def auth_props(method, data=None):
    """CONNECT properties for enhanced authentication."""
    raw = prop_str(PROP_AUTH_METHOD, method)
    if data is not None:
        raw += prop_bin(PROP_AUTH_DATA, data)
    return raw


def run_midge(*args, timeout=20, env=None):
    """Runs the midge binary with args; returns the CompletedProcess (text)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([MIDGE_BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout,
                          env=e, universal_newlines=True)


class PluginTestCase(SecureTestCase):
    """A SecureTestCase for plugin tests (midge only: mosquitto's plugins
    have another ABI). self.probe(**options) makes a probe plugin entry with
    its own log file in the test's directory; self.start_plugins(...) starts
    a PluginBroker that is stopped and checked after the test unless the
    test stopped it with self.stop_checked()."""

    def setUp(self):
        self.midge_only("plugins use midge's own plugin ABI")
        super().setUp()

    def probe(self, copy_as=None, name=None, **options):
        """(plugin entry, ProbeLog) for probe.so with these options.
        copy_as: load a copy, <test dir>/<copy_as>.so (two probes in one
        chain, each with its own file name); name: the entry's `name:`."""
        log = os.path.join(self.tmp, unique_id("probe") + ".log")
        opts = {"log_file": log}
        opts.update({k: v for k, v in options.items() if v is not None})
        path = plugin_path("probe")
        if copy_as:
            path = os.path.join(self.tmp, copy_as + ".so")
            if not os.path.exists(path):
                shutil.copyfile(plugin_path("probe"), path)
                os.chmod(path, 0o755)
        entry = {"path": path, "options": opts}
        if name:
            entry["name"] = name
        return entry, ProbeLog(log)

    def start_plugins(self, plugins=None, options=None, listeners=None, **kw):
        opts = dict(options or {})
        if plugins is not None:
            opts["plugins"] = list(plugins)
        b = PluginBroker(options=opts, listeners=listeners, **kw)
        b.checked = False
        self.addCleanup(lambda: None if b.checked else _stop_checked(b))
        if self.broker is None:
            self.broker, self.port = b, b.port
        return b

    def refused_plugins(self, plugins=None, options=None, listeners=None, **kw):
        """(exit status, log) of a broker that must refuse to start."""
        opts = dict(options or {})
        if plugins is not None:
            opts["plugins"] = list(plugins)
        b = PluginBroker(options=opts, listeners=listeners, start=False, **kw)
        self.addCleanup(b.stop)
        return b.start_refused()

    def stop_checked(self, broker):
        """Stops the broker now (SIGTERM; it must exit 0, no sanitizer report)."""
        broker.checked = True
        _stop_checked(broker)


# =====================================================================
# The Lua plugin (added for test_23_lua). Only additions below this line:
# plugin_path() also finds the broker's own plugins (plugins/<name>/.libs,
# such as lua.so), whether a built midge offers a command line option, and
# a PluginTestCase that writes Lua scripts and starts brokers running them.
# =====================================================================


def plugin_path(name):  # noqa: F811 (replaces the definition above: one more place to look)
    """The absolute path of the built plugin <name>.so: one of the test
    plugins (tests/plugins/.libs: probe, bad_version, no_init), an example
    (plugins/examples/<name>/.libs), one of the broker's own plugins
    (plugins/<name>/.libs: lua) or anything in the build directory's .libs."""
    for sub in ("tests/plugins/.libs", "plugins/examples/%s/.libs" % name,
                "plugins/%s/.libs" % name, ".libs"):
        path = os.path.join(PLUGIN_DIR, sub, name + ".so")
        if os.path.exists(path):
            return path
    raise AssertionError("plugin %s.so is not built under %s (run `make check`, or "
                         "`make tests/plugins/%s.la` / `make plugins/examples/%s/%s.la` / "
                         "`make plugins/%s/%s.la`)"
                         % (name, PLUGIN_DIR, name, name, name, name, name))


def plugin_built(name):
    """plugin_path(name), or None when that plugin is not built."""
    try:
        return plugin_path(name)
    except AssertionError:
        return None


_help_text = None


def midge_offers(option):
    """Whether `midge --help` mentions a command line option (e.g. "--test-auth")."""
    global _help_text
    if _help_text is None:
        try:
            _help_text = run_midge("--help", timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            _help_text = ""
    return option in _help_text


class LuaTestCase(PluginTestCase):
    """A PluginTestCase for the Lua plugin (plugins/lua/.libs/lua.so; the
    tests are skipped when it is not built, e.g. without Lua 5.4).

    self.script(text) writes a script into the test's directory and returns
    its path; self.lua(scripts, **options) is a plugin entry for them
    (options as the plugin reads them: timeout_ms=50, on_error="allow", ...);
    self.start_lua(scripts, options=broker options, **plugin options) starts
    a broker with that one plugin. Broker logs: self.broker.log() (the
    harness runs the broker with -v, so every level is there)."""

    def setUp(self):
        super().setUp()
        self.lua_so = plugin_built("lua")
        if self.lua_so is None:
            self.skipTest("the Lua plugin is not built (plugins/lua/.libs/lua.so; needs Lua 5.4)")

    def script(self, text, name=None):
        """Writes a Lua script (name: a fresh <unique>.lua) and returns its absolute path."""
        return self.file(name or unique_id("script") + ".lua", text)

    def lua(self, scripts, **options):
        """A plugin entry for lua.so running these scripts (paths, in order)."""
        if isinstance(scripts, str):
            scripts = [scripts]
        opts = {"scripts": list(scripts)}
        opts.update({k: v for k, v in options.items() if v is not None})
        return {"path": self.lua_so, "options": opts}

    def start_lua(self, scripts, options=None, listeners=None, **plugin_options):
        return self.start_plugins([self.lua(scripts, **plugin_options)], options=options,
                                  listeners=listeners)

    def log_count(self, pattern, broker=None):
        """How many broker log lines match the regular expression."""
        rx = re.compile(pattern)
        return sum(1 for line in (broker or self.broker).log().splitlines() if rx.search(line))
