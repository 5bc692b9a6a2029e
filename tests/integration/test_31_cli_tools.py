#!/usr/bin/python3
"""midge_pub and midge_sub, midge's command-line clients with mosquitto_pub /
mosquitto_sub's options, driven against the broker under test (midge, or
Debian's mosquitto with MIDGE_TEST_TARGET=mosquitto: the tools are always
midge's). One class per option group: basic publish/subscribe and QoS,
retained messages (-r, -R, --retained-only, --remove-retained), message
sources (-m, -f, -s, -l, -n, --repeat), subscriber output (-C, -W, -T, -v,
-N, -F, -U), wills, sessions (-c, -x), MQTT 5 properties (-D), credentials
and refusals, TLS (--cafile, --capath, --cert/--key, --insecure,
--tls-version, mqtts://), TLS-PSK, WebSockets (-L ws:// and wss://), unix
sockets, -d debug lines, and usage errors.

Where mosquitto's tools do the same thing, the test runs both and compares
output and exit status: the -d lines of a publish and of a subscription,
-F formats, CONNACK refusals, TLS failures, usage errors.

Deliberate differences from mosquitto_sub 2.0.11 (tested as midge's):
  * --remove-retained also clears retained messages that -R hides, as the
    man page says (mosquitto_sub 2.0.11 skips them);
  * %j prints a payload that is valid UTF-8 as a string (mosquitto_sub:
    only printable ASCII; anything else as an array of byte values) and the
    time as 2024-05-06T22:12:00.123456+0100, as the man page shows (2.0.11
    prints ...123456Z+0100);
  * ws:// and wss:// URLs (mosquitto's tools have none): the URL path is
    the HTTP path (default /mqtt), topics come from -t.

midge-only cases say why where they skip on mosquitto.

Run alone: MIDGE_BIN=$PWD/midge /usr/bin/python3 tests/integration/test_31_cli_tools.py
(MIDGE_TEST_TARGET=mosquitto for Debian's broker).
"""

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (MIDGE_BIN, MOSQUITTO_PUB_BIN, MOSQUITTO_SUB_BIN,  # noqa: E402
                       Certs, SecureBroker, SecureTestCase, SharedBrokerTestCase, _stop_checked,
                       connack_code, free_port, is_mosquitto, main, make_password_file,
                       private_dir, sanitizer_report, unique_id, wait_for, write_file)

BIN_DIR = os.path.dirname(os.path.abspath(MIDGE_BIN))
PUB = os.environ.get("MIDGE_PUB_BIN", os.path.join(BIN_DIR, "midge_pub"))
SUB = os.environ.get("MIDGE_SUB_BIN", os.path.join(BIN_DIR, "midge_sub"))
TIMEOUT = 20

# Lines -d adds to a subscriber's output.
DEBUG_LINE = re.compile(r"^(Client \S+ (sending|received) |Subscribed \(mid: |WebSocket upgrade: )")

CERTS = None


def setUpModule():
    global CERTS
    if not (os.path.exists(PUB) and os.path.exists(SUB)):
        raise unittest.SkipTest("midge_pub / midge_sub are not built next to MIDGE_BIN")
    CERTS = Certs(["client"])


def tearDownModule():
    if CERTS:
        CERTS.cleanup()


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    @property
    def text(self):
        return self.out.decode("utf-8", "replace")

    def __repr__(self):
        return "rc=%s\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.text, self.err)


def no_sanitizer_report(cmd, err):
    report = sanitizer_report(err)
    if report:
        raise AssertionError("sanitizer report from %s: %s\n%s" % (cmd[0], report, err[-4000:]))


def run(cmd, input=None, timeout=TIMEOUT):
    """Runs a tool to its end: Result(rc, stdout bytes, stderr text)."""
    cmd = [str(a) for a in cmd]
    res = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=None if input is not None else subprocess.DEVNULL, timeout=timeout)
    err = res.stderr.decode("utf-8", "replace")
    no_sanitizer_report(cmd, err)
    return Result(res.returncode, res.stdout, err)


class Proc:
    """A tool running in the background; stdout and stderr are collected as they come."""

    def __init__(self, cmd):
        self.cmd = [str(a) for a in cmd]
        self.out = bytearray()
        self.err = bytearray()
        self.rc = None
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err),
                                          daemon=True)]
        for r in self._readers:
            r.start()

    def _read(self, stream, into):
        while True:
            chunk = os.read(stream.fileno(), 65536)
            with self._cond:
                if not chunk:
                    self._cond.notify_all()
                    return
                into.extend(chunk)
                self._cond.notify_all()

    @property
    def text(self):
        with self._cond:
            return self.out.decode("utf-8", "replace")

    @property
    def errtext(self):
        with self._cond:
            return self.err.decode("utf-8", "replace")

    def lines(self):
        return self.text.split("\n")[:-1]

    def messages(self):
        """Output lines that are not -d lines."""
        return [l for l in self.lines() if not DEBUG_LINE.match(l)]

    def wait_line(self, pattern, timeout=TIMEOUT):
        rx = re.compile(pattern, re.M)

        def found():
            return rx.search(self.text) or self.proc.poll() is not None
        try:
            wait_for(found, timeout=timeout, what="%s to print /%s/" % (self.cmd[0], pattern))
        except AssertionError:
            raise AssertionError("%s did not print /%s/ in %.0fs; stdout:\n%s\nstderr:\n%s"
                                 % (" ".join(self.cmd), pattern, timeout, self.text, self.errtext))
        if not rx.search(self.text):
            # It exited: its last output may still be in the pipe, for the reader threads.
            self.wait_exit()
        if not rx.search(self.text):
            raise AssertionError("%s exited with %s before printing /%s/; stdout:\n%s\nstderr:\n%s"
                                 % (" ".join(self.cmd), self.rc, pattern, self.text, self.errtext))

    def wait_messages(self, n, timeout=TIMEOUT):
        wait_for(lambda: len(self.messages()) >= n or self.proc.poll() is not None,
                 timeout=timeout, what="%d messages from %s" % (n, self.cmd[0]))
        if len(self.messages()) < n:
            self.wait_exit()  # exited: the rest of its output may still be in the pipe
        return self.messages()

    def wait_exit(self, timeout=TIMEOUT):
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s still running after %.0fs; stdout:\n%s\nstderr:\n%s"
                                 % (" ".join(self.cmd), timeout, self.text, self.errtext))
        for r in self._readers:
            r.join(5)
        no_sanitizer_report(self.cmd, self.errtext)
        return self.rc

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for r in self._readers:
            r.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


