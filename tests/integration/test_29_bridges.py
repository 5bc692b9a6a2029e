#!/usr/bin/python3
"""MQTT bridges: a broker that connects to another broker as a client and
forwards messages between them (mosquitto.conf's `connection` sections).

The BRIDGING broker is the broker under test (midge, or mosquitto with
MIDGE_TEST_TARGET=mosquitto), configured with a mosquitto.conf text that both
read (one test uses midge's YAML form). The REMOTE broker is either the
broker under test again (classes without a suffix) or Debian's mosquitto
whatever the target (classes ending in ToMosquitto), started on a fixed
loopback port so that a test can stop it and start it again on the same port.

Covered: topic mapping (out, in, both, local and remote prefixes, "" as an
empty prefix, wildcards), QoS = min(message QoS, topic QoS), retained
messages both ways, QoS 1 messages queued while the remote is down and
delivered after the bridge reconnects, state notifications (retained "1"/"0"
on $SYS/broker/connection/<remote_clientid>/state locally and on the remote,
where "0" is the bridge's will; notifications_local_only, notification_topic,
notifications false), start_type once and lazy (threshold, idle_timeout),
failover to a second address, an unreachable remote, wrong credentials
(refused, retried, accepted once the remote's password file changes), TLS
(bridge_cafile, a server certificate with another name with and without
bridge_insecure, another CA, a client certificate; TLS-PSK with
bridge_identity and bridge_psk), two brokers bridged both ways on the
same topics without echo (try_private with MQTT 3.1.1; no-local with
bridge_protocol_version mqttv50), two bridges in one broker, and the YAML
form of a bridge (midge only).

What mosquitto 2.0.11 does differently from its documentation (these tests
follow the documentation and skip the part mosquitto does not do):
  * start_type once: it never connects at all (it logs "Connecting bridge
    (step 1)" and never goes on to step 2);
  * start_type lazy: it never disconnects an idle bridge while
    keepalive_interval is set (its idle check adds twice the keepalive to the
    idle time, and every PINGREQ counts as traffic; keepalive_interval cannot
    go below 5). It does start when `threshold` messages are queued (>=, where
    the manual says "exceeds").

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_29_bridges.py
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (MOSQUITTO_BIN, Broker, Certs, MosquittoSub, PahoClient,  # noqa: E402
                       PahoTransportClient, SecureBroker, _Helpers, _stop_checked, free_port, is_mosquitto,
                       listening_addresses, main, make_password_file, private_dir,
                       to_mosquitto_conf_ext, unique_id, wait_for, write_file)

# paho 1.6's tls_set() uses a deprecated ssl name.
warnings.filterwarnings("ignore", category=DeprecationWarning)

# Every wait for something the bridge does is bounded by this (seconds). The
# bridges use restart_timeout 1 and keepalive_interval 5, so a reconnection
# takes a few seconds (mosquitto 2.0.11 retries about every 5 s at worst).
BRIDGE_TIMEOUT = 20
# How long a test watches for a message that must not arrive (an echo, a
# message that must not cross).
QUIET = 1.5

CERTS = None
PSK_KEY = "00112233445566778899aabbccddeeff"
WATCHER_KEY = "deadbeefcafe0123"


def setUpModule():
    global CERTS
    CERTS = Certs(["bridge"])


def tearDownModule():
    if CERTS:
        CERTS.cleanup()


def state_topic(remote_clientid):
    """The default notification topic of a bridge."""
    return "$SYS/broker/connection/%s/state" % remote_clientid


def payloads(messages, skip_probes=True):
    """The payloads of PahoClient messages, leaving out the probes of wait_crossing()."""
    return [m[1] for m in messages if not (skip_probes and m[1].startswith(b"probe-"))]


# ---------------------------------------------------------------- remote brokers

class Remote:
    """A remote broker on a fixed loopback port that a test can stop and start
    again on the same port.

    kind "target": the broker under test (a SecureBroker: midge, or mosquitto
    with MIDGE_TEST_TARGET=mosquitto); kind "mosquitto": Debian's mosquitto
    (/usr/sbin/mosquitto -c FILE -v) whatever the target. options: global
    options (mosquitto names); listener: options of its one listener
    (certfile, ...); persistent: keep sessions and messages across a stop and
    start (SIGTERM saves them).
    """

    def __init__(self, kind, options=None, listener=None, persistent=False):
        self.kind = kind
        self.options = dict(options or {})
        self.listener = dict(listener or {})
        self.port = free_port()
        self.dir = private_dir("midgetest-remote-")
        self.broker = None
        self.proc = None
        self.logfile = None
        self.old_logs = []
        if persistent:
            self.options["persistence"] = True
            self.options["persistence_location"] = os.path.join(self.dir, "")
            if kind == "target" and not is_mosquitto():
                self.options["persistence_file"] = "store"

    def start(self):
        if self.kind == "target":
            listener = {"port": self.port}
            listener.update(self.listener)
            self.broker = SecureBroker(options=self.options, listeners=[listener])
            return self
        opts = {"user": "root", "allow_anonymous": True}
        opts.update(self.options)
        listener = {"port": self.port, "bind_address": "127.0.0.1"}
        listener.update(self.listener)
        conf = write_file(self.dir, "remote.conf", to_mosquitto_conf_ext(opts, [listener]))
        self.logfile = os.path.join(self.dir, "remote-%d.log" % len(self.old_logs))
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen([MOSQUITTO_BIN, "-c", conf, "-v"], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.dir)
        # Listening (seen in /proc/net, without connecting to it) or dead.
        wait_for(lambda: "127.0.0.1" in listening_addresses(self.port) or self.proc.poll() is not None,
                 timeout=10, what="mosquitto (remote) to listen on %d" % self.port)
        if self.proc.poll() is not None:
            raise AssertionError("mosquitto (remote) exited with %s:\n%s" % (self.proc.returncode, self.log()))
        return self

    def running(self):
        if self.kind == "target":
            return self.broker is not None and self.broker.alive()
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERM (a clean stop: a persistent remote saves its state)."""
        if self.kind == "target":
            if self.broker is not None:
                b, self.broker = self.broker, None
                self.old_logs.append(b.log())
                if check:
                    _stop_checked(b)
                else:
                    b.stop()
            return
        if self.proc is not None:
            p, self.proc = self.proc, None
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            self.old_logs.append(self._read(self.logfile))

    def restart(self):
        self.stop()
        return self.start()

    def signal(self, sig):
        (self.broker.proc if self.kind == "target" else self.proc).send_signal(sig)

    @staticmethod
    def _read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def log(self):
        now = ""
        if self.kind == "target" and self.broker is not None:
            now = self.broker.log()
        elif self.kind == "mosquitto" and self.proc is not None:
            now = self._read(self.logfile)
        return "\n".join(self.old_logs + [now])

    def cleanup(self):
        self.stop(check=False)
        if os.environ.get("MIDGE_TEST_KEEP"):
            sys.stderr.write("kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- test case base

class BridgeCase(_Helpers, unittest.TestCase):
    """Starts remote brokers (self.remote()) and bridging brokers
    (self.bridge()); both are stopped after the test, the bridging broker
    checked for a clean exit (no sanitizer report) unless the test killed it."""

    remote_kind = "target"

    def setUp(self):
        self.logs = []  # (name, function returning a log) for _dump_logs()
        self.addCleanup(self._dump_logs)  # runs last, after the brokers stopped
        self.tmp = private_dir()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.publishers = {}

    def _failed(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        return any(test is self for test, _ in list(result.failures) + list(result.errors))

    def _dump_logs(self):
        """When the test failed: the end of every broker's log, on stderr."""
        if not self._failed():
            return
        for name, log in self.logs:
            lines = log().splitlines()
            sys.stderr.write("\n----- %s (last %d of %d lines)\n%s\n"
                             % (name, min(len(lines), 60), len(lines), "\n".join(lines[-60:])))

    # Brokers ----------------------------------------------------------------
    def remote(self, options=None, listener=None, persistent=False, kind=None, start=True):
        r = Remote(kind or self.remote_kind, options=options, listener=listener, persistent=persistent)
        self.addCleanup(r.cleanup)
        self.logs.append(("remote broker (%s) on port %d" % (r.kind, r.port), r.log))
        if start:
            r.start()
        return r

    def bridge_conf(self, bridges, port):
        """A mosquitto.conf text: a listener on `port`, then one `connection`
        section per bridge. A bridge is a dict: name, addresses (a list),
        topics (list of `topic` arguments), options (more lines, as
        option: value; a None value leaves the option out)."""
        lines = ["user root", "allow_anonymous true", "listener %d 127.0.0.1" % port]
        for b in bridges:
            lines.append("")
            lines.append("connection %s" % b["name"])
            lines.append("address %s" % " ".join(b["addresses"]))
            lines.extend("topic %s" % t for t in b["topics"])
            for key, value in b["options"].items():
                if value is None:
                    continue
                if isinstance(value, bool):
                    value = "true" if value else "false"
                lines.append("%s %s" % (key, value))
        return "\n".join(lines) + "\n"

    def bridge_spec(self, remote, topics, **options):
        """One bridge of bridge_conf(): to `remote` (a Remote, a port or a
        list of ports), with fast reconnection and a unique remote_clientid."""
        if isinstance(remote, Remote):
            ports = [remote.port]
        elif isinstance(remote, int):
            ports = [remote]
        else:
            ports = list(remote)
        opts = {"remote_clientid": unique_id("bridge"), "restart_timeout": 1,
                "keepalive_interval": 5, "notifications": True}
        opts.update(options)
        return {"name": unique_id("conn"), "addresses": ["127.0.0.1:%d" % p for p in ports],
                "topics": list(topics), "options": opts}

    def bridge(self, remote, topics, **options):
        """Starts a bridging broker with one bridge (see bridge_spec());
        self.clientid is the bridge's remote_clientid, self.connection its name."""
        spec = self.bridge_spec(remote, topics, **options)
        self.clientid = spec["options"]["remote_clientid"]
        self.connection = spec["name"]
        return self.bridging_broker([spec])

    def bridging_broker(self, specs, port=None):
        port = port or free_port()
        b = Broker(raw_config=self.bridge_conf(specs, port), config_name="bridge.conf")
        b.killed = False
        self.addCleanup(lambda: b.stop() if b.killed else _stop_checked(b))
        self.logs.append(("bridging broker on port %d" % port, b.log))
        if b.port != port:
            self.fail("the bridging broker listens on %s, not %d" % (b.ports, port))
        return b

    def kill(self, broker):
        """kill -9 a bridging broker: its connections drop without DISCONNECT."""
        broker.killed = True
        broker.proc.kill()
        broker.proc.wait()

    # Clients ----------------------------------------------------------------
    def sub(self, port, topics, qos=1, **kw):
        """A PahoClient subscribed to `topics` (a filter or a list) at `qos`."""
        c = PahoClient(port, unique_id("sub"), **kw)
        self.addCleanup(c.close)
        for t in [topics] if isinstance(topics, str) else topics:
            c.subscribe(t, qos)
        return c

    def pub(self, port, topic, payload, qos=1, retain=False):
        """Publishes through a PahoClient kept per port (waits for the flow to
        complete). A closed publisher (its broker restarted) is replaced."""
        c = self.publishers.get(port)
        if c is None or c.disconnected.is_set():
            c = PahoClient(port, unique_id("pub"))
            self.addCleanup(c.close)
            self.publishers[port] = c
        c.publish(topic, payload, qos=qos, retain=retain)

    def forget_publisher(self, port):
        c = self.publishers.pop(port, None)
        if c is not None:
            c.close()

    def wait_crossing(self, pub_port, topic, sub, timeout=BRIDGE_TIMEOUT, what="the bridge"):
        """Publishes QoS 0 probes ("probe-<call>-N") on `topic` through
        pub_port until `sub` receives one of this call's: the bridge is up and
        its subscriptions are in place. Tests count messages with payloads(),
        which leaves probes out."""
        mark = ("probe-%s-" % unique_id("p")).encode()
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            n += 1
            self.pub(pub_port, topic, mark + str(n).encode(), qos=0)
            try:
                sub.wait_for(lambda msgs: any(m[1].startswith(mark) for m in msgs), timeout=0.3)
                return
            except AssertionError:
                pass
        raise AssertionError("%s carried no message on %s within %ds" % (what, topic, timeout))

    def wait_state(self, watcher, value, timeout=BRIDGE_TIMEOUT, what="bridge state"):
        """Waits until the last message a state watcher got has payload `value`."""
        value = value.encode() if isinstance(value, str) else value
        watcher.wait_for(lambda msgs: msgs and msgs[-1][1] == value, timeout=timeout,
                         what="%s %r" % (what, value))

    def retained(self, port, topic, timeout=3):
        """The retained message a new subscriber to `topic` gets: (payload,
        retain flag), or None if nothing comes within `timeout`."""
        c = PahoClient(port, unique_id("ret"))
        try:
            c.subscribe(topic, 1)
            try:
                msgs = c.wait_messages(1, timeout=timeout)
            except AssertionError:
                return None
            return msgs[0][1], msgs[0][3]
        finally:
            c.close()

    def assert_quiet(self, client, n, seconds=QUIET, msg=""):
        """After `seconds`, `client` has exactly n messages (probes left out)."""
        time.sleep(seconds)
        got = payloads(client.messages)
        self.assertEqual(len(got), n, "%s: expected %d message(s), got %r" % (msg, n, got))


# ---------------------------------------------------------------- topic mapping

class TopicMapping(BridgeCase):
    """out / in / both, prefixes and QoS, with the broker under test as the remote."""

    def test_out_with_prefixes(self):
        """`topic P out Q L R`: a message published locally on L+x (x matching
        P) reaches the remote on R+x, payload intact; nothing arrives on the
        local name remotely, and a local topic outside L+P is not forwarded."""
        remote = self.remote()
        base = unique_id("s")
        b = self.bridge(remote, ["%s/# out 1 local/ remote/" % base])
        rsub = self.sub(remote.port, ["remote/%s/#" % base, "local/#", "other/#"])
        self.wait_crossing(b.port, "local/%s/probe" % base, rsub)
        self.pub(b.port, "local/%s/a/b" % base, b"\x00hello\xff", qos=1)
        self.pub(b.port, "other/%s/x" % base, "not bridged", qos=1)
        self.pub(b.port, "local/x%s/y" % base, "not bridged either", qos=1)
        rsub.wait_for(lambda msgs: b"\x00hello\xff" in payloads(msgs), what="the bridged message")
        self.assert_quiet(rsub, 1, msg="remote subscriber")
        data = [m for m in rsub.messages if m[1] == b"\x00hello\xff"]
        self.assertEqual(data[0][0], "remote/%s/a/b" % base)
        self.assertFalse(data[0][3], "a live message arrives with retain 0")

    def test_in_with_prefixes(self):
        """`topic P in Q L R`: a message published on the remote on R+x arrives
        locally on L+x; a local publication is not sent to the remote."""
        remote = self.remote()
        base = unique_id("c")
        b = self.bridge(remote, ["%s/# in 1 l/ r/" % base])
        lsub = self.sub(b.port, ["l/%s/#" % base, "r/#"])
        rsub = self.sub(remote.port, ["r/%s/#" % base, "l/#"])
        self.wait_crossing(remote.port, "r/%s/probe" % base, lsub)
        self.pub(remote.port, "r/%s/cmd/1" % base, "go", qos=1)
        lsub.wait_for(lambda msgs: b"go" in payloads(msgs), what="the imported message")
        self.pub(b.port, "l/%s/cmd/2" % base, "stay local", qos=1)
        self.pub(b.port, "r/%s/cmd/3" % base, "stay local too", qos=1)
        self.assert_quiet(lsub, 3, msg="local subscriber")
        self.assertEqual([m[0] for m in lsub.messages if m[1] == b"go"], ["l/%s/cmd/1" % base])
        self.assertEqual(payloads(rsub.messages), [b"go"], "nothing local went out")

    def test_both_with_prefixes(self):
        """`topic P both Q L R` carries messages both ways, each renamed,
        each delivered once on each side."""
        remote = self.remote()
        base = unique_id("b")
        b = self.bridge(remote, ["%s/# both 1 here/ there/" % base])
        lsub = self.sub(b.port, "here/%s/#" % base)
        rsub = self.sub(remote.port, "there/%s/#" % base)
        self.wait_crossing(b.port, "here/%s/probe" % base, rsub)
        self.wait_crossing(remote.port, "there/%s/probe" % base, lsub)
        lsub.messages.clear()
        rsub.messages.clear()
        self.pub(b.port, "here/%s/up" % base, "from local", qos=1)
        self.pub(remote.port, "there/%s/down" % base, "from remote", qos=1)
        rsub.wait_for(lambda msgs: b"from local" in payloads(msgs), what="local -> remote")
        lsub.wait_for(lambda msgs: b"from remote" in payloads(msgs), what="remote -> local")
        time.sleep(QUIET)
        self.assertEqual(sorted((m[0], m[1]) for m in lsub.messages if not m[1].startswith(b"probe-")),
                         [("here/%s/down" % base, b"from remote"), ("here/%s/up" % base, b"from local")])
        self.assertEqual(sorted((m[0], m[1]) for m in rsub.messages if not m[1].startswith(b"probe-")),
                         [("there/%s/down" % base, b"from remote"), ("there/%s/up" % base, b"from local")])

    def test_empty_prefix_and_no_prefix(self):
        """`""` is an empty prefix (`topic # out 1 "" edge/` puts every local
        topic under edge/ remotely), and a topic line without prefixes keeps
        the name."""
        remote = self.remote()
        base = unique_id("e")
        b = self.bridge(remote, ['%s/# out 1 "" edge/' % base, "%s/same/# in 1" % base])
        rsub = self.sub(remote.port, "edge/%s/#" % base)
        lsub = self.sub(b.port, "%s/same/#" % base)
        self.wait_crossing(b.port, "%s/probe" % base, rsub)
        self.wait_crossing(remote.port, "%s/same/probe" % base, lsub)
        self.pub(b.port, "%s/data/1" % base, "d1", qos=1)
        self.pub(remote.port, "%s/same/2" % base, "d2", qos=1)
        rsub.wait_for(lambda msgs: b"d1" in payloads(msgs), what="the prefixed message")
        lsub.wait_for(lambda msgs: b"d2" in payloads(msgs), what="the unprefixed message")
        self.assertEqual([m[0] for m in rsub.messages if m[1] == b"d1"], ["edge/%s/data/1" % base])
        self.assertEqual([m[0] for m in lsub.messages if m[1] == b"d2"], ["%s/same/2" % base])

    def test_imported_message_does_not_go_back_out(self):
        """A message that came in through the bridge is not sent back out
        through the same bridge, even when its local topic also matches an
        `out` pattern (`topic B/# in 1` with `topic B/# out 1 "" edge/`)."""
        remote = self.remote()
        base = unique_id("nb")
        b = self.bridge(remote, ["%s/# in 1" % base, '%s/# out 1 "" edge/' % base])
        lsub = self.sub(b.port, "%s/#" % base)
        rsub = self.sub(remote.port, "edge/%s/#" % base)
        self.wait_crossing(remote.port, "%s/probe" % base, lsub, what="the bridge (in)")
        self.wait_crossing(b.port, "%s/probe" % base, rsub, what="the bridge (out)")
        rsub.messages.clear()
        self.pub(remote.port, "%s/from-remote" % base, "imported", qos=1)
        self.pub(b.port, "%s/from-local" % base, "exported", qos=1)
        lsub.wait_for(lambda msgs: b"imported" in payloads(msgs), what="the imported message")
        rsub.wait_for(lambda msgs: b"exported" in payloads(msgs), what="the exported message")
        time.sleep(QUIET)
        self.assertEqual(payloads(rsub.messages), [b"exported"],
                         "the imported message did not go back to the remote as edge/...")

    def test_single_level_wildcard_pattern(self):
        """A pattern with + forwards exactly the topics it matches."""
        remote = self.remote()
        base = unique_id("w")
        b = self.bridge(remote, ["%s/+/temp out 1 l/ r/" % base])
        rsub = self.sub(remote.port, "r/#")
        self.wait_crossing(b.port, "l/%s/probe/temp" % base, rsub)
        for t in ("a/temp", "b/temp", "a/b/temp", "a/temp/x", "temp", "a/humidity"):
            self.pub(b.port, "l/%s/%s" % (base, t), t, qos=1)
        rsub.wait_for(lambda msgs: len(payloads(msgs)) >= 2, what="the two matching messages")
        self.assert_quiet(rsub, 2, msg="remote subscriber")
        self.assertEqual(sorted(m[0] for m in rsub.messages if not m[1].startswith(b"probe-")),
                         ["r/%s/a/temp" % base, "r/%s/b/temp" % base])

    def test_qos_is_the_minimum_of_message_and_topic(self):
        """A bridged message keeps min(message QoS, topic QoS), both ways:
        QoS 2 over a QoS 1 topic arrives at QoS 1, QoS 0 stays 0, and a QoS 2
        topic carries QoS 2 (the subscribers ask for QoS 2)."""
        remote = self.remote()
        base = unique_id("q")
        b = self.bridge(remote, ["%s/q1/# both 1 l/ r/" % base, "%s/q2/# both 2 l/ r/" % base,
                                 "%s/q0/# both 0 l/ r/" % base])
        rsub = self.sub(remote.port, "r/%s/#" % base, qos=2)
        lsub = self.sub(b.port, "l/%s/#" % base, qos=2)
        for level in ("q0", "q1", "q2"):
            self.wait_crossing(b.port, "l/%s/%s/probe" % (base, level), rsub)
            self.wait_crossing(remote.port, "r/%s/%s/probe" % (base, level), lsub)
            rsub.messages.clear()
            lsub.messages.clear()
        cases = [("q1", 2, 1), ("q1", 1, 1), ("q1", 0, 0), ("q2", 2, 2), ("q2", 1, 1),
                 ("q0", 2, 0), ("q0", 1, 0)]
        for level, qos, _ in cases:
            self.pub(b.port, "l/%s/%s/out%d" % (base, level, qos), "o-%s-%d" % (level, qos), qos=qos)
            self.pub(remote.port, "r/%s/%s/in%d" % (base, level, qos), "i-%s-%d" % (level, qos), qos=qos)
        rsub.wait_for(lambda msgs: len(payloads(msgs)) >= 2 * len(cases), what="all messages remotely")
        lsub.wait_for(lambda msgs: len(payloads(msgs)) >= 2 * len(cases), what="all messages locally")
        time.sleep(0.5)
        for level, qos, want in cases:
            # Each side's subscriber also gets its own side's messages
            # directly (at their own QoS): look at the ones that crossed.
            for sub, p, where in ((rsub, "o-%s-%d" % (level, qos), "out, remote subscriber"),
                                  (lsub, "i-%s-%d" % (level, qos), "in, local subscriber")):
                got = [m[2] for m in sub.messages if m[1] == p.encode()]
                self.assertEqual(got, [want], "%s: message %s (topic QoS %s, message QoS %d)"
                                 % (where, p, level[1], qos))

    def test_retained_message_goes_out_retained(self):
        """A retained message published locally on a bridged topic is
        retained on the remote: a later subscriber there gets it with the
        retain flag; clearing it locally clears it remotely."""
        remote = self.remote()
        base = unique_id("r")
        b = self.bridge(remote, ["%s/# out 1 l/ r/" % base])
        probe_sub = self.sub(remote.port, "r/%s/probe" % base)
        self.wait_crossing(b.port, "l/%s/probe" % base, probe_sub)
        self.pub(b.port, "l/%s/status" % base, "online", qos=1, retain=True)
        wait_for(lambda: self.retained(remote.port, "r/%s/status" % base, timeout=0.5) == (b"online", True),
                 timeout=BRIDGE_TIMEOUT, what="the retained message on the remote")
        self.pub(b.port, "l/%s/status" % base, "", qos=1, retain=True)
        wait_for(lambda: self.retained(remote.port, "r/%s/status" % base, timeout=0.5) is None,
                 timeout=BRIDGE_TIMEOUT, what="the retained message to be cleared on the remote")

    def test_remote_retained_messages_come_in_retained(self):
        """A message retained on the remote before the bridge starts comes in
        when the bridge subscribes, and is retained locally."""
        remote = self.remote()
        base = unique_id("ri")
        self.pub(remote.port, "r/%s/config" % base, "v1", qos=1, retain=True)
        b = self.bridge(remote, ["%s/# in 1 l/ r/" % base])
        wait_for(lambda: self.retained(b.port, "l/%s/config" % base, timeout=0.5) == (b"v1", True),
                 timeout=BRIDGE_TIMEOUT, what="the remote's retained message, retained locally")

    def test_qos2_stream_arrives_once_in_order(self):
        """20 QoS 2 messages through a QoS 2 topic reach a QoS 2 subscriber
        on the remote exactly once each, in order."""
        remote = self.remote()
        base = unique_id("s2")
        b = self.bridge(remote, ["%s/# out 2 l/ r/" % base])
        rsub = self.sub(remote.port, "r/%s/#" % base, qos=2)
        self.wait_crossing(b.port, "l/%s/probe" % base, rsub)
        sent = [("m%02d" % i).encode() for i in range(20)]
        for p in sent:
            self.pub(b.port, "l/%s/data" % base, p, qos=2)
        rsub.wait_for(lambda msgs: len(payloads(msgs)) >= 20, what="20 messages")
        self.assert_quiet(rsub, 20, seconds=0.5, msg="remote subscriber")
        self.assertEqual(payloads(rsub.messages), sent)
        self.assertEqual({m[2] for m in rsub.messages if not m[1].startswith(b"probe-")}, {2})

    def test_two_bridges_in_one_broker(self):
        """Two `connection` sections to two remotes: each remote gets only
        its own topics."""
        r1, r2 = self.remote(), self.remote()
        base = unique_id("two")
        s1 = self.bridge_spec(r1, ["%s/one/# out 1" % base])
        s2 = self.bridge_spec(r2, ["%s/two/# out 1" % base])
        b = self.bridging_broker([s1, s2])
        sub1 = self.sub(r1.port, "%s/#" % base)
        sub2 = self.sub(r2.port, "%s/#" % base)
        self.wait_crossing(b.port, "%s/one/probe" % base, sub1)
        self.wait_crossing(b.port, "%s/two/probe" % base, sub2)
        self.pub(b.port, "%s/one/x" % base, "to one", qos=1)
        self.pub(b.port, "%s/two/x" % base, "to two", qos=1)
        sub1.wait_for(lambda msgs: b"to one" in payloads(msgs), what="remote 1's message")
        sub2.wait_for(lambda msgs: b"to two" in payloads(msgs), what="remote 2's message")
        time.sleep(QUIET)
        self.assertEqual(payloads(sub1.messages), [b"to one"])
        self.assertEqual(payloads(sub2.messages), [b"to two"])


class TopicMappingToMosquitto(TopicMapping):
    """The same, with Debian's mosquitto as the remote."""
    remote_kind = "mosquitto"


# ---------------------------------------------------------------- no echo

class NoEcho(BridgeCase):
    """Two brokers bridged both ways on the same topic names: every message
    reaches each side exactly once (no echo back through the bridge, no loop)."""

    def pair(self, **options):
        remote = self.remote()
        base = unique_id("pair")
        b = self.bridge(remote, ["%s/# both 1" % base], **options)
        asub = self.sub(b.port, "%s/#" % base)
        bsub = self.sub(remote.port, "%s/#" % base)
        self.wait_crossing(b.port, "%s/probe-a" % base, bsub, what="the bridge (local -> remote)")
        self.wait_crossing(remote.port, "%s/probe-b" % base, asub, what="the bridge (remote -> local)")
        time.sleep(0.5)  # let echoes of the probes, if any, come and go
        for side, port, sub in (("local", b.port, asub), ("remote", remote.port, bsub)):
            asub.messages.clear()
            bsub.messages.clear()
            self.pub(port, "%s/from-%s" % (base, side), "hello from " + side, qos=1)
            want = ("hello from " + side).encode()
            asub.wait_for(lambda msgs: want in payloads(msgs), what="the message on the local side")
            bsub.wait_for(lambda msgs: want in payloads(msgs), what="the message on the remote side")
            time.sleep(QUIET)
            self.assertEqual(payloads(asub.messages), [want],
                             "published on the %s side: the local subscriber gets it once" % side)
            self.assertEqual(payloads(bsub.messages), [want],
                             "published on the %s side: the remote subscriber gets it once" % side)

    def test_mqtt311_with_try_private(self):
        """MQTT 3.1.1 with try_private true: the remote knows the connection is
        a bridge and does not send the bridge's own messages back."""
        self.pair(try_private=True)

    def test_mqtt5_no_local(self):
        """bridge_protocol_version mqttv50 (try_private false): the bridge
        subscribes on the remote with no-local, so nothing comes back."""
        self.pair(bridge_protocol_version="mqttv50", try_private=False)

    def test_mqtt5_with_try_private(self):
        """bridge_protocol_version mqttv50 with try_private true (the default)."""
        self.pair(bridge_protocol_version="mqttv50")


class NoEchoToMosquitto(NoEcho):
    """The same, with Debian's mosquitto as the remote."""
    remote_kind = "mosquitto"


# ---------------------------------------------------------------- connection state

class Reconnection(BridgeCase):
    """Notifications, reconnection and queueing while the remote goes away
    and comes back on the same port."""

    def test_notifications_follow_the_connection(self):
        """The local broker keeps a retained state on
        $SYS/broker/connection/<remote_clientid>/state: "1" while the bridge
        is connected, "0" once the remote stops, "1" again after the remote
        restarts on the same port (the bridge reconnects by itself)."""
        remote = self.remote()
        b = self.bridge(remote, ["%s/# out 1" % unique_id("n")])
        watcher = self.sub(b.port, state_topic(self.clientid))
        self.wait_state(watcher, "1")
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"1", True))
        remote.stop()
        self.wait_state(watcher, "0")
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"0", True))
        remote.start()
        self.wait_state(watcher, "1")
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"1", True))

    def test_traffic_resumes_after_remote_restart(self):
        """After the remote restarts, both directions carry messages again
        (the bridge subscribes again on the new remote)."""
        remote = self.remote()
        base = unique_id("rs")
        b = self.bridge(remote, ["%s/out/# out 1 l/ r/" % base, "%s/in/# in 1 l/ r/" % base])
        lsub = self.sub(b.port, "l/%s/in/#" % base)
        rsub = self.sub(remote.port, "r/%s/out/#" % base)
        self.wait_crossing(b.port, "l/%s/out/probe" % base, rsub)
        self.wait_crossing(remote.port, "r/%s/in/probe" % base, lsub)
        remote.restart()
        self.forget_publisher(remote.port)
        rsub = self.sub(remote.port, "r/%s/out/#" % base)
        self.wait_crossing(b.port, "l/%s/out/probe" % base, rsub, what="the reconnected bridge (out)")
        self.wait_crossing(remote.port, "r/%s/in/probe" % base, lsub, what="the reconnected bridge (in)")

    def test_qos1_queued_while_remote_is_down(self):
        """A QoS 1 message published locally while the remote is down is kept
        (cleansession false) and delivered once the bridge reconnects: a
        persistent subscriber on the remote (subscribed before; the remote
        keeps its session across the restart) receives them, once each, in
        order."""
        remote = self.remote(persistent=True)
        base = unique_id("qd")
        b = self.bridge(remote, ["%s/# out 1 l/ r/" % base], cleansession=False)
        watcher = self.sub(b.port, state_topic(self.clientid))
        sub_id = unique_id("persub")
        rsub = PahoClient(remote.port, sub_id, clean_session=False)
        self.addCleanup(rsub.close)
        rsub.subscribe("r/%s/#" % base, 1)
        self.wait_crossing(b.port, "l/%s/probe" % base, rsub)
        rsub.disconnect()
        remote.stop()
        self.wait_state(watcher, "0")
        self.pub(b.port, "l/%s/data" % base, "queued-1", qos=1)
        self.pub(b.port, "l/%s/data" % base, "queued-2", qos=1)
        remote.start()
        self.wait_state(watcher, "1")
        rsub = PahoClient(remote.port, sub_id, clean_session=False)
        self.addCleanup(rsub.close)
        self.assertTrue(rsub.session_present, "the remote kept the subscriber's session")
        rsub.wait_for(lambda msgs: b"queued-2" in payloads(msgs), timeout=BRIDGE_TIMEOUT,
                      what="the queued messages")
        self.assert_quiet(rsub, 2, seconds=QUIET, msg="persistent subscriber")
        self.assertEqual(payloads(rsub.messages), [b"queued-1", b"queued-2"])
        self.assertEqual({m[2] for m in rsub.messages}, {1})

    def test_unreachable_remote_leaves_local_broker_serving(self):
        """With nothing listening at the bridge's address, the local broker
        serves its own clients as usual and its state topic says "0"."""
        dead = free_port()
        b = self.bridge(dead, ["%s/# both 1" % unique_id("u")])
        with self.witness(b.port).around():
            time.sleep(2)
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"0", True))
        self.assertTrue(b.alive())

    def test_second_address_when_first_is_down(self):
        """`address A B`: when nothing listens on A, the bridge connects to B."""
        remote = self.remote()
        base = unique_id("fo")
        b = self.bridge([free_port(), remote.port], ["%s/# out 1" % base])
        rsub = self.sub(remote.port, "%s/#" % base)
        self.wait_crossing(b.port, "%s/probe" % base, rsub, timeout=30)

    def test_start_type_once_never_reconnects(self):
        """start_type once: the bridge connects at start and carries messages;
        after the remote goes away it stays down ("0") even though the remote
        comes back on the same port."""
        if is_mosquitto():
            self.skipTest("mosquitto 2.0.11 never connects a start_type once bridge (it stops "
                          "after 'Connecting bridge (step 1)')")
        remote = self.remote()
        base = unique_id("once")
        b = self.bridge(remote, ["%s/# out 1" % base], start_type="once")
        watcher = self.sub(b.port, state_topic(self.clientid))
        rsub = self.sub(remote.port, "%s/#" % base)
        self.wait_crossing(b.port, "%s/probe" % base, rsub)
        self.wait_state(watcher, "1")
        remote.restart()
        self.wait_state(watcher, "0")
        rsub = self.sub(remote.port, "%s/#" % base)
        time.sleep(5)  # restart_timeout is 1: an automatic bridge would be back by now
        self.pub(b.port, "%s/after" % base, "after restart", qos=0)
        self.assert_quiet(rsub, 0, msg="remote subscriber after the restart")
        self.assertEqual(watcher.messages[-1][1], b"0")
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"0", True))

    def lazy_bridge(self, idle_timeout):
        remote = self.remote()
        base = unique_id("lazy")
        b = self.bridge(remote, ["%s/# out 1 l/ r/" % base], start_type="lazy", threshold=2,
                        idle_timeout=idle_timeout)
        return remote, base, b

    def test_lazy_start_at_threshold(self):
        """start_type lazy, threshold 2: the bridge does not connect at start
        (state "0", retained); one queued QoS 1 message does not start it; the
        second does, and both are delivered, in order."""
        remote, base, b = self.lazy_bridge(idle_timeout=60)
        watcher = self.sub(b.port, state_topic(self.clientid))
        rsub = self.sub(remote.port, "r/%s/#" % base)
        time.sleep(2)
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"0", True))
        self.pub(b.port, "l/%s/data" % base, "lazy-1", qos=1)
        time.sleep(2)
        self.assertEqual(payloads(rsub.messages), [], "one message is below the threshold")
        self.assertNotEqual(watcher.messages[-1][1] if watcher.messages else b"0", b"1")
        self.pub(b.port, "l/%s/data" % base, "lazy-2", qos=1)
        rsub.wait_for(lambda msgs: len(payloads(msgs)) >= 2, timeout=BRIDGE_TIMEOUT,
                      what="the queued messages once the threshold is reached")
        self.wait_state(watcher, "1")
        self.assertEqual(payloads(rsub.messages), [b"lazy-1", b"lazy-2"])

    def test_lazy_stops_when_idle(self):
        """start_type lazy with idle_timeout 2: once started, the bridge
        disconnects after 2 s without messages (state "0"), and starts again
        when the threshold is reached again."""
        if is_mosquitto():
            self.skipTest("mosquitto 2.0.11 never disconnects an idle lazy bridge while "
                          "keepalive_interval is set (PINGREQs count as traffic)")
        remote, base, b = self.lazy_bridge(idle_timeout=2)
        watcher = self.sub(b.port, state_topic(self.clientid))
        rsub = self.sub(remote.port, "r/%s/#" % base)
        self.pub(b.port, "l/%s/data" % base, "lazy-1", qos=1)
        self.pub(b.port, "l/%s/data" % base, "lazy-2", qos=1)
        rsub.wait_for(lambda msgs: len(payloads(msgs)) >= 2, timeout=BRIDGE_TIMEOUT, what="2 messages")
        # It may be idle again by now: look for the "1" anywhere, then for the "0" after it.
        watcher.wait_for(lambda msgs: b"1" in [m[1] for m in msgs], what='state "1"')
        watcher.wait_for(lambda msgs: b"0" in [m[1] for m in msgs[[m[1] for m in msgs].index(b"1"):]],
                         timeout=12, what='state "0": the idle bridge disconnects')
        self.pub(b.port, "l/%s/data" % base, "lazy-3", qos=1)
        self.pub(b.port, "l/%s/data" % base, "lazy-4", qos=1)
        rsub.wait_for(lambda msgs: len(payloads(msgs)) >= 4, timeout=BRIDGE_TIMEOUT,
                      what="2 more messages after the second start")
        self.assertEqual(payloads(rsub.messages), [b"lazy-1", b"lazy-2", b"lazy-3", b"lazy-4"])


