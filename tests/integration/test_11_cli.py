#!/usr/bin/python3
"""The command line, configuration files, signals and logging.

--help, --version, -t (validate and exit), -p, -d with pid_file, format
detection, include_dir, ${ENV} expansion, SIGTERM/SIGINT/SIGHUP, log_dest,
log_type, connection_messages and the log timestamp options. Cases that only
midge has skip on mosquitto (which has no --version and no -t, and whose -h
exits 3).

Each broker here listens on a port chosen beforehand (free_port()) and is
found listening through /proc/net, without connecting: these tests filter or
redirect the log, so the "Opening ... listen socket" line may not be there.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_11_cli.py
"""

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (PahoClient, broker_binary, free_port, is_mosquitto,  # noqa: E402
                       listening_addresses, main, mosquitto_pub, to_mosquitto_conf, to_yaml,
                       unique_id, wait_for)

DEBIAN_EXAMPLE_CONF = "/usr/share/doc/mosquitto/examples/mosquitto.conf"
NAME = "mosquitto" if is_mosquitto() else "midge"
TERMINATING = r"\b%s version \S+ terminating" % NAME
DEFAULT_OPTIONS = {"user": "root", "allow_anonymous": True}


def password_line(user, password, iterations=101):
    """A password file line in mosquitto's PBKDF2-SHA512 ($7$) format."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return "%s:$7$%d$%s$%s\n" % (user, iterations, base64.b64encode(salt).decode(),
                                 base64.b64encode(digest).decode())


def non_loopback_ipv4():
    """This machine's IPv4 addresses outside 127/8."""
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    except OSError:
        pass
    if shutil.which("ip"):
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10).stdout.decode()
        found.update(re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out))
    return sorted(a for a in found if not a.startswith("127."))