class CliHelpers:
    """midge_pub / midge_sub (and mosquitto's) against self.port."""

    def where(self, port=None):
        return ["-h", "127.0.0.1", "-p", port or self.port]

    def pub(self, *args, port=None, input=None, check=True, tool=PUB, where=True):
        res = run([tool] + (self.where(port) if where else []) + list(args), input=input)
        if check and res.rc != 0:
            raise AssertionError("%s %s failed:\n%r" % (tool, " ".join(map(str, args)), res))
        return res

    def mpub(self, *args, **kw):
        return self.pub(*args, tool=MOSQUITTO_PUB_BIN, **kw)

    def sub(self, topics, *args, port=None, debug=True, wait=True, tool=SUB, where=True):
        """A subscriber in the background; with wait, returns once it has its SUBACK (-d)."""
        cmd = [tool] + (self.where(port) if where else []) + (["-d"] if debug else [])
        if tool == MOSQUITTO_SUB_BIN:
            cmd = ["stdbuf", "-oL"] + cmd  # mosquitto_sub does not flush its output
        for t in topics:
            cmd += ["-t", t]
        p = Proc(cmd + list(args))
        self.addCleanup(p.stop)
        if wait and debug:
            p.wait_line(r"^Subscribed \(mid")
        return p

    def msub(self, topics, *args, **kw):
        return self.sub(topics, *args, tool=MOSQUITTO_SUB_BIN, **kw)

    def received(self, topics, *args, publish=None, port=None, n=1, tool=SUB):
        """Subscribes, runs publish(), returns the first n message lines."""
        s = self.sub(topics, "-C", n, "-W", TIMEOUT, *args, port=port, tool=tool)
        if publish:
            publish()
        self.assertEqual(s.wait_exit(), 0, s.errtext)
        return s.messages()

    def assert_times_out(self, s):
        self.assertEqual(s.wait_exit(), 27, s.text)
        self.assertIn("Timed out", s.errtext)


class CliCase(CliHelpers, SharedBrokerTestCase):
    """One broker per class (default settings)."""


def normalize_ids(text):
    """Client ids the broker assigns differ from run to run."""
    text = re.sub(r"Client auto-[0-9A-F-]+ ", "Client ASSIGNED ", text)
    return re.sub(r"Client mosq-[A-Za-z0-9]+ ", "Client RANDOM ", text)


# =====================================================================

class PubSubBasics(CliCase):
    """Publish and subscribe at every QoS and protocol version; client ids; keepalive."""

    def test_every_qos_pair(self):
        for pub_qos, sub_qos in ((0, 0), (1, 1), (2, 2), (2, 1), (1, 2), (0, 2), (2, 0)):
            with self.subTest(pub=pub_qos, sub=sub_qos):
                t = self.topic()
                s = self.sub([t], "-q", sub_qos, "-C", 1, "-F", "%q %p")
                r = self.pub("-t", t, "-m", "hello q%d" % pub_qos, "-q", pub_qos, "-d")
                self.assertEqual(s.wait_exit(), 0)
                self.assertEqual(s.messages(), ["%d hello q%d" % (min(pub_qos, sub_qos), pub_qos)])
                # The publisher's flow, as -d shows it.
                want = {0: [], 1: ["received PUBACK"],
                        2: ["received PUBREC", "sending PUBREL", "received PUBCOMP"]}[pub_qos]
                got = [l for l in ("received PUBACK", "received PUBREC", "sending PUBREL",
                                   "received PUBCOMP") if l in r.text]
                self.assertEqual(got, want, r.text)
                # And the subscriber's.
                q = min(pub_qos, sub_qos)
                for line in {0: [], 1: ["sending PUBACK"],
                             2: ["sending PUBREC", "received PUBREL", "sending PUBCOMP"]}[q]:
                    self.assertIn(line, s.text)

    def test_protocol_versions(self):
        for v in ("mqttv31", "31", "mqttv311", "311", "mqttv5", "5"):
            with self.subTest(version=v):
                t = self.topic()
                got = self.received([t], "-V", v, "-q", 1,
                                    publish=lambda: self.pub("-V", v, "-t", t, "-m", v, "-q", 1))
                self.assertEqual(got, [v])

    def test_default_output_and_verbose(self):
        t = self.topic()
        plain = self.sub([t], "-C", 2)
        verbose = self.sub([t], "-v", "-C", 2)
        self.pub("-t", t, "-m", "one two")
        self.pub("-t", t, "-n")
        for s in (plain, verbose):
            self.assertEqual(s.wait_exit(), 0)
        # An empty payload prints nothing without -v, "topic (null)" with it.
        self.assertEqual(plain.messages(), ["one two"])
        self.assertEqual(verbose.messages(), ["%s one two" % t, "%s (null)" % t])

    def test_default_host_is_localhost(self):
        t = self.topic()
        got = self.received([t], publish=lambda: self.pub("-p", self.port, "-t", t, "-m", "lh",
                                                          where=False))
        self.assertEqual(got, ["lh"])

    def test_client_ids(self):
        r = self.pub("-t", self.topic(), "-m", "x", "-i", "cli-given-id", "-d")
        self.assertIn("Client cli-given-id sending CONNECT", r.text)
        # -I: prefix and process id; the broker sees the same.
        r = self.pub("-t", self.topic(), "-m", "x", "-I", "pfx-", "-d")
        m = re.search(r"Client pfx-(\d+) sending CONNECT", r.text)
        self.assertTrue(m, r.text)
        self.broker.wait_log(r"pfx-%s" % m.group(1))
        # MQTT 3.1 has no empty id: mosq- and 18 random characters, as libmosquitto.
        r = self.pub("-t", self.topic(), "-m", "x", "-V", "31", "-d")
        self.assertRegex(r.text, r"Client mosq-[A-Za-z0-9]{18} sending CONNECT")
        # 3.1.1 sends an empty id; MQTT 5 shows the one the broker assigned.
        r = self.pub("-t", self.topic(), "-m", "x", "-d")
        self.assertIn("Client (null) sending CONNECT", r.text)
        r = self.pub("-t", self.topic(), "-m", "x", "-V", "5", "-d")
        self.assertIn("Client (null) sending CONNECT", r.text)
        self.assertRegex(r.text, r"Client (?!\(null\))\S+ received CONNACK \(0\)")

    def test_nodelay_and_bind_address(self):
        t = self.topic()
        got = self.received([t], "--nodelay", "-A", "127.0.0.1",
                            publish=lambda: self.pub("--nodelay", "-A", "127.0.0.1", "-t", t,
                                                     "-m", "bound"))
        self.assertEqual(got, ["bound"])

    def test_keepalive_pings(self):
        s = self.sub([self.topic()], "-k", 5, "-W", 8)
        self.assert_times_out(s)
        self.assertRegex(s.text, r"sending PINGREQ\n.*received PINGRESP")

    def test_publish_debug_lines_match_mosquitto_pub(self):
        for args in (["-q", 0], ["-q", 1], ["-q", 2], ["-q", 1, "-V", "5"], ["-q", 2, "-V", "31"],
                     ["-q", 1, "-r", "--repeat", 2]):
            with self.subTest(args=args):
                t = self.topic()
                ours = self.pub("-t", t, "-m", "same", "-d", "-i", "dbg-pub", *args)
                theirs = self.mpub("-t", t, "-m", "same", "-d", "-i", "dbg-pub", *args)
                self.assertEqual(normalize_ids(ours.text), normalize_ids(theirs.text))
                if "-r" in args:
                    self.pub("-t", t, "-n", "-r")

    def test_subscribe_debug_lines_match_mosquitto_sub(self):
        for v in ("311", "5"):
            with self.subTest(version=v):
                t = self.topic()
                ours = self.sub([t, t + "/b"], "-q", 2, "-C", 3, "-V", v, "-i", unique_id("dbg"))
                theirs = self.msub([t, t + "/b"], "-q", 2, "-C", 3, "-V", v, "-i", unique_id("dbg"))
                self.pub("-t", t, "-m", "zero", "-q", 0)
                self.pub("-t", t, "-m", "one", "-q", 1)
                self.pub("-t", t + "/b", "-m", "two", "-q", 2)
                self.assertEqual(ours.wait_exit(), 0)
                self.assertEqual(theirs.wait_exit(), 0)
                ids = re.compile(r"Client dbg\d+ ")
                self.assertEqual(normalize_ids(ids.sub("Client ID ", ours.text)),
                                 normalize_ids(ids.sub("Client ID ", theirs.text)))