class ReconnectionToMosquitto(Reconnection):
    """The same, with Debian's mosquitto as the remote."""
    remote_kind = "mosquitto"


class Notifications(BridgeCase):
    """The state message on the remote broker and the notification options."""

    def test_remote_sees_state_and_will_on_kill(self):
        """The remote gets a retained "1" on the state topic when the bridge
        connects, and a retained "0" (the bridge's will) when the bridging
        broker dies without closing the connection (kill -9)."""
        remote = self.remote()
        b = self.bridge(remote, ["%s/# out 1" % unique_id("k")])
        rwatch = self.sub(remote.port, state_topic(self.clientid))
        self.wait_state(rwatch, "1", what="state on the remote")
        self.assertEqual(self.retained(remote.port, state_topic(self.clientid)), (b"1", True))
        self.kill(b)
        self.wait_state(rwatch, "0", what="state on the remote after kill -9")
        self.assertEqual(self.retained(remote.port, state_topic(self.clientid)), (b"0", True))

    def test_state_messages_are_qos1(self):
        """Like mosquitto, the bridge publishes its state at QoS 1 (retained)
        on both sides, and its will is QoS 1: subscribers asking for QoS 2
        get "1" at QoS 1 locally and remotely, and the will's "0" at QoS 1."""
        remote = self.remote()
        b = self.bridge(remote, ["%s/# out 1" % unique_id("q1")])
        lwatch = self.sub(b.port, state_topic(self.clientid), qos=2)
        rwatch = self.sub(remote.port, state_topic(self.clientid), qos=2)
        self.wait_state(lwatch, "1", what="local state")
        self.wait_state(rwatch, "1", what="remote state")
        # QoS 1 either way; retained: a watcher that came before the state gets it live
        # (retain 0), so a fresh subscription checks the retained copy.
        self.assertEqual(lwatch.messages[-1][2], 1, "local state: QoS")
        self.assertEqual(rwatch.messages[-1][2], 1, "remote state: QoS")
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"1", True))
        self.assertEqual(self.retained(remote.port, state_topic(self.clientid)), (b"1", True))
        self.kill(b)
        self.wait_state(rwatch, "0", what="remote state after kill -9")
        self.assertEqual(rwatch.messages[-1][2], 1, "QoS of the will")

    def test_default_remote_clientid(self):
        """Without remote_clientid the bridge's client id on the remote is
        <hostname>.<connection name>, as the state topic shows on both sides."""
        remote = self.remote()
        b = self.bridge(remote, ["%s/# out 1" % unique_id("id")], remote_clientid=None)
        topic = state_topic("%s.%s" % (socket.gethostname(), self.connection))
        lwatch = self.sub(b.port, topic)
        rwatch = self.sub(remote.port, topic)
        self.wait_state(lwatch, "1", what="local state on %s" % topic)
        self.wait_state(rwatch, "1", what="remote state on %s" % topic)

    def test_remote_sees_zero_on_clean_stop(self):
        """Stopping the bridging broker (SIGTERM) also leaves a retained "0"
        on the remote (mosquitto closes the bridge without DISCONNECT, so the
        will goes out)."""
        remote = self.remote()
        b = self.bridge(remote, ["%s/# out 1" % unique_id("st")])
        rwatch = self.sub(remote.port, state_topic(self.clientid))
        self.wait_state(rwatch, "1", what="state on the remote")
        _stop_checked(b)
        b.killed = True  # stopped already
        self.wait_state(rwatch, "0", what="state on the remote after SIGTERM")
        self.assertEqual(self.retained(remote.port, state_topic(self.clientid)), (b"0", True))

    def test_notifications_local_only(self):
        """notifications_local_only true: the local broker has the state
        topic, the remote gets nothing on it (no "1", no will)."""
        remote = self.remote()
        base = unique_id("lo")
        b = self.bridge(remote, ["%s/# out 1" % base], notifications_local_only=True)
        rwatch = self.sub(remote.port, "$SYS/broker/connection/#")
        rsub = self.sub(remote.port, "%s/#" % base)
        self.wait_crossing(b.port, "%s/probe" % base, rsub)
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"1", True))
        self.kill(b)
        time.sleep(QUIET)
        self.assertEqual(rwatch.messages, [], "the remote got no state message")

    def test_notification_topic(self):
        """notification_topic replaces the default topic on both sides."""
        remote = self.remote()
        topic = "edge/%s/bridge-state" % unique_id("nt")
        b = self.bridge(remote, ["%s/# out 1" % unique_id("nt")], notification_topic=topic)
        lwatch = self.sub(b.port, [topic, "$SYS/broker/connection/#"])
        rwatch = self.sub(remote.port, [topic, "$SYS/broker/connection/#"])
        self.wait_state(lwatch, "1", what="state on the local broker")
        self.wait_state(rwatch, "1", what="state on the remote")
        self.assertEqual({m[0] for m in lwatch.messages}, {topic})
        self.assertEqual({m[0] for m in rwatch.messages}, {topic})
        self.kill(b)
        self.wait_state(rwatch, "0", what="state on the remote after kill -9")
        self.assertEqual(self.retained(remote.port, topic), (b"0", True))

    def test_notifications_off(self):
        """notifications false: no state message on either side."""
        remote = self.remote()
        base = unique_id("off")
        b = self.bridge(remote, ["%s/# out 1" % base], notifications=False)
        lwatch = self.sub(b.port, "$SYS/broker/connection/#")
        rwatch = self.sub(remote.port, "$SYS/broker/connection/#")
        rsub = self.sub(remote.port, "%s/#" % base)
        self.wait_crossing(b.port, "%s/probe" % base, rsub)
        self.kill(b)
        time.sleep(QUIET)
        self.assertEqual(lwatch.messages, [], "no local state message")
        self.assertEqual(rwatch.messages, [], "no remote state message")


