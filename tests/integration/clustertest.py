"""Shared harness of the cluster tests (test_33 and later): three nats-servers
routed into one NATS cluster with JetStream, and three midge nodes joined to
it, all on free loopback ports, driven by real paho-mqtt clients.

ClusterCase starts the whole set once per test class. A class may add YAML to
every node (NODE_EXTRA, top level) or to their cluster section
(CLUSTER_EXTRA), and kill or restart a node (kill_node, start_node) or a
nats-server (NatsServer.kill/start). Skips cleanly when nats-server is
missing or midge was built without NATS (scripts/test installs both).
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from midgetest import (MIDGE_BIN, Broker, PahoClient, _stop_checked, free_port,
                       is_mosquitto, unique_id, wait_for)
from natsreq import NatsError, js_api

NATS_BIN = shutil.which("nats-server") or "/usr/sbin/nats-server"
SETTLE = 0.6  # seconds to wait for a copy that must not come
NODE_NAMES = ("node-a", "node-b", "node-c")


def stable_port():
    """A free loopback port below the kernel's ephemeral range: a nats-server
    restarted on it cannot find it taken by the source port of some outgoing
    connection (a route reconnecting to it), as a port from free_port() can."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    top = max(low, 2048)
    for _ in range(200):
        port = random.randrange(max(1024, top - 12000), top)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    return free_port()


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class NatsServer:
    """One nats-server of a three-server NATS cluster (routes to the others),
    with JetStream storing under its own directory (kept across restarts)."""

    def __init__(self, name, tmpdir, port, cport, mport, route_ports):
        self.name, self.tmpdir = name, tmpdir
        self.port, self.cport, self.mport, self.route_ports = port, cport, mport, route_ports
        self.store_dir = os.path.join(tmpdir, name + "-js")
        self.proc = None
        self.log = None

    def start(self):
        routes = ",".join("nats://127.0.0.1:%d" % p for p in self.route_ports)
        cmd = [NATS_BIN, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.mport),
               "-n", self.name, "--cluster_name", "midgetest",
               "--cluster", "nats://127.0.0.1:%d" % self.cport, "--routes", routes,
               "-js", "-sd", self.store_dir]
        self.log = open(os.path.join(self.tmpdir, self.name + ".log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port) and port_open(self.mport) or self.proc.poll() is not None,
                 timeout=10, what="nats-server %s to listen" % self.name)
        if self.proc.poll() is not None:
            raise AssertionError("nats-server %s exited: %s" % (self.name, self.read_log()))

    def read_log(self):
        with open(os.path.join(self.tmpdir, self.name + ".log"), "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def monitor(self, what):
        with urllib.request.urlopen("http://127.0.0.1:%d/%s" % (self.mport, what), timeout=5) as r:
            return json.loads(r.read())

    def routes(self):
        try:
            return self.monitor("routez").get("num_routes", 0)
        except OSError:
            return 0

    def jetstream_leader(self):
        """The JetStream meta leader this server knows of ('' while electing)."""
        try:
            return (self.monitor("jsz").get("meta_cluster") or {}).get("leader") or ""
        except OSError:
            return ""

    def client_names(self):
        try:
            return [c.get("name") for c in self.monitor("connz").get("connections", [])]
        except OSError:
            return []

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def node_config(name, nats_ports, node_extra="", cluster_extra=""):
    servers = ", ".join("nats://127.0.0.1:%d" % p for p in nats_ports)
    return ("user: root\npersistence: false\nsys_interval: 1\n"
            "listeners:\n"
            "  - port: 0\n    bind_address: 127.0.0.1\n    allow_anonymous: true\n"
            "  - port: 0\n    bind_address: 127.0.0.1\n    protocol: http\n"
            + node_extra +
            "cluster:\n"
            "  node_name: %s\n"
            "  nats_servers: [%s]\n" % (name, servers) + cluster_extra)


def built_with_nats():
    tmp = tempfile.mkdtemp(prefix="midgetest-")
    try:
        path = os.path.join(tmp, "c.yaml")
        with open(path, "w") as f:
            f.write(node_config("probe", [4222]))
        out = subprocess.run([MIDGE_BIN, "-t", "-c", path], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=20).stdout.decode()
        return "without NATS support" not in out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipIf(is_mosquitto(), "midge clusters only")
class ClusterCase(unittest.TestCase):
    """Three nats-servers and three midge nodes for the whole class."""
    NODE_EXTRA = ""      # YAML added at every node's top level
    CLUSTER_EXTRA = ""   # YAML added to every node's cluster section (indented two spaces)
    nats = []
    nodes = []

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(NATS_BIN):
            raise unittest.SkipTest("nats-server is not installed (apt-get install nats-server)")
        if not built_with_nats():
            raise unittest.SkipTest("midge was built without NATS (install libnats-dev, configure)")
        cls.tmpdir = tempfile.mkdtemp(prefix="midgetest-nats-")
        ports = []
        while len(ports) < 3:
            trio = (stable_port(), stable_port(), stable_port())
            if len(set(trio) | {p for t in ports for p in t}) == 3 * (len(ports) + 1):
                ports.append(trio)
        cls.nats = []
        for i, (p, cp, mp) in enumerate(ports):
            others = [ports[j][1] for j in range(3) if j != i]
            cls.nats.append(NatsServer("nats%d" % i, cls.tmpdir, p, cp, mp, others))
        cls.nodes = [None, None, None]
        try:
            for n in cls.nats:
                n.start()
            cls.wait_nats_cluster()
            for i in range(3):
                cls.start_node(i, wait=False)
            for b in cls.nodes:
                b.wait_log(r"Cluster: node \S+ connected to NATS", timeout=10)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_node(cls, i, wait=True):
        """Starts node i (again), its own nats-server listed first; new ports."""
        order = [cls.nats[(i + k) % 3].port for k in range(3)]
        b = Broker(raw_config=node_config(NODE_NAMES[i], order, cls.NODE_EXTRA, cls.CLUSTER_EXTRA),
                   config_name="node.yaml")
        cls.nodes[i] = b
        wait_for(lambda: len(b._listen_ports()) >= 2, timeout=10, what="two listeners")
        b.mqtt_port, b.http_port = b._listen_ports()[:2]
        if wait:
            b.wait_log(r"Cluster: node \S+ connected to NATS", timeout=10)
        return b

    @classmethod
    def kill_node(cls, i):
        """kill -9 of node i: no goodbye to NATS or its clients."""
        b = cls.nodes[i]
        b.signal(signal.SIGKILL)
        b.proc.wait(timeout=10)
        b.stop()
        cls.nodes[i] = None

    @classmethod
    def tearDownClass(cls):
        errors = []
        for b in cls.nodes:
            if b is None:
                continue
            try:
                _stop_checked(b)
            except AssertionError as e:
                errors.append(str(e))
        cls.nodes = []
        for n in cls.nats:
            n.kill()
        if getattr(cls, "tmpdir", None):
            shutil.rmtree(cls.tmpdir, ignore_errors=True)
        if errors:
            raise AssertionError("\n".join(errors))

    @classmethod
    def wait_nats_cluster(cls, timeout=30):
        """Until the live nats-servers route to each other and agree on a JetStream leader."""
        live = [n for n in cls.nats if n.alive()]
        wait_for(lambda: all(n.routes() >= len(live) - 1 for n in live), timeout=timeout,
                 what="the nats-servers to route to each other")
        wait_for(lambda: len({n.jetstream_leader() for n in live} - {""}) == 1
                 and all(n.jetstream_leader() for n in live), timeout=timeout,
                 what="the nats-servers to elect a JetStream leader")

    @classmethod
    def stream_info(cls, name="midge_msgs", timeout=1.0):
        """JetStream's STREAM.INFO of a stream, from its leader; None while it has none."""
        for n in cls.nats:
            if n.alive():
                try:
                    info = js_api(n.port, "STREAM.INFO." + name, timeout=timeout)
                except (NatsError, OSError):
                    continue
                return info if "config" in info else None
        return None

    @classmethod
    def wait_stream_leader(cls, name="midge_msgs", timeout=30):
        """Until the stream answers (has a leader): QoS 1/2 acknowledgements wait for it."""
        wait_for(lambda: ((cls.stream_info(name) or {}).get("cluster") or {}).get("leader"),
                 timeout=timeout, what="stream %s to have a leader" % name)

    # Helpers ---------------------------------------------------------------
    def client(self, node, **kw):
        kw.setdefault("client_id", unique_id("cl"))
        c = PahoClient(self.nodes[node].mqtt_port, **kw)
        self.addCleanup(c.close)
        return c

    def settle(self, publisher_node, subscribers, timeout=10):
        """Waits until the interest of every (node, client) in subscribers has
        reached NATS: each subscribes to a probe topic after its real
        subscriptions, and the publisher's node sends probes until all got
        one (a node's NATS subscriptions travel in order)."""
        topic = "probe/" + unique_id("p")
        for c in subscribers:
            c.subscribe(topic, 0)
        pub = self.client(publisher_node)
        deadline = time.monotonic() + timeout
        while True:
            pub.publish(topic, b"probe", 0)
            if all(any(m[0] == topic for m in c.messages) for c in subscribers):
                break
            if time.monotonic() > deadline:
                self.fail("interest did not reach NATS within %.0fs" % timeout)
            time.sleep(0.05)
        for c in subscribers:
            c.client.unsubscribe(topic)
        time.sleep(0.1)

    @staticmethod
    def got(c, prefix):
        return [m for m in list(c.messages) if m[0].startswith(prefix)]

    def expect_exactly(self, c, prefix, expected, timeout=10):
        wait_for(lambda: len(self.got(c, prefix)) >= len(expected), timeout=timeout,
                 what="%d messages under %s" % (len(expected), prefix))
        time.sleep(SETTLE)
        self.assertEqual(self.got(c, prefix), expected)

    def sys_state(self, node):
        c = self.client(node)
        c.subscribe("$SYS/broker/cluster/state", 0)
        msgs = c.wait_for(lambda ms: any(m[0] == "$SYS/broker/cluster/state" for m in ms))
        c.close()
        return [m[1] for m in msgs if m[0] == "$SYS/broker/cluster/state"][-1].decode()

    def metric(self, node, name):
        body = http_get(self.nodes[node].http_port, "/metrics")[1]
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.split()[-1])
        self.fail("no %s in /metrics" % name)