class RetainedMessages(CliCase):
    """-r, -R, --retained-only, --remove-retained."""

    def test_retain_and_clear(self):
        t = self.topic()
        self.pub("-t", t, "-m", "kept", "-r", "-q", 1)
        self.assertEqual(self.received([t], "-F", "%r %p"), ["1 kept"])
        self.pub("-t", t, "-n", "-r")
        s = self.sub([t], "-W", 2)
        self.assert_times_out(s)
        self.assertEqual(s.messages(), [])

    def test_no_stale_messages(self):
        t = self.topic()
        self.pub("-t", t, "-m", "stale", "-r")
        s = self.sub([t], "-R", "-C", 1)
        self.pub("-t", t, "-m", "fresh")
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["fresh"])
        self.pub("-t", t, "-n", "-r")

    def test_retained_only_exits_at_the_first_fresh_message(self):
        base = self.topic()
        for leaf in ("a", "b"):
            self.pub("-t", "%s/%s" % (base, leaf), "-m", leaf, "-r")
        s = self.sub([base + "/#"], "--retained-only", "-v")
        wait_for(lambda: len(s.messages()) == 2, what="the retained messages")
        self.pub("-t", base + "/c", "-m", "fresh")
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(sorted(s.messages()), ["%s/a a" % base, "%s/b b" % base])
        for leaf in ("a", "b"):
            self.pub("-t", "%s/%s" % (base, leaf), "-n", "-r")

    def test_remove_retained_except_filtered_out(self):
        base = self.topic()
        for leaf in ("a", "b", "keep"):
            self.pub("-t", "%s/%s" % (base, leaf), "-m", leaf, "-r")
        # mosquitto_sub's man page example: clear a tree, except one topic. The
        # clearing messages come back fresh, which ends --retained-only.
        s = self.sub([base + "/#"], "--remove-retained", "--retained-only", "-T", base + "/keep")
        self.assertEqual(s.wait_exit(), 0)
        left = self.sub([base + "/#"], "-v", "-W", 2)
        self.assert_times_out(left)
        self.assertEqual(left.messages(), ["%s/keep keep" % base])
        self.pub("-t", base + "/keep", "-n", "-r")

    def test_remove_retained_with_no_stale(self):
        # The man page: --remove-retained "still takes effect even if -R is used".
        t = self.topic()
        self.pub("-t", t, "-m", "old", "-r")
        s = self.sub([t], "-R", "--remove-retained", "-W", 2)
        self.assert_times_out(s)
        self.assertEqual(s.messages(), [])
        self.assertIn("sending PUBLISH (d0, q1, r1, m2, '%s', ... (0 bytes))" % t, s.text)
        left = self.sub([t], "-W", 1)
        self.assert_times_out(left)
        self.assertEqual(left.messages(), [])


class MessageSources(CliCase):
    """-m, -n, -f, -s, -l, --repeat, --repeat-delay, -M."""

    def setUp(self):
        super().setUp()
        self.tmp = private_dir()
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_file(self):
        data = bytes(range(256)) * 40 + b"\n\x00end"
        path = os.path.join(self.tmp, "payload.bin")
        with open(path, "wb") as f:
            f.write(data)
        t = self.topic()
        got = self.received([t], "-F", "%l %x", "-q", 1,
                            publish=lambda: self.pub("-t", t, "-f", path, "-q", 1))
        self.assertEqual(got, ["%d %s" % (len(data), data.hex())])

    def test_missing_file(self):
        r = self.pub("-t", self.topic(), "-f", os.path.join(self.tmp, "nope"), check=False)
        m = self.mpub("-t", self.topic(), "-f", os.path.join(self.tmp, "nope"), check=False)
        self.assertEqual((r.rc, r.err), (1, m.err.replace("mosquitto_pub", "midge_pub")))

    def test_stdin_as_one_message(self):
        data = b"line one\nline two\r\n\x00\xff"
        t = self.topic()
        got = self.received([t], "-F", "%x",
                            publish=lambda: self.pub("-t", t, "-s", input=data))
        self.assertEqual(got, [data.hex()])

    def test_lines_of_stdin(self):
        text = b"l1\n\nl3\r\nl4"
        t = self.topic()
        for tool in (PUB, MOSQUITTO_PUB_BIN):
            with self.subTest(tool=os.path.basename(tool)):
                got = self.received([t], "-F", "%l %x", "-q", 1, n=4,
                                    publish=lambda: self.pub("-t", t, "-l", "-q", 1, input=text,
                                                             tool=tool))
                # An empty line is an empty message; \r stays; the last line needs no newline.
                self.assertEqual(got, ["2 6c31", "0 ", "3 6c330d", "2 6c34"])

    def test_many_lines_at_qos_2_with_a_small_window(self):
        t = self.topic()
        lines = ["line %d" % i for i in range(200)]
        s = self.sub([t], "-q", 2, "-C", len(lines))
        r = self.pub("-t", t, "-l", "-q", 2, "-M", 3, input=("\n".join(lines) + "\n").encode())
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), lines)
        self.assertEqual(r.out.count(b"received PUBCOMP"), 0)  # no -d: nothing printed

    def test_empty_stdin_with_lines(self):
        r = self.pub("-t", self.topic(), "-l", input=b"")
        self.assertEqual((r.rc, r.out, r.err), (0, b"", ""))

    def test_null_message(self):
        t = self.topic()
        got = self.received([t], "-F", "[%l]", publish=lambda: self.pub("-t", t, "-n"))
        self.assertEqual(got, ["[0]"])

    def test_repeat_and_delay(self):
        t = self.topic()
        s = self.sub([t], "-C", 3, "-q", 1, "-F", "%p %U")
        start = time.monotonic()
        self.pub("-t", t, "-m", "again", "-q", 1, "--repeat", 3, "--repeat-delay", 0.4)
        elapsed = time.monotonic() - start
        self.assertEqual(s.wait_exit(), 0)
        msgs = s.messages()
        self.assertEqual([m.split()[0] for m in msgs], ["again"] * 3)
        stamps = [float(m.split()[1]) for m in msgs]
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertGreaterEqual(stamps[2] - stamps[0], 0.7)

    def test_only_one_message_source(self):
        for extra in (["-m", "a", "-n"], ["-l", "-s"], ["-f", "x", "-m", "y"]):
            with self.subTest(extra=extra):
                r = self.pub("-t", "x", *extra, check=False)
                self.assertEqual(r.rc, 1)
                self.assertIn("Error: Only one type of message can be sent at once.", r.err)