class NotificationsToMosquitto(Notifications):
    """The same, with Debian's mosquitto as the remote."""
    remote_kind = "mosquitto"


# ---------------------------------------------------------------- credentials

class Credentials(BridgeCase):
    """remote_username / remote_password against a remote with a password file."""

    def secured_remote(self, password="right"):
        """A remote with users edge (the bridge's, with this password) and
        watcher (the test's subscribers: kept when edge's password changes,
        as mosquitto drops clients whose credentials a reload invalidates)."""
        self.pwfile = make_password_file(os.path.join(self.tmp, "passwd"),
                                         {"edge": password, "watcher": "watch"})
        return self.remote(options={"allow_anonymous": False, "password_file": self.pwfile})

    def test_right_password_carries_traffic(self):
        """With the right credentials the bridge logs in and forwards."""
        remote = self.secured_remote()
        base = unique_id("pw")
        b = self.bridge(remote, ["%s/# out 1" % base], remote_username="edge", remote_password="right")
        rsub = self.sub(remote.port, "%s/#" % base, username="watcher", password="watch")
        self.wait_crossing(b.port, "%s/probe" % base, rsub)

    def test_wrong_password_carries_nothing(self):
        """With a wrong password the remote refuses the bridge: nothing
        published locally arrives remotely, the local state stays "0", and
        the local broker keeps serving its own clients."""
        remote = self.secured_remote()
        base = unique_id("bad")
        b = self.bridge(remote, ["%s/# out 1" % base], remote_username="edge", remote_password="wrong")
        rsub = self.sub(remote.port, "%s/#" % base, username="watcher", password="watch")
        with self.witness(b.port).around():
            for i in range(6):
                self.pub(b.port, "%s/x" % base, "m%d" % i, qos=1)
                time.sleep(0.5)
        self.assert_quiet(rsub, 0, msg="remote subscriber")
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"0", True))
        self.assertTrue(b.alive())

    def test_refused_bridge_retries(self):
        """A refused bridge keeps trying: once the remote's password file
        accepts its password (SIGHUP), it connects and delivers the QoS 1
        messages queued meanwhile."""
        remote = self.secured_remote(password="old")
        base = unique_id("retry")
        b = self.bridge(remote, ["%s/# out 1" % base], remote_username="edge", remote_password="new")
        rsub = self.sub(remote.port, "%s/#" % base, username="watcher", password="watch")
        self.pub(b.port, "%s/x" % base, "queued while refused", qos=1)
        time.sleep(1)
        os.unlink(self.pwfile)
        make_password_file(self.pwfile, {"edge": "new", "watcher": "watch"})
        remote.signal(signal.SIGHUP)
        rsub.wait_for(lambda msgs: b"queued while refused" in payloads(msgs), timeout=BRIDGE_TIMEOUT,
                      what="the message after the remote accepted the bridge")