def read_pid(path):
    """The pid in a pid file (mosquitto writes it without a newline); None if not there yet."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def pids_using(path):
    """Processes whose command line has `path` as an argument."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if path.encode() in args and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def pid_gone(pid):
    """The process has exited (a zombie left for an init that does not reap counts)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class Server:
    """A broker process started with `args`; output (stdout and stderr) is collected."""

    def __init__(self, args, port=None, env=None, cwd=None):
        self.cmd = [broker_binary()] + [str(a) for a in args]
        self.lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if port is not None:
            try:
                self.wait_listening(port)
            except AssertionError:
                self.stop()
                raise

    def _read(self):
        for raw in self.proc.stdout:
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def output(self):
        with self._lock:
            return "\n".join(self.lines)

    def wait_listening(self, port, timeout=10):
        wait_for(lambda: listening_addresses(port) or self.proc.poll() is not None, timeout,
                 what="%s to listen on port %d" % (" ".join(self.cmd), port))
        if self.proc.poll() is not None:
            raise AssertionError("%s exited with %s:\n%s"
                                 % (" ".join(self.cmd), self.proc.returncode, self.output()))

    def wait_line(self, pattern, timeout=5):
        rx = re.compile(pattern)

        def found():
            with self._lock:
                return any(rx.search(l) for l in self.lines)
        try:
            wait_for(found, timeout, what="log line /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s; output:\n%s" % (e, self.output()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=10):
        """Waits for the process to exit; returns its exit code."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("still running %.0fs later; output:\n%s" % (timeout, self.output()))
        self._reader.join(2)
        return rc

    def stop(self):
        """SIGTERM, then (after 10 s) SIGKILL; returns the output."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        self.proc.stdout.close()
        return self.output()


class CliTestCase(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="midgetest-cli-")
        if os.environ.get("MIDGE_TEST_KEEP"):
            self.addCleanup(sys.stderr.write, "kept %s\n" % self.dir)
        else:
            self.addCleanup(shutil.rmtree, self.dir, True)

    def midge_only(self, why):
        if is_mosquitto():
            self.skipTest("midge-only: " + why)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def config(self, options=None, port=None, name=None):
        """A configuration file in the target's own format (YAML for midge,
        mosquitto.conf for mosquitto) with one listener on 127.0.0.1:port."""
        opts = dict(DEFAULT_OPTIONS)
        opts.update(options or {})
        listeners = [{"port": port, "bind_address": "127.0.0.1"}]
        if is_mosquitto():
            return self.write(name or "broker.conf", to_mosquitto_conf(opts, listeners))
        return self.write(name or "broker.yaml", to_yaml(opts, listeners))

    def run_broker(self, *args, env=None, timeout=10):
        """Runs the broker to completion (e.g. -t, --help); output is stdout + stderr."""
        res = subprocess.run([broker_binary()] + [str(a) for a in args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                             timeout=timeout, cwd=self.dir)
        res.stdout = res.stdout.decode("utf-8", "replace")
        return res

    def start(self, *args, port=None, env=None):
        s = Server(args, port=port, env=env, cwd=self.dir)
        self.addCleanup(s.stop)
        return s

    def start_with(self, options=None, verbose=False):
        """A broker on a fresh port with self.config(options); returns (server, port)."""
        port = free_port()
        conf = self.config(options, port)
        return self.start("-c", conf, *(["-v"] if verbose else []), port=port), port

    def check_ok(self, *args, env=None):
        res = self.run_broker("-t", *args, env=env)
        self.assertEqual(res.returncode, 0, res.stdout)
        return res

    def check_fails(self, *args, env=None):
        res = self.run_broker("-t", *args, env=env)
        self.assertEqual(res.returncode, 1, res.stdout)
        return res


class HelpAndVersion(CliTestCase):

    def test_help(self):
        self.midge_only("mosquitto -h prints its usage and exits 3")
        res = self.run_broker("--help")
        self.assertEqual(res.returncode, 0, res.stdout)
        for flag in ("-c", "-p", "-v", "-d", "-t"):
            self.assertRegex(res.stdout, r"(^|\s)%s\b" % flag, "--help should mention %s" % flag)

    def test_version(self):
        self.midge_only("mosquitto 2.0.11 has no --version")
        res = self.run_broker("--version")
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertRegex(res.stdout, r"\bmidge\b")
        self.assertRegex(res.stdout, r"\b\d+\.\d+")


class CheckConfig(CliTestCase):
    """midge -t -c FILE: validates, prints FILE:LINE:COLUMN: error: ..., exits 0 or 1."""

    def setUp(self):
        super().setUp()
        self.midge_only("mosquitto 2.0.11 has no -t")

    def test_good_yaml(self):
        conf = self.write("good.yaml", "# a valid configuration\n"
                                       "user: root\n"
                                       "allow_anonymous: true\n"
                                       "max_inflight_messages: 20\n"
                                       "sys_interval: 10\n"
                                       "listeners:\n"
                                       "  - port: 0\n"
                                       "    bind_address: 127.0.0.1\n")
        res = self.check_ok("-c", conf)
        self.assertNotRegex(res.stdout, r"error", res.stdout)

    def test_misspelt_option_gets_a_suggestion(self):
        conf = self.write("broker.yaml", "user: root\n"
                                         "allow_anonymous: true\n"
                                         "max_inflight_mesages: 5\n"
                                         "listeners:\n"
                                         "  - port: 0\n")
        res = self.check_fails("-c", conf)
        self.assertRegex(res.stdout, r"broker\.yaml:3:1: error: .*max_inflight_mesages.*"
                                     r"did you mean 'max_inflight_messages'")

    def test_errors_name_file_line_and_column(self):
        cases = {
            "bad value": ("allow_anonymous: true\n"
                          "max_inflight_messages: lots\n"
                          "listeners:\n"
                          "  - port: 0\n",
                          r"bad\.yaml:2:\d+: error: .*max_inflight_messages"),
            "unknown listener option": ("allow_anonymous: true\n"
                                        "listeners:\n"
                                        "  - port: 0\n"
                                        "    bind_adress: 127.0.0.1\n",
                                        r"bad\.yaml:4:\d+: error: .*bind_adress"),
            "yaml syntax": ("allow_anonymous: true\n"
                            "listeners: [\n"
                            "  - port: 0\n",
                            r"bad\.yaml:\d+:\d+: error: "),
        }
        for name, (text, pattern) in cases.items():
            with self.subTest(case=name):
                res = self.check_fails("-c", self.write("bad.yaml", text))
                self.assertRegex(res.stdout, pattern)

    def test_debian_example_mosquitto_conf(self):
        if not os.path.exists(DEBIAN_EXAMPLE_CONF):
            self.skipTest("%s is not installed" % DEBIAN_EXAMPLE_CONF)
        self.check_ok("-c", DEBIAN_EXAMPLE_CONF)

    def test_format_by_extension(self):
        yaml_text = "allow_anonymous: true\nlisteners:\n  - port: 0\n"
        conf_text = "allow_anonymous true\nlistener 0 127.0.0.1\n"
        self.check_ok("-c", self.write("a.yaml", yaml_text))
        self.check_ok("-c", self.write("b.yml", yaml_text))
        self.check_ok("-c", self.write("c.conf", conf_text))
        # The extension decides, whatever the content looks like.
        res = self.check_fails("-c", self.write("d.conf", yaml_text))
        self.assertRegex(res.stdout, r"d\.conf:1:\d+: error: ")
        res = self.check_fails("-c", self.write("e.yaml", conf_text))
        self.assertRegex(res.stdout, r"e\.yaml:\d+:\d+: error: ")

    def test_format_by_content(self):
        port = free_port()
        yaml_cfg = self.write("midge.cfg", "user: root\nallow_anonymous: true\n"
                                           "listeners:\n  - port: %d\n    bind_address: 127.0.0.1\n" % port)
        self.check_ok("-c", yaml_cfg)
        self.check_ok("-c", self.write("other.cfg", "allow_anonymous true\nlistener 0 127.0.0.1\n"))
        self.start("-c", yaml_cfg, port=port)
        mosquitto_pub(port, "-t", "format/by/content", "-m", "yes")


class EnvironmentExpansion(CliTestCase):
    """${NAME} in a YAML value is replaced by the environment variable."""

    def setUp(self):
        super().setUp()
        self.midge_only("YAML configuration")

    def test_undefined_environment_variable(self):
        env = dict(os.environ)
        env.pop("MIDGE_TEST_UNDEFINED", None)
        conf = self.write("broker.yaml", "user: root\n"
                                         "allow_anonymous: true\n"
                                         "max_queued_messages: ${MIDGE_TEST_UNDEFINED}\n"
                                         "listeners:\n"
                                         "  - port: 0\n")
        res = self.check_fails("-c", conf, env=env)
        self.assertRegex(res.stdout, r"broker\.yaml:3:\d+: error: .*MIDGE_TEST_UNDEFINED")
        env["MIDGE_TEST_UNDEFINED"] = "100"
        self.check_ok("-c", conf, env=env)

    def test_environment_variable_expansion(self):
        port = free_port()
        conf = self.write("broker.yaml", "user: root\n"
                                         "allow_anonymous: true\n"
                                         "listeners:\n"
                                         "  - port: ${MIDGE_TEST_PORT}\n"
                                         "    bind_address: 127.0.0.1\n")
        self.start("-c", conf, port=port, env=dict(os.environ, MIDGE_TEST_PORT=str(port)))
        self.assertIn("127.0.0.1", listening_addresses(port))
        mosquitto_pub(port, "-t", "env/port", "-m", "yes")


class MosquittoConfErrors(CliTestCase):

    def bad_conf(self):
        return self.write("bad.conf", "# line 1\n"
                                      "listener %d 127.0.0.1\n"
                                      "max_inflight_mesages 5\n"
                                      "allow_anonymous true\n" % free_port())

    def test_unknown_option_is_refused_with_file_and_line(self):
        conf = self.bad_conf()
        s = self.start("-c", conf)
        rc = s.wait(10)
        self.assertNotEqual(rc, 0, s.output())
        # mosquitto: "Error found at .../bad.conf:3."; midge: ".../bad.conf:3:1: error: ..."
        self.assertRegex(s.output(), r"bad\.conf:3\b")
        self.assertIn("max_inflight_mesages", s.output())

    def test_unknown_option_with_check_flag(self):
        self.midge_only("mosquitto 2.0.11 has no -t")
        res = self.check_fails("-c", self.bad_conf())
        self.assertRegex(res.stdout, r"bad\.conf:3:1: error: .*max_inflight_mesages")

    def test_debian_example_conf_runs(self):
        if not os.path.exists(DEBIAN_EXAMPLE_CONF):
            self.skipTest("%s is not installed" % DEBIAN_EXAMPLE_CONF)
        port = free_port()
        with open(DEBIAN_EXAMPLE_CONF) as f:
            text = f.read()
        conf = self.write("mosquitto.conf", text + "\nuser root\nallow_anonymous true\n"
                                                   "listener %d 127.0.0.1\n" % port)
        self.start("-c", conf, port=port)
        mosquitto_pub(port, "-t", "debian/example", "-m", "ok")


class Listening(CliTestCase):

    def test_port_flag_listens_on_loopback(self):
        port = free_port()
        self.start("-p", port, port=port)
        addrs = listening_addresses(port)
        self.assertIn("127.0.0.1", addrs)
        self.assertLessEqual(addrs, {"127.0.0.1", "::1"})
        mosquitto_pub(port, "-t", "port/flag", "-m", "hi")

    def test_port_flag_refuses_other_addresses(self):
        addrs = non_loopback_ipv4()
        if not addrs:
            self.skipTest("this machine has no non-loopback IPv4 address")
        port = free_port()
        self.start("-p", port, port=port)
        for addr in addrs:
            with self.subTest(address=addr):
                with self.assertRaises(ConnectionRefusedError):
                    socket.create_connection((addr, port), timeout=5).close()

    def test_no_configuration_listens_on_1883(self):
        if listening_addresses(1883):
            self.skipTest("something listens on port 1883")
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 1883))
        except OSError:
            self.skipTest("port 1883 cannot be bound")
        s = self.start()
        s.wait_listening(1883)
        addrs = listening_addresses(1883)
        self.assertIn("127.0.0.1", addrs)
        self.assertLessEqual(addrs, {"127.0.0.1", "::1"})
        mosquitto_pub(1883, "-t", "no/config", "-m", "hi")
        s.signal(signal.SIGTERM)
        self.assertEqual(s.wait(), 0, s.output())


class Signals(CliTestCase):

    def stop_with(self, sig):
        pid_file = self.path("broker.pid")
        s, port = self.start_with({"pid_file": pid_file})
        self.assertEqual(wait_for(lambda: read_pid(pid_file), what="the pid file"), s.proc.pid)
        c = PahoClient(port, client_id=unique_id("sig"))
        self.addCleanup(c.close)
        s.signal(sig)
        self.assertEqual(s.wait(), 0, s.output())
        self.assertRegex(s.output(), TERMINATING)
        # The client's connection is closed, and the pid file removed.
        self.assertTrue(c.disconnected.wait(5), "the client is still connected")
        self.assertFalse(os.path.exists(pid_file), "the pid file is still there")

    def test_sigterm(self):
        self.stop_with(signal.SIGTERM)

    def test_sigint(self):
        self.stop_with(signal.SIGINT)

    def test_sighup_reloads_and_keeps_clients(self):
        s, port = self.start_with({})
        topic = "reload/" + unique_id()
        keeper = PahoClient(port, client_id=unique_id("keeper"))
        self.addCleanup(keeper.close)
        keeper.subscribe(topic, 1)
        mosquitto_pub(port, "-t", topic, "-q", 1, "-m", "large before reload")
        keeper.wait_messages(1)

        # message_size_limit is reloadable: payloads above 10 bytes are dropped afterwards.
        self.config({"message_size_limit": 10}, port)
        s.signal(signal.SIGHUP)
        prober = PahoClient(port, client_id=unique_id("prober"))
        self.addCleanup(prober.close)
        prober.subscribe("reload/probe/#", 1)

        def limit_applies():
            # Each round: a large then a small message on a topic of its own. The
            # limit applies once the small one arrives without the large one.
            probe = "reload/probe/" + unique_id()
            mosquitto_pub(port, "-t", probe, "-q", 1, "-m", "x" * 20)
            mosquitto_pub(port, "-t", probe, "-q", 1, "-m", "small")
            wait_for(lambda: any(m[0] == probe and m[1] == b"small" for m in prober.messages),
                     what="the probe message")
            return not any(m[0] == probe and m[1] != b"small" for m in prober.messages)
        wait_for(limit_applies, timeout=10, interval=0.2, what="the reloaded limit to apply")

        mosquitto_pub(port, "-t", topic, "-q", 1, "-m", "x" * 20)
        mosquitto_pub(port, "-t", topic, "-q", 1, "-m", "after")
        got = keeper.wait_messages(2)
        self.assertEqual([m[1] for m in got], [b"large before reload", b"after"])
        self.assertFalse(keeper.disconnected.is_set(), "SIGHUP disconnected a client")
        self.assertIsNone(s.proc.poll(), "the broker exited on SIGHUP:\n" + s.output())


class Daemon(CliTestCase):

    def test_daemonize_with_pid_file(self):
        port = free_port()
        pid_file = self.path("daemon.pid")
        conf = self.config({"pid_file": pid_file, "log_dest": "file %s" % self.path("daemon.log")}, port)
        daemon = {}

        def kill_daemon():
            # The pid from the pid file, or (if it never came) any process
            # running with this test's own configuration file.
            pids = {daemon["pid"]} if daemon.get("pid") else set(pids_using(conf))
            for pid in pids:
                if not pid_gone(pid):
                    os.kill(pid, signal.SIGKILL)
        self.addCleanup(kill_daemon)
        with open(self.path("launcher.out"), "w+") as out:
            res = subprocess.run([broker_binary(), "-c", conf, "-d"], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=10)
            out.seek(0)
            launcher_output = out.read()
        self.assertEqual(res.returncode, 0, launcher_output)
        pid = daemon["pid"] = wait_for(lambda: read_pid(pid_file), what="the pid file")
        self.assertFalse(pid_gone(pid), "no live process %d" % pid)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.assertIn(os.path.basename(broker_binary()).encode(), f.read())
        wait_for(lambda: listening_addresses(port), timeout=10, what="the daemon to listen")
        mosquitto_pub(port, "-t", "daemon/test", "-q", 1, "-m", "hi")

        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: pid_gone(pid), timeout=10, what="the daemon to exit")
        self.assertFalse(os.path.exists(pid_file), "the pid file should be removed on exit")
        with open(self.path("daemon.log")) as f:
            self.assertRegex(f.read(), TERMINATING)


class Logging(CliTestCase):

    def connect_once(self, port):
        client_id = unique_id("logged")
        mosquitto_pub(port, "-t", "log/test", "-m", "x", "-i", client_id)
        return client_id

    def test_default_log_lines(self):
        s, port = self.start_with()
        cid = self.connect_once(port)
        s.wait_line(r"^\d+: Client %s disconnected\.$" % cid)
        out = s.output()
        self.assertRegex(out, r"(?m)^\d+: Opening ipv4 listen socket on port %d\.$" % port)
        self.assertRegex(out, r"(?m)^\d+: New connection from 127\.0\.0\.1:\d+ on port %d\.$" % port)
        self.assertRegex(out, r"(?m)^\d+: New client connected from 127\.0\.0\.1:\d+ as %s "
                              r"\(p2, c1, k60\)\.$" % cid)

    def test_log_dest_file(self):
        log_file = self.path("logs/broker.log")
        os.makedirs(os.path.dirname(log_file))
        s, port = self.start_with({"log_dest": "file %s" % log_file})
        cid = self.connect_once(port)

        def logged():
            with open(log_file) as f:
                return re.search(r"Client %s disconnected\." % cid, f.read())
        wait_for(lambda: os.path.exists(log_file) and logged(), what="the log file")
        with open(log_file) as f:
            text = f.read()
        self.assertRegex(text, r"New client connected from 127\.0\.0\.1:\d+ as %s " % cid)
        self.assertNotIn(cid, s.output(), "the log went elsewhere too")

    def test_log_type_filters(self):
        s, port = self.start_with({"log_type": "error"})
        self.connect_once(port)
        out = s.stop()
        self.assertNotIn("New connection", out)
        self.assertNotIn("New client connected", out)
        # notice is the level of the connection lines.
        s, port = self.start_with({"log_type": ["error", "notice"]})
        cid = self.connect_once(port)
        s.wait_line(r"New client connected from 127\.0\.0\.1:\d+ as %s " % cid)

    def test_connection_messages_false(self):
        s, port = self.start_with({"connection_messages": False})
        self.connect_once(port)
        s.signal(signal.SIGTERM)
        s.wait()
        out = s.output()
        self.assertRegex(out, r"Opening ipv4 listen socket on port %d\." % port)
        self.assertNotIn("New connection", out)
        self.assertNotIn("New client connected", out)
        self.assertNotRegex(out, r"Client \S+ disconnected")

    def test_log_timestamp_false(self):
        s, port = self.start_with({"log_timestamp": False})
        cid = self.connect_once(port)
        s.wait_line(r"Client %s disconnected\." % cid)
        out = s.output()
        self.assertRegex(out, r"(?m)^Opening ipv4 listen socket on port %d\.$" % port)
        self.assertRegex(out, r"(?m)^Client %s disconnected\.$" % cid)

    def test_log_timestamp_format(self):
        s, port = self.start_with({"log_timestamp_format": "%Y-%m-%dT%H:%M:%S"})
        cid = self.connect_once(port)
        s.wait_line(r"Client %s disconnected\." % cid)
        out = s.output()
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: "
        self.assertRegex(out, r"(?m)^%sOpening ipv4 listen socket on port %d\.$" % (stamp, port))
        self.assertRegex(out, r"(?m)^%sClient %s disconnected\.$" % (stamp, cid))


class IncludeDir(CliTestCase):
    """include_dir: the files are read in order of their names, a later one
    overriding an earlier one (names here sort the same in ASCII and
    case-insensitively: mosquitto 2.0.11 sorts case-insensitively)."""

    def run_with_includes(self, main_name, main_text, files, port):
        """Starts the broker with conf.d/ holding `files`; returns its output
        after one client came and went, and that client's id."""
        shutil.rmtree(self.path("conf.d"), True)
        for name, text in files.items():
            self.write("conf.d/" + name, text)
        s = self.start("-c", self.write(main_name, main_text), port=port)
        cid = unique_id("inc")
        mosquitto_pub(port, "-t", "include/dir", "-m", "x", "-i", cid)
        s.wait_line(r"Client %s disconnected\." % cid)
        return s.stop(), cid

    def check_order(self, main_name, main_text, setting, ext, extra_files, port):
        """setting(bool): the text that sets log_timestamp; the file read last decides."""
        for last in (True, False):
            with self.subTest(last_file_sets_log_timestamp=last):
                files = {"10-first" + ext: setting(not last), "20-second" + ext: setting(last)}
                files.update(extra_files)
                out, cid = self.run_with_includes(main_name, main_text, files, port)
                self.assertRegex(out, r"(?m)^%sClient %s disconnected\.$"
                                 % (r"\d+: " if last else "", cid))

    def test_include_dir_mosquitto_conf(self):
        port = free_port()
        main_text = ("user root\nallow_anonymous true\nlistener %d 127.0.0.1\ninclude_dir %s\n"
                     % (port, self.path("conf.d")))
        # Files not ending in .conf are not read.
        ignored = {"30-ignored.txt": "log_timestamp false\nthis is not an option\n"}
        self.check_order("broker.conf", main_text, lambda on: "log_timestamp %s\n" % str(on).lower(),
                         ".conf", ignored, port)

    def test_include_dir_yaml(self):
        self.midge_only("YAML configuration")
        port = free_port()
        main_text = ("user: root\nallow_anonymous: true\ninclude_dir: %s\n"
                     "listeners:\n  - port: %d\n    bind_address: 127.0.0.1\n"
                     % (self.path("conf.d"), port))
        self.check_order("broker.yaml", main_text, lambda on: "log_timestamp: %s\n" % str(on).lower(),
                         ".yaml", {}, port)


if __name__ == "__main__":
    main()