class SubscriberOutput(CliCase):
    """-C, -W, -T, -N, -U, -F."""

    def test_count(self):
        t = self.topic()
        s = self.sub([t], "-C", 2)
        for i in range(4):
            self.pub("-t", t, "-m", "m%d" % i)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["m0", "m1"])

    def test_timeout(self):
        s = self.sub([self.topic()], "-W", 1)
        self.assert_times_out(s)
        self.assertRegex(s.text, r"sending DISCONNECT\n$")

    def test_filter_out(self):
        base = self.topic()
        s = self.sub([base + "/#"], "-T", base + "/skip/#", "-T", base + "/+/hidden", "-v", "-C", 2)
        # skip/# also matches skip itself, as in MQTT.
        for leaf in ("skip/x", "a/hidden", "shown", "skip", "a/shown", "last"):
            self.pub("-t", "%s/%s" % (base, leaf), "-m", leaf)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["%s/shown shown" % base, "%s/a/shown a/shown" % base])

    def test_no_end_of_line(self):
        t = self.topic()
        self.pub("-t", t, "-m", "first", "-r")
        s = self.sub([t], "-N", "-C", 3, debug=False, wait=False)
        wait_for(lambda: s.text == "first", what="the retained message")
        self.pub("-t", t, "-n")  # nothing at all for an empty payload
        self.pub("-t", t, "-m", "second")
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.text, "firstsecond")
        self.pub("-t", t, "-n", "-r")

    def test_unsubscribe(self):
        base = self.topic()
        s = self.sub([base + "/#"], "-U", base + "/#", "-W", 2, wait=False)
        s.wait_line(r"received UNSUBACK")
        self.pub("-t", base + "/x", "-m", "gone")
        self.assert_times_out(s)
        self.assertIn("sending UNSUBSCRIBE (Mid: 2, Topic: %s/#)" % base, s.text)
        self.assertEqual(s.messages(), [])

    def test_format_matches_mosquitto_sub(self):
        fmt = ("%t|%p|%q|%r|%m|%l|%x|%X|%C|%D|%F|%R|%P|%S|%%|\\\\|\\t|@@|%10t|%-10t|%5.2t|%08l|"
               "%-5l|%5m|%-04q|\\e|\\a|@@|")
        t = self.topic()
        args = ["-V", "5", "-q", 2, "-C", 3, "-F", fmt, "-D", "subscribe", "subscription-identifier", 42]
        ours, theirs = self.sub([t], *args), self.msub([t], *args)
        self.pub("-t", t, "-m", "h\u00e9 llo", "-q", 1)
        self.pub("-t", t, "-n", "-q", 2)
        self.pub("-t", t, "-m", "x", "-q", 2, "-D", "publish", "user-property", "k", "v",
                 "-D", "publish", "user-property", "k2", "v2", "-D", "publish", "content-type",
                 "text/plain", "-D", "publish", "correlation-data", "cd", "-D", "publish",
                 "response-topic", "rt", "-D", "publish", "payload-format-indicator", 1)
        self.assertEqual(ours.wait_exit(), 0)
        self.assertEqual(theirs.wait_exit(), 0)
        self.assertEqual(ours.messages(), theirs.messages())
        self.assertIn("%s|x|2|0|3|1|78|78|text/plain|cd|1|rt|k:v k2:v2|42|" % t, ours.text)

    def test_time_formats(self):
        t = self.topic()
        before = time.time()
        got = self.received([t], "-F", "%I|%U|@Y-@m-@d|@N|@@",
                            publish=lambda: self.pub("-t", t, "-m", "x"))[0]
        iso, unix, day, nanos, at = got.split("|")
        self.assertRegex(iso, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")
        self.assertLessEqual(abs(float(unix) - before), 10)
        self.assertRegex(unix, r"^\d+\.\d{9}$")
        self.assertEqual(day, datetime.datetime.fromtimestamp(float(unix)).strftime("%Y-%m-%d"))
        self.assertRegex(nanos, r"^\d{9}$")
        self.assertEqual(at, "@")

    def test_json(self):
        t = self.topic()
        s = self.sub([t], "-F", "%j", "-q", 1, "-C", 3)
        self.pub("-t", t, "-m", 'say "hi"\n', "-q", 1)
        self.pub("-t", t, "-m", "{\"a\": [1, 2.5, true, null]}", "-r")
        self.pub("-t", t, "-f", "/dev/null")
        self.assertEqual(s.wait_exit(), 0)
        first, second, third = [json.loads(l) for l in s.messages()]
        self.assertEqual({k: first[k] for k in ("topic", "qos", "retain", "payloadlen", "mid", "payload")},
                         {"topic": t, "qos": 1, "retain": 0, "payloadlen": 9, "mid": 1,
                          "payload": 'say "hi"\n'})
        self.assertRegex(first["tst"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d{4}$")
        self.assertEqual(second["payload"], "{\"a\": [1, 2.5, true, null]}")
        self.assertNotIn("mid", second)
        self.assertEqual(third["payload"], "")
        # %J: the payload is JSON itself; otherwise an error and nothing.
        s = self.sub([t], "-F", "%J", "-C", 2, "-R")
        self.pub("-t", t, "-m", "{\"a\": [1, 2.5, true, null]}")
        self.pub("-t", t, "-m", "not json")
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(json.loads(s.messages()[0])["payload"], {"a": [1, 2.5, True, None]})
        self.assertIn("Error: Message payload is not valid JSON on topic %s." % t, s.errtext)
        self.pub("-t", t, "-n", "-r")


class Wills(CliCase):
    """--will-topic, --will-payload, --will-qos, --will-retain."""

    def will_args(self, t, *extra):
        return ["--will-topic", t, "--will-payload", "gone", "--will-qos", 1] + list(extra)

    def test_will_on_an_unexpected_end(self):
        t = self.topic()
        watcher = self.sub([t], "-q", 1, "-C", 1, "-F", "%t %p %q")
        victim = self.sub([self.topic()], *self.will_args(t, "--will-retain"))
        victim.signal(signal.SIGKILL)
        self.assertEqual(watcher.wait_exit(), 0)
        self.assertEqual(watcher.messages(), ["%s gone 1" % t])
        # Retained for later subscribers.
        self.assertEqual(self.received([t], "-F", "%r %p"), ["1 gone"])
        self.pub("-t", t, "-n", "-r")

    def test_no_will_on_a_clean_end(self):
        t = self.topic()
        watcher = self.sub([t], "-W", 2)
        victim = self.sub([self.topic()], *self.will_args(t))
        victim.signal(signal.SIGTERM)
        self.assertEqual(victim.wait_exit(), 0)
        self.assert_times_out(watcher)
        self.assertEqual(watcher.messages(), [])

    def test_mqtt5_sigint_leaves_the_will_to_the_broker(self):
        # As mosquitto_sub: DISCONNECT with reason 0x04 (disconnect with will message).
        t = self.topic()
        watcher = self.sub([t], "-C", 1)
        victim = self.sub([self.topic()], "-V", "5", *self.will_args(t))
        victim.signal(signal.SIGINT)
        self.assertEqual(victim.wait_exit(), 0)
        self.assertEqual(watcher.wait_exit(), 0)
        self.assertEqual(watcher.messages(), ["gone"])

    def test_will_properties(self):
        t = self.topic()
        watcher = self.sub([t], "-V", "5", "-C", 1, "-F", "%p %C %P")
        victim = self.sub([self.topic()], "-V", "5", *self.will_args(t), "-D", "will", "content-type",
                          "text/x-will", "-D", "will", "user-property", "why", "killed")
        victim.signal(signal.SIGKILL)
        self.assertEqual(watcher.wait_exit(), 0)
        self.assertEqual(watcher.messages(), ["gone text/x-will why:killed"])

    def test_bad_wills(self):
        cases = [(["--will-payload", "x"], "Error: Will payload given, but no will topic given."),
                 (["--will-retain"], "Error: Will retain given, but no will topic given."),
                 (["--will-topic", "a/#"], "Error: Invalid will topic 'a/#', does it contain '+' or '#'?"),
                 (["--will-topic", "a", "--will-qos", 3], "Error: Invalid will QoS 3.")]
        for args, message in cases:
            with self.subTest(args=args):
                r = self.pub("-t", "x", "-m", "y", *args, check=False)
                m = self.mpub("-t", "x", "-m", "y", *args, check=False)
                self.assertEqual((r.rc, m.rc), (1, 1))
                self.assertEqual(r.err.splitlines()[0], message)
                self.assertEqual(m.err.splitlines()[0], message)


class Sessions(CliCase):
    """-c and -x: a session that keeps subscriptions and queues QoS 1 messages."""

    def offline_messages(self, first, second, n=2):
        """Subscribes with `first`, publishes n QoS 1 messages while away,
        reconnects with `second`; returns what arrived (-W 2)."""
        t = self.topic()
        cid = unique_id("sess")
        s = self.sub([t], "-q", 1, "-E", "-i", cid, *first)
        self.assertEqual(s.wait_exit(), 0)
        for i in range(n):
            self.pub("-t", t, "-m", "queued %d" % i, "-q", 1)
        again = self.sub([t], "-q", 1, "-i", cid, "-W", 2, *second)
        again.wait_exit()
        return again.messages()

    def test_persistent_session(self):
        for v in ("311", "5"):
            with self.subTest(version=v):
                self.assertEqual(self.offline_messages(["-c", "-V", v], ["-c", "-V", v]),
                                 ["queued 0", "queued 1"])

    def test_clean_session_keeps_nothing(self):
        self.assertEqual(self.offline_messages([], ["-c"]), [])

    def test_session_expiry(self):
        # -x without -c: clean start, and the session outlives the connection by -x seconds.
        self.assertEqual(self.offline_messages(["-V", "5", "-x", 30], ["-V", "5", "-c", "-x", 30]),
                         ["queued 0", "queued 1"])
        t = self.topic()
        cid = unique_id("sess")
        s = self.sub([t], "-q", 1, "-E", "-i", cid, "-V", "5", "-x", 1)
        self.assertEqual(s.wait_exit(), 0)
        self.pub("-t", t, "-m", "late", "-q", 1)
        time.sleep(2.5)
        again = self.sub([t], "-q", 1, "-i", cid, "-W", 1, "-V", "5", "-c", "-x", 1)
        self.assert_times_out(again)
        self.assertEqual(again.messages(), [])

    def test_disconnect_property_ends_the_session(self):
        self.assertEqual(self.offline_messages(
            ["-V", "5", "-x", 60, "-D", "disconnect", "session-expiry-interval", 0],
            ["-V", "5", "-c", "-x", 60]), [])

    def test_session_needs_a_client_id(self):
        for tool, args, message in (
                (PUB, ["-c"], "Error: You must provide a client id if you are using the -c option."),
                (SUB, ["-c"], "Error: You must provide a client id if you are using the -c option."),
                (PUB, ["-V", "5", "-x", "-1"], "Error: You must provide a client id if you are "
                 "using an infinite session expiry interval.")):
            with self.subTest(tool=tool, args=args):
                extra = ["-m", "x"] if tool == PUB else []
                r = self.pub("-t", "x", *extra, *args, tool=tool, check=False)
                self.assertEqual(r.rc, 1)
                self.assertEqual(r.err.splitlines()[0], message)


class Mqtt5Properties(CliCase):
    """-D for CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT and the will."""

    def test_publish_properties(self):
        t = self.topic()
        got = self.received([t], "-V", "5", "-F", "%P|%C|%R|%D|%F|%E",
                            publish=lambda: self.pub(
                                "-t", t, "-m", "p", "-D", "publish", "user-property", "a", "1",
                                "-D", "publish", "user-property", "a", "2",
                                "-D", "publish", "content-type", "application/json",
                                "-D", "publish", "response-topic", "reply/here",
                                "-D", "publish", "correlation-data", "c0rr",
                                "-D", "publish", "payload-format-indicator", 1,
                                "-D", "publish", "message-expiry-interval", 3600))[0]
        fields = got.split("|")
        self.assertEqual(fields[:5], ["a:1 a:2", "application/json", "reply/here", "c0rr", "1"])
        self.assertTrue(3590 <= int(fields[5]) <= 3600, got)

    def test_message_expiry(self):
        t = self.topic()
        self.pub("-t", t, "-m", "short-lived", "-r", "-D", "publish", "message-expiry-interval", 1)
        time.sleep(2.5)
        s = self.sub([t], "-W", 1)
        self.assert_times_out(s)
        self.assertEqual(s.messages(), [])

    def test_subscription_identifier(self):
        t = self.topic()
        got = self.received([t], "-D", "subscribe", "subscription-identifier", 99, "-F", "%S %p",
                            publish=lambda: self.pub("-t", t, "-m", "id"))
        self.assertEqual(got, ["99 id"])

    def test_topic_aliases_both_ways(self):
        # The subscriber allows the broker aliases (midge uses them, mosquitto 2.0.11 never
        # does); the publisher sends one with every message.
        t = self.topic()
        s = self.sub([t], "-V", "5", "-q", 2, "-C", 6, "-D", "connect", "topic-alias-maximum", 3,
                     "-F", "%t %p")
        self.pub("-t", t, "-m", "a", "-q", 0, "--repeat", 2, "-D", "publish", "topic-alias", 1)
        self.pub("-t", t, "-m", "b", "-q", 1, "--repeat", 2, "-D", "publish", "topic-alias", 1)
        self.pub("-t", t, "-m", "c", "-q", 2, "--repeat", 2, "-D", "publish", "topic-alias", 1)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["%s %s" % (t, p) for p in "aabbcc"])

    def test_maximum_packet_size(self):
        t = self.topic()
        s = self.sub([t], "-D", "connect", "maximum-packet-size", 300, "-C", 1, "-F", "%l")
        self.pub("-t", t, "-m", "x" * 1000)
        self.pub("-t", t, "-m", "small")
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["5"])

    def test_receive_maximum(self):
        t = self.topic()
        s = self.sub([t], "-q", 1, "-C", 30, "-D", "connect", "receive-maximum", 1)
        self.pub("-t", t, "-l", "-q", 1, input=b"".join(b"m%d\n" % i for i in range(30)))
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["m%d" % i for i in range(30)])

    def test_other_properties_are_accepted(self):
        t = self.topic()
        got = self.received([t], "-D", "connect", "request-problem-information", 0,
                            "-D", "connect", "request-response-information", 1,
                            "-D", "connect", "user-property", "who", "me",
                            "-D", "connect", "session-expiry-interval", 5,
                            "-D", "subscribe", "user-property", "s", "1",
                            "-D", "unsubscribe", "user-property", "u", "1", "-U", t + "/none",
                            "-D", "disconnect", "user-property", "bye", "now",
                            publish=lambda: self.pub("-t", t, "-m", "ok",
                                                     "-D", "connect", "receive-maximum", 10,
                                                     "-D", "disconnect", "session-expiry-interval", 0))
        self.assertEqual(got, ["ok"])

    def test_property_implies_mqtt5_unless_a_version_is_given(self):
        t = self.topic()
        r = self.pub("-t", t, "-m", "x", "-d", "-D", "publish", "content-type", "a")
        self.assertRegex(r.text, r"Client (?!\(null\))\S+ received CONNACK")  # an assigned id
        r = self.pub("-t", t, "-m", "x", "-d", "-V", "311", "-D", "publish", "content-type", "a")
        self.assertIn("Client (null) received CONNACK", r.text)

    def test_bad_properties_as_mosquitto_pub(self):
        cases = [
            (["-D", "publish", "session-expiry-interval", 3],
             "Error: session-expiry-interval property not allowed for publish in --property argument."),
            (["-D", "connect", "no-such-property", 3],
             "Error: Invalid property name given in --property argument."),
            (["-D", "connect", "receive-maximum", 70000],
             "Error: Property value (70000) out of range for property receive-maximum."),
            (["-D", "connect", "receive-maximum"],
             "Error: --property argument given but not enough arguments specified."),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = self.pub("-t", "x", "-m", "y", *args, check=False)
                m = self.mpub("-t", "x", "-m", "y", *args, check=False)
                self.assertEqual((r.rc, m.rc), (1, 1))
                self.assertEqual(r.err.splitlines()[0], message)
                self.assertEqual(m.err.splitlines()[0], message)
        for args in (["-D", "connect", "receive-maximum", 0], ["-D", "bogus", "user-property", "a", "b"],
                     ["-D", "publish", "topic-alias", 1, "-D", "publish", "topic-alias", 2]):
            with self.subTest(args=args):
                r = self.pub("-t", "x", "-m", "y", *args, check=False)
                self.assertEqual(r.rc, 1, r)
                self.assertTrue(r.err.startswith("Error: "), r)


USERS = {"chisj": "chisj", "other": "secret"}


class Credentials(CliHelpers, SecureTestCase):
    """-u / -P against a password file, refusals and their exit statuses."""

    @classmethod
    def setUpClass(cls):
        cls.dir = private_dir()
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        pw = make_password_file(os.path.join(cls.dir, "passwd"), USERS)
        cls.shared = SecureBroker(options={"allow_anonymous": False, "password_file": pw})
        cls.addClassCleanup(_stop_checked, cls.shared)

    def setUp(self):
        super().setUp()
        self.broker, self.port = self.shared, self.shared.port

    def test_the_seed_configurations_example(self):
        # mosquitto_sub -h H -t mtopic -u chisj -P chisj, with midge_sub.
        s = Proc([SUB, "-h", "127.0.0.1", "-p", self.port, "-t", "mtopic", "-u", "chisj", "-P",
                  "chisj", "-d", "-C", 1])
        self.addCleanup(s.stop)
        s.wait_line(r"^Subscribed \(mid: 1\): 0$")
        self.pub("-t", "mtopic", "-m", "seed", "-u", "chisj", "-P", "chisj")
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["seed"])

    def test_url_with_credentials(self):
        t = self.topic()
        url = "mqtt://chisj:chisj@127.0.0.1:%d/%s" % (self.port, t)
        s = self.sub([], "-L", url, "-C", 1, where=False)
        self.pub("-L", url, "-m", "by url", where=False)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["by url"])

    def test_refusals_exit_with_the_connack_code(self):
        cases = [((), {}), (("-u", "chisj", "-P", "wrong"), {"username": "chisj", "password": "wrong"}),
                 (("-u", "nobody", "-P", "x"), {"username": "nobody", "password": "x"})]
        for proto, version in ((4, "311"), (5, "5")):
            for args, kw in cases:
                with self.subTest(version=version, args=args):
                    code = connack_code(self.port, proto=proto, **kw)
                    self.assertIn(code, (4, 5) if proto == 4 else (0x86, 0x87))
                    r = self.pub("-t", "x", "-m", "y", "-V", version, *args, check=False)
                    m = self.mpub("-t", "x", "-m", "y", "-V", version, *args, check=False)
                    s = self.pub("-t", "x", "-V", version, *args, tool=SUB, check=False)
                    self.assertEqual((r.rc, m.rc, s.rc), (code, code, code))
                    self.assertEqual(r.err.splitlines()[0], m.err.splitlines()[0])
                    self.assertEqual(r.err.splitlines()[1], "Error: The connection was refused.")

    def test_password_without_username(self):
        r = self.pub("-t", "x", "-m", "y", "-P", "chisj", check=False)
        self.assertEqual(r.rc, 1)
        self.assertIn("Problem setting username and/or password", r.err)
        # MQTT 5 allows it; the broker refuses.
        r = self.pub("-t", "x", "-m", "y", "-P", "chisj", "-V", "5", check=False)
        self.assertIn(r.rc, (0x86, 0x87))