class CredentialsToMosquitto(Credentials):
    """The same, with Debian's mosquitto as the remote."""
    remote_kind = "mosquitto"


# ---------------------------------------------------------------- TLS

class TLSBridge(BridgeCase):
    """Bridges over TLS (certificates from scripts/gen-test-certs.sh: the
    server certificate names localhost and 127.0.0.1; wrongname.crt names
    wrong.invalid only)."""

    def tls_remote(self, cert="server", **extra):
        listener = {"cafile": CERTS.ca, "certfile": CERTS.path(cert + ".crt"),
                    "keyfile": CERTS.path(cert + ".key")}
        listener.update(extra)
        return self.remote(listener=listener)

    def crosses(self, remote, **options):
        base = unique_id("tls")
        b = self.bridge(remote, ["%s/out/# out 1" % base, "%s/in/# in 1" % base], **options)
        rsub = self.sub_tls(remote, "%s/out/#" % base)
        lsub = self.sub(b.port, "%s/in/#" % base)
        self.wait_crossing(b.port, "%s/out/probe" % base, rsub)
        rpub = self.pub_tls_client(remote)
        deadline = time.monotonic() + BRIDGE_TIMEOUT
        while not lsub.messages and time.monotonic() < deadline:
            rpub.publish("%s/in/x" % base, "in over tls", qos=1)
            time.sleep(0.3)
        lsub.wait_for(lambda msgs: b"in over tls" in payloads(msgs), timeout=1, what="in over TLS")
        return b

    def never_crosses(self, remote, **options):
        base = unique_id("tlsno")
        b = self.bridge(remote, ["%s/# out 1" % base], **options)
        rsub = self.sub_tls(remote, "%s/#" % base)
        for i in range(6):
            self.pub(b.port, "%s/x" % base, "m%d" % i, qos=1)
            time.sleep(0.5)
        self.assert_quiet(rsub, 0, msg="remote subscriber")
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"0", True))
        with self.witness(b.port).around():
            pass

    def tls_client(self, remote):
        c = PahoTransportClient(remote.port, unique_id("tlsc"), insecure=True,
                                tls={"ca_certs": CERTS.ca, "certfile": CERTS.client("bridge")[0],
                                     "keyfile": CERTS.client("bridge")[1]})
        self.addCleanup(c.close)
        return c

    def sub_tls(self, remote, topic):
        c = self.tls_client(remote)
        c.subscribe(topic, 1)
        return c

    def pub_tls_client(self, remote):
        return self.tls_client(remote)

    def test_bridge_cafile(self):
        """bridge_cafile with the CA of the remote's certificate: the bridge
        verifies it (name 127.0.0.1 included) and carries messages both ways."""
        self.crosses(self.tls_remote(), bridge_cafile=CERTS.ca)

    def test_client_certificate(self):
        """bridge_certfile / bridge_keyfile: the bridge presents a client
        certificate to a listener with require_certificate true."""
        remote = self.tls_remote(require_certificate=True)
        crt, key = CERTS.client("bridge")
        self.crosses(remote, bridge_cafile=CERTS.ca, bridge_certfile=crt, bridge_keyfile=key)

    def test_wrong_name_is_refused(self):
        """A remote certificate that does not name 127.0.0.1: the bridge
        refuses it (nothing crosses, state "0"), the local broker is fine."""
        self.never_crosses(self.tls_remote(cert="wrongname"), bridge_cafile=CERTS.ca)

    def test_wrong_name_with_bridge_insecure(self):
        """bridge_insecure true skips the name check (the chain is still checked)."""
        self.crosses(self.tls_remote(cert="wrongname"), bridge_cafile=CERTS.ca, bridge_insecure=True)

    def test_unknown_ca_is_refused(self):
        """A bridge that trusts another CA refuses the remote's certificate."""
        self.never_crosses(self.tls_remote(), bridge_cafile=CERTS.path("other-ca.crt"))


    # PSK ---------------------------------------------------------------------
    def psk_remote(self):
        """A remote with a TLS-PSK listener; identities edge (the bridge's)
        and watcher (the test's mosquitto_sub)."""
        psk = self.file("psk", "edge:%s\nwatcher:%s\n" % (PSK_KEY, WATCHER_KEY))
        return self.remote(options={"psk_file": psk}, listener={"psk_hint": "remote-hint"})

    def file(self, name, text):
        return write_file(self.tmp, name, text)

    def psk_watcher(self, remote, topic):
        sub = MosquittoSub(remote.port, [topic], qos=1,
                           args=["--psk", WATCHER_KEY, "--psk-identity", "watcher"])
        self.addCleanup(sub.stop)
        return sub

    def test_psk(self):
        """bridge_identity + bridge_psk: the bridge connects to a TLS-PSK
        listener and carries messages."""
        remote = self.psk_remote()
        base = unique_id("psk")
        b = self.bridge(remote, ["%s/# out 1" % base], bridge_identity="edge", bridge_psk=PSK_KEY)
        sub = self.psk_watcher(remote, "%s/#" % base)
        deadline = time.monotonic() + BRIDGE_TIMEOUT
        while not sub.messages and time.monotonic() < deadline:
            self.pub(b.port, "%s/x" % base, "over psk", qos=1)
            time.sleep(0.3)
        self.assertIn((("%s/x" % base), b"over psk", 1, False), sub.wait_messages(1, timeout=1))

    def test_wrong_psk_is_refused(self):
        """A bridge with the wrong key for its identity never gets through."""
        remote = self.psk_remote()
        base = unique_id("pskno")
        b = self.bridge(remote, ["%s/# out 1" % base], bridge_identity="edge",
                        bridge_psk="0123456789abcdef0123456789abcdef")
        sub = self.psk_watcher(remote, "%s/#" % base)
        for i in range(6):
            self.pub(b.port, "%s/x" % base, "m%d" % i, qos=1)
            time.sleep(0.5)
        time.sleep(QUIET)
        self.assertEqual(sub.messages, [])
        self.assertEqual(self.retained(b.port, state_topic(self.clientid)), (b"0", True))

class TLSBridgeToMosquitto(TLSBridge):
    """The same, with Debian's mosquitto as the remote."""
    remote_kind = "mosquitto"


# ---------------------------------------------------------------- YAML

class YamlBridge(BridgeCase):
    """midge's own YAML form of a bridge."""

    def test_yaml_bridge(self):
        """A bridge in midge.yaml (bridges: with a topic in mosquitto syntax and
        one as a mapping, notification_topic): out with prefixes, in without,
        and the state message on both sides."""
        if is_mosquitto():
            self.skipTest("midge-only: mosquitto reads no YAML configuration")
        remote = self.remote()
        base = unique_id("y")
        port = free_port()
        state = "edge/%s/state" % base
        yaml = "\n".join([
            "user: root",
            "allow_anonymous: true",
            "listeners:",
            "  - port: %d" % port,
            "    bind_address: 127.0.0.1",
            "bridges:",
            "  - name: up",
            '    addresses: ["127.0.0.1:%d"]' % remote.port,
            "    topics:",
            '      - "%s/sensors/# out 1 local/ remote/"' % base,
            '      - {pattern: "%s/cmd/#", direction: in, qos: 1, local_prefix: "", remote_prefix: ""}' % base,
            "    remote_clientid: %s" % unique_id("yb"),
            "    cleansession: false",
            "    keepalive_interval: 5",
            "    start_type: automatic",
            '    restart_timeout: "1 5"',
            "    notifications: true",
            '    notification_topic: "%s"' % state,
            "    try_private: true",
            "    bridge_protocol_version: mqttv311",
            ""])
        b = Broker(raw_config=yaml, config_name="bridge.yaml")
        self.addCleanup(_stop_checked, b)
        self.logs.append(("bridging broker on port %d" % port, b.log))
        self.assertEqual(b.port, port)
        lwatch = self.sub(b.port, state)
        rwatch = self.sub(remote.port, state)
        self.wait_state(lwatch, "1", what="local state")
        self.wait_state(rwatch, "1", what="remote state")
        rsub = self.sub(remote.port, "remote/%s/sensors/#" % base)
        lsub = self.sub(b.port, "%s/cmd/#" % base)
        self.wait_crossing(b.port, "local/%s/sensors/probe" % base, rsub)
        self.wait_crossing(remote.port, "%s/cmd/probe" % base, lsub)
        self.pub(b.port, "local/%s/sensors/t1" % base, "21.5", qos=1)
        self.pub(remote.port, "%s/cmd/reboot" % base, "now", qos=1)
        rsub.wait_for(lambda msgs: b"21.5" in payloads(msgs), what="out")
        lsub.wait_for(lambda msgs: b"now" in payloads(msgs), what="in")
        self.assertEqual([m[0] for m in rsub.messages if m[1] == b"21.5"],
                         ["remote/%s/sensors/t1" % base])
        self.assertEqual([m[0] for m in lsub.messages if m[1] == b"now"], ["%s/cmd/reboot" % base])


if __name__ == "__main__":
    main()