class Acl(CliHelpers, SecureTestCase):
    """Subscriptions and publications the ACL refuses (MQTT 5 reason codes)."""

    def setUp(self):
        super().setUp()
        pw = self.password_file(USERS)
        acl = self.file("acl", "user chisj\ntopic readwrite chisj/#\n")
        self.start_broker(options={"allow_anonymous": False, "password_file": pw, "acl_file": acl})

    def test_publish_refused(self):
        for qos in (1, 2):
            with self.subTest(qos=qos):
                args = ["-u", "chisj", "-P", "chisj", "-t", "other/x", "-m", "x", "-q", qos, "-V", "5",
                        "-i", "acl-pub", "-d"]
                r, m = self.pub(*args), self.mpub(*args)
                self.assertEqual(r.rc, 0)
                self.assertEqual(r.err, "Warning: Publish 1 failed: Not authorized.\n")
                self.assertEqual((r.text, r.err), (m.text, m.err))

    def test_subscription_refused(self):
        self.midge_only("mosquitto 2.0.11 grants the subscription and filters each message")
        args = ["-u", "chisj", "-P", "chisj", "-t", "other/x", "-W", 5]
        r, m = self.pub(*args, tool=SUB, check=False), self.pub(*args, tool=MOSQUITTO_SUB_BIN, check=False)
        self.assertEqual((r.rc, r.err), (0, "All subscription requests were denied.\n"))
        self.assertEqual((r.rc, r.err), (m.rc, m.err))


class TlsCertificates(CliHelpers, SecureTestCase):
    """--cafile, --capath, --cert/--key, --insecure, --tls-version, mqtts://."""

    NAMES = ["plain", "tls", "wrongname", "require", "tls13"]

    @classmethod
    def setUpClass(cls):
        server = CERTS.server_listener
        cls.shared = SecureBroker(listeners=[
            {}, server(),
            server(certfile=CERTS.path("wrongname.crt"), keyfile=CERTS.path("wrongname.key")),
            server(require_certificate=True), server(tls_version="tlsv1.3")])
        cls.addClassCleanup(_stop_checked, cls.shared)
        cls.ports = dict(zip(cls.NAMES, cls.shared.ports))

    def setUp(self):
        super().setUp()
        self.broker, self.port = self.shared, self.ports["plain"]

    def exchange(self, listener, *args, host="127.0.0.1", where=None):
        t = self.topic()
        w = where if where is not None else ["-h", host, "-p", self.ports[listener]]
        s = self.sub([t], "-q", 1, "-C", 1, *w, *args, where=False)
        self.pub("-t", t, "-m", "secret", "-q", 1, *w, *args, where=False)
        self.assertEqual(s.wait_exit(), 0)
        return s.messages()

    def test_cafile(self):
        self.assertEqual(self.exchange("tls", "--cafile", CERTS.ca), ["secret"])
        self.assertEqual(self.exchange("tls", "--cafile", CERTS.ca, host="localhost"), ["secret"])

    def test_capath(self):
        capath = os.path.join(self.tmp, "capath")
        os.mkdir(capath)
        shutil.copy(CERTS.ca, os.path.join(capath, "midge-test-ca.pem"))
        subprocess.run(["openssl", "rehash", capath], check=True)
        self.assertEqual(self.exchange("tls", "--capath", capath), ["secret"])

    def test_unknown_ca_is_refused(self):
        args = ["-p", self.ports["tls"], "-t", "x", "-m", "y", "--cafile", CERTS.path("other-ca.crt")]
        r, m = self.pub(*args, check=False), self.mpub(*args, check=False)
        self.assertEqual(r.rc, 1)
        self.assertIn(m.rc, (1, 8))
        self.assertIn("Unable to connect (A TLS error occurred.).", r.err)
        self.assertIn("certificate verify failed", r.err)

    def test_host_name_check_and_insecure(self):
        args = ["-p", self.ports["wrongname"], "-t", self.topic(), "-m", "y", "--cafile", CERTS.ca]
        r, m = self.pub(*args, check=False), self.mpub(*args, check=False)
        self.assertEqual(r.rc, 1)
        self.assertIn(m.rc, (1, 8))
        self.assertIn("A TLS error occurred", r.err)
        self.assertEqual(self.exchange("wrongname", "--cafile", CERTS.ca, "--insecure"), ["secret"])

    def test_client_certificate(self):
        crt, key = CERTS.client("client")
        self.assertEqual(self.exchange("require", "--cafile", CERTS.ca, "--cert", crt, "--key", key),
                         ["secret"])
        r = self.pub("-p", self.ports["require"], "-t", "x", "-m", "y", "--cafile", CERTS.ca,
                     check=False)
        self.assertNotEqual(r.rc, 0)

    def test_cert_needs_key(self):
        crt, _ = CERTS.client("client")
        args = ["-t", "x", "-m", "y", "--cafile", CERTS.ca, "--cert", crt]
        r, m = self.pub(*args, check=False), self.mpub(*args, check=False)
        self.assertEqual((r.rc, m.rc), (1, 1))
        self.assertEqual(r.err.splitlines()[0], m.err.splitlines()[0])

    def test_tls_version(self):
        self.assertEqual(self.exchange("tls13", "--cafile", CERTS.ca, "--tls-version", "tlsv1.3"),
                         ["secret"])
        self.assertEqual(self.exchange("tls", "--cafile", CERTS.ca, "--tls-version", "tlsv1.2"),
                         ["secret"])

    def test_mqtts_url(self):
        t = self.topic()
        url = "mqtts://127.0.0.1:%d/%s" % (self.ports["tls"], t)
        s = self.sub([], "-L", url, "--cafile", CERTS.ca, "-C", 1, where=False)
        self.pub("-L", url, "--cafile", CERTS.ca, "-m", "via mqtts", where=False)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["via mqtts"])

    def test_plain_client_on_a_tls_port(self):
        args = ["-p", self.ports["tls"], "-t", "x", "-m", "y"]
        r, m = self.pub(*args, check=False), self.mpub(*args, check=False)
        self.assertEqual((r.rc, m.rc), (7, 7))
        self.assertEqual(r.err, m.err)


PSK_KEY = "00112233445566778899aabbccddeeff"


class Psk(CliHelpers, SecureTestCase):
    """--psk / --psk-identity; the identity is the user name."""

    def setUp(self):
        super().setUp()
        psk = self.file("psk", "alice:%s\n" % PSK_KEY)
        self.start_broker(options={"allow_anonymous": False, "psk_file": psk},
                          listeners=[{"psk_hint": "hint", "use_identity_as_username": True}])

    def test_exchange(self):
        t = self.topic()
        args = ["--psk", PSK_KEY, "--psk-identity", "alice"]
        s = self.sub([t], "-q", 2, "-C", 1, *args)
        self.pub("-t", t, "-m", "psk", "-q", 2, *args)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["psk"])

    def test_wrong_key_or_identity(self):
        for key, ident in (("00112233445566778899aabbccddee00", "alice"), (PSK_KEY, "mallory")):
            with self.subTest(identity=ident):
                args = ["-t", "x", "-m", "y", "--psk", key, "--psk-identity", ident]
                r, m = self.pub(*args, check=False), self.mpub(*args, check=False)
                # mosquitto_pub says 1 or 8 (MOSQ_ERR_TLS), depending on when it notices.
                self.assertEqual(r.rc, 1)
                self.assertIn(m.rc, (1, 8))
                self.assertIn("Unable to connect (A TLS error occurred.).", r.err)

    def test_psk_needs_an_identity(self):
        r = self.pub("-t", "x", "-m", "y", "--psk", PSK_KEY, check=False)
        m = self.mpub("-t", "x", "-m", "y", "--psk", PSK_KEY, check=False)
        self.assertEqual((r.rc, m.rc), (1, 1))
        self.assertEqual(r.err.splitlines()[0], m.err.splitlines()[0])


class WebSockets(CliHelpers, SecureTestCase):
    """-L ws:// and wss://; every broker here has a TCP listener too."""

    @classmethod
    def setUpClass(cls):
        cls.shared = SecureBroker(listeners=[{}, {"protocol": "websockets"},
                                             dict(CERTS.server_listener(), protocol="websockets")])
        cls.addClassCleanup(_stop_checked, cls.shared)
        cls.tcp, cls.ws, cls.wss = cls.shared.ports

    def setUp(self):
        super().setUp()
        self.broker, self.port = self.shared, self.tcp
        self.tmp2 = private_dir()
        self.addCleanup(shutil.rmtree, self.tmp2, True)

    def test_every_qos_over_websockets(self):
        url = "ws://127.0.0.1:%d/mqtt" % self.ws
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                t = self.topic()
                s = self.sub([t], "-L", url, "-q", qos, "-C", 1, "-F", "%q %p", where=False)
                self.pub("-L", url, "-t", t, "-m", "ws", "-q", qos, where=False)
                self.assertEqual(s.wait_exit(), 0)
                self.assertEqual(s.messages(), ["%d ws" % qos])

    def test_websockets_and_tcp_meet(self):
        t = self.topic()
        s = self.sub([t], "-L", "ws://127.0.0.1:%d" % self.ws, "-C", 2, "-V", "5", where=False)
        self.pub("-t", t, "-m", "from tcp")
        self.pub("-L", "ws://localhost:%d/" % self.ws, "-t", t, "-m", "from ws", where=False)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["from tcp", "from ws"])
        self.assertIn("WebSocket upgrade: GET /mqtt", s.text)

    def test_wss(self):
        url = "wss://127.0.0.1:%d/mqtt" % self.wss
        t = self.topic()
        s = self.sub([t], "-L", url, "--cafile", CERTS.ca, "-C", 1, "-q", 1, where=False)
        self.pub("-L", url, "--cafile", CERTS.ca, "-t", t, "-m", "wss", "-q", 1, where=False)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["wss"])

    def big_message(self, size):
        data = os.urandom(size)
        path = os.path.join(self.tmp2, "big")
        with open(path, "wb") as f:
            f.write(data)
        url = "ws://127.0.0.1:%d/mqtt" % self.ws
        t = self.topic()
        s = self.sub([t], "-L", url, "-C", 1, "-q", 1, "-F", "%x", where=False)
        self.pub("-L", url, "-t", t, "-f", path, "-q", 1, where=False)
        self.assertEqual(s.wait_exit(30), 0)
        self.assertEqual(s.messages(), [data.hex()])

    def test_large_message(self):
        self.big_message(200 * 1024)

    def test_very_large_message(self):
        self.midge_only("mosquitto 2.0.11 stalls delivering ~800 KiB to a WebSocket client (test_17)")
        self.big_message(3 * 1024 * 1024)

    def test_bad_scheme(self):
        r = self.pub("-L", "http://127.0.0.1/x", "-m", "y", where=False, check=False)
        self.assertEqual(r.rc, 1)
        self.assertIn("unsupported URL scheme", r.err)


class UnixSocket(CliHelpers, SecureTestCase):
    """--unix PATH."""

    def test_exchange(self):
        path = os.path.join(self.tmp, "mqtt.sock")
        self.start_broker(listeners=[{}, {"unix_socket_path": path}])
        t = self.topic()
        s = self.sub([t], "--unix", path, "-C", 1, "-q", 1, where=False)
        self.pub("--unix", path, "-t", t, "-m", "local", "-q", 1, where=False)
        self.assertEqual(s.wait_exit(), 0)
        self.assertEqual(s.messages(), ["local"])


class UsageErrors(CliCase):
    """Bad command lines: the same exit status (and, where the words are
    mosquitto's, the same first line) as mosquitto_pub / mosquitto_sub."""

    SAME_TEXT = [
        (PUB, ["-t", "a/#", "-m", "x"]),
        (PUB, ["-t", "a", "-m", "x", "-q", 3]),
        (PUB, ["-t", "a", "-m", "x", "-V", "4"]),
        (PUB, ["-t", "a", "-m", "x", "-k", 3]),
        (PUB, ["-t", "a", "-m", "x", "-p", 70000]),
        (PUB, ["-t", "a", "-m", "x", "-i", "a", "-I", "b"]),
        (PUB, ["-t", "a", "-m", "x", "--bogus"]),
        (PUB, ["-t", "a", "-m", "x", "--repeat", 0]),
        (PUB, ["-t", "a", "-m", "x", "-M", 0]),
        (PUB, ["-L", "mqtt://127.0.0.1:1", "-m", "x"]),
        (SUB, ["-t", "a/#/b"]),
        (SUB, ["-t", "a", "-T", "a/#/b"]),
        (SUB, ["-t", "a", "-U", "a/#/b"]),
        (SUB, []),
        (SUB, ["-t", "a", "-C", 0]),
        (SUB, ["-t", "a", "-W", 0]),
        (SUB, ["-t", "a", "-R", "--retained-only"]),
        (SUB, ["-t", "a", "-F", "%z"]),
        (SUB, ["-t", "a", "-F", "%-5.3z"]),
        (SUB, ["-t", "a", "-F", "ab%"]),
        (SUB, ["-t", "a", "-F", "%10"]),
        (SUB, ["-t", "a", "-F", "ab@"]),
        (SUB, ["-t", "a", "-F", "ab\\"]),
        (SUB, ["-t", "a", "-F", "\\q"]),
    ]

    def test_same_errors_as_mosquitto(self):
        for tool, args in self.SAME_TEXT:
            with self.subTest(tool=os.path.basename(tool), args=args):
                theirs_bin = MOSQUITTO_PUB_BIN if tool == PUB else MOSQUITTO_SUB_BIN
                r = self.pub(*args, tool=tool, check=False)
                m = self.pub(*args, tool=theirs_bin, check=False)
                self.assertEqual((r.rc, m.rc), (1, 1), "%r\n%r" % (r, m))
                first = [l for l in m.err.splitlines() if l][0]
                self.assertEqual([l for l in r.err.splitlines() if l][0], first)
                self.assertIn("Use '%s --help' to see usage." % os.path.basename(tool), r.err)

    def test_missing_topic_or_message(self):
        for args in (["-m", "x"], ["-t", "x"]):
            r = self.pub(*args, check=False)
            self.assertEqual(r.rc, 1)
            self.assertIn("Error: Both topic and message must be supplied.", r.err)
        # An empty topic after the URL's slash is refused too (mosquitto's tools take it and
        # mosquitto_sub then loops reconnecting).
        for tool in (PUB, SUB):
            r = self.pub("-L", "mqtt://127.0.0.1:%d/" % self.port, "-m", "x", tool=tool, where=False,
                         check=False) if tool == PUB else \
                self.pub("-L", "mqtt://127.0.0.1:%d/" % self.port, tool=tool, where=False, check=False)
            self.assertEqual(r.rc, 1)
            self.assertIn("topic missing", r.err)

    def test_help(self):
        for tool, theirs in ((PUB, MOSQUITTO_PUB_BIN), (SUB, MOSQUITTO_SUB_BIN)):
            with self.subTest(tool=os.path.basename(tool)):
                r = run([tool, "--help"])
                m = run([theirs, "--help"])
                self.assertEqual(r.rc, m.rc)  # 1, as mosquitto's
                self.assertIn("Usage: %s" % os.path.basename(tool), r.text)
                for option in ("-t", "-q", "-L", "--cafile", "--psk", "-D", "--will-topic"):
                    self.assertIn(" %s " % option, r.text)

    def test_nothing_listening(self):
        port = free_port()
        for tool, theirs in ((PUB, MOSQUITTO_PUB_BIN), (SUB, MOSQUITTO_SUB_BIN)):
            with self.subTest(tool=os.path.basename(tool)):
                r = self.pub("-p", port, "-t", "x", "-m", "y", where=False, tool=tool, check=False) \
                    if tool == PUB else self.pub("-p", port, "-t", "x", where=False, tool=tool, check=False)
                m = self.pub("-p", port, "-t", "x", "-m", "y", where=False, tool=theirs, check=False) \
                    if tool == PUB else self.pub("-p", port, "-t", "x", where=False, tool=theirs, check=False)
                self.assertEqual((r.rc, r.err), (m.rc, m.err))
                self.assertEqual(r.err, "Error: Connection refused\n")

    def test_unknown_host(self):
        r = self.pub("-h", "no-such-host.invalid", "-t", "x", "-m", "y", where=False, check=False)
        m = self.mpub("-h", "no-such-host.invalid", "-t", "x", "-m", "y", where=False, check=False)
        self.assertEqual((r.rc, r.err), (m.rc, m.err))


if __name__ == "__main__":
    main()
