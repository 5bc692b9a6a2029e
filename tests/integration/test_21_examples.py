#!/usr/bin/python3
"""The example plugins (plugins/examples/<name>/) do what their READMEs say.

Each example is first run with its own <name>.yaml as shipped (only the
port, the plugin's path and `user: root` changed so that it runs here), then
with other options: auth_static deferring to a password file, acl_prefix
deferring to an acl_file, rewrite over several workers, delayed_auth under
concurrent logins, its plugin_timeout and a shutdown with answers pending.

midge only (mosquitto's plugins have another ABI).
Run alone: MIDGE_PLUGIN_DIR=<builddir> /usr/bin/python3 tests/integration/test_21_examples.py
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (PUBACK, SRCDIR, PahoClient, PluginTestCase, connack_code,  # noqa: E402
                       connect, main, parse_publish5, parse_v5, plugin_path, publish, puback, suback,
                       subscribe, unique_id)

EXAMPLES = os.path.join(SRCDIR, "plugins", "examples")

# A refused login: 4 / 0x86 with a user name (whether a plugin said DENY or
# every check deferred: refusals do not tell which names exist), 5 / 0x87 without.
NOT_AUTHORISED = (5, 0x87)
BAD_CREDENTIALS = (4, 0x86)


def code(codes, proto):
    return codes[1] if proto == 5 else codes[0]


def shipped_config(name, extra=""):
    """plugins/examples/<name>/<name>.yaml, made runnable in a test: port 0
    (the harness reads the real one from the log), the built plugin instead
    of ./<name>.so, user root, and `extra` lines appended."""
    with open(os.path.join(EXAMPLES, name, name + ".yaml")) as f:
        text = f.read()
    if "port: 1883" not in text or "./%s.so" % name not in text:
        raise AssertionError("%s.yaml no longer has 'port: 1883' and './%s.so'" % (name, name))
    text = text.replace("port: 1883", "port: 0").replace("./%s.so" % name, plugin_path(name))
    return text.rstrip("\n") + "\nuser: root\n" + extra


class ExampleTestCase(PluginTestCase):

    def start_shipped(self, name, extra=""):
        return self.start_broker(raw_config=shipped_config(name, extra), config_name="broker.yaml")

    def plugin(self, name, **options):
        return {"path": plugin_path(name), "options": options}

    def publish_v5(self, client, topic, payload, mid):
        client.send(publish(topic, payload, qos=1, mid=mid, proto=5))
        ack = parse_v5(client.read_packet())
        self.assertEqual((ack.type, ack.rest), (PUBACK, mid))
        return ack.reason


class AuthStatic(ExampleTestCase):

    def test_shipped_config(self):
        self.start_shipped("auth_static")
        for proto in (4, 5):
            with self.subTest(proto=proto):
                def login(user, pw=None):
                    return connack_code(self.port, proto=proto, username=user, password=pw)
                self.assertEqual(login("alice", "secret"), 0)
                self.assertEqual(login("bob", "correct horse"), 0)
                self.assertEqual(login("alice", "secreT"), code(BAD_CREDENTIALS, proto))
                self.assertEqual(login("alice", "secret "), code(BAD_CREDENTIALS, proto))
                self.assertEqual(login("alice"), code(BAD_CREDENTIALS, proto), "no password")
                # Deferred, and nothing else decides: refused, like a wrong password.
                self.assertEqual(login("mallory", "secret"), code(BAD_CREDENTIALS, proto))
                self.assertEqual(connack_code(self.port, proto=proto), code(NOT_AUTHORISED, proto))

    def test_defers_to_the_password_file(self):
        pw = self.password_file({"dave": "dave-pw", "alice": "file-pw"})
        self.start_plugins([self.plugin("auth_static", user_alice="secret")],
                           options={"password_file": pw, "allow_anonymous": False})
        self.assertEqual(connack_code(self.port, username="alice", password="secret"), 0)
        self.assertEqual(connack_code(self.port, username="dave", password="dave-pw"), 0,
                         "a user the plugin does not know is up to the password file")
        self.assertEqual(connack_code(self.port, username="dave", password="nope"), BAD_CREDENTIALS[0])
        # The plugin owns alice: its DENY ends the chain, the file's password does not help.
        self.assertEqual(connack_code(self.port, username="alice", password="file-pw"), BAD_CREDENTIALS[0])


class AclPrefix(ExampleTestCase):

    def test_shipped_config(self):
        self.start_shipped("acl_prefix")
        me = self.client("dev1", proto=5)
        me.send(subscribe(1, [("clients/dev1/#", 1), ("clients/dev2/#", 1), ("clients/#", 0)], proto=5))
        me.expect(suback(1, [1, 0x87, 0x87], proto=5))
        self.assertEqual(self.publish_v5(me, "clients/dev2/status", "up", 2), 0x87)
        self.assertEqual(self.publish_v5(me, "elsewhere", "up", 3), 0x87)
        # Inside its tree it may publish, and receives its own message (DELIVER).
        me.send(publish("clients/dev1/status", "up", proto=5))
        got = parse_publish5(me.read_packet())
        self.assertEqual((got.topic, got.payload), ("clients/dev1/status", b"up"))
        other = self.client("dev2", proto=5)
        self.assertEqual(self.publish_v5(other, "clients/dev1/inbox", "hi", 1), 0x87,
                         "another client may not write into dev1's tree")

    def test_unsafe_client_ids_get_no_tree(self):
        self.start_shipped("acl_prefix")
        c = self.client("a/b")
        c.subscribe_ok([("clients/a/b/#", 1)], granted=[0x80])

    def test_prefix_option_and_acl_file(self):
        acl = self.file("acl", "pattern read public/#\n")
        self.start_plugins([self.plugin("acl_prefix", prefix="site/devices/")],
                           options={"acl_file": acl})
        c = self.client("d7")
        c.subscribe_ok([("site/devices/d7/#", 1)])
        c.subscribe_ok([("public/#", 0)], mid=2)  # deferred by the plugin, granted by the file
        c.subscribe_ok([("clients/d7/#", 0)], mid=3, granted=[0x80])

    def test_bad_prefix_is_refused(self):
        rc, log = self.refused_plugins([self.plugin("acl_prefix", prefix="a/+")])
        self.assertNotEqual(rc, 0, log)
        self.assertIn("acl_prefix", log)


class Rewrite(ExampleTestCase):

    def test_shipped_config(self):
        self.start_shipped("rewrite")
        sub = self.client().subscribe_ok([("v2/#", 1), ("legacy/#", 1), ("shout/#", 1), ("blocked/#", 1)],
                                         granted=[1, 1, 1, 1])
        pub = self.client(proto=5)
        self.assertLess(self.publish_v5(pub, "legacy/temp", "21", 1), 0x80)
        sub.send(puback(sub.expect_publish("v2/temp", "21", qos=1)))
        self.assertLess(self.publish_v5(pub, "shout/x", "hello, World 1", 2), 0x80)
        sub.send(puback(sub.expect_publish("shout/x", "HELLO, WORLD 1", qos=1)))
        self.assertEqual(self.publish_v5(pub, "blocked/x", "no", 3), 0x99)
        self.assertLess(self.publish_v5(pub, "other/x", "as is", 4), 0x80)
        sub.ping("(nothing on legacy/, nothing from blocked/)")

    def test_many_workers(self):
        """Per-worker buffers: clients on different workers rewrite at once."""
        self.start_plugins([self.plugin("rewrite", from_prefix="in/", to_prefix="out/")],
                           options={"workers": 4})
        sub = PahoClient(self.port, client_id=unique_id("sub"))
        self.addCleanup(sub.close)
        sub.subscribe("#", 1)
        pubs = []
        for i in range(8):
            p = PahoClient(self.port, client_id=unique_id("pub%d-" % i))
            self.addCleanup(p.close)
            pubs.append(p)
        def send(i, p):
            for n in range(25):
                p.publish("in/%d/%d" % (i, n), "%d-%d" % (i, n), 1)
        threads = [threading.Thread(target=send, args=(i, p)) for i, p in enumerate(pubs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        got = sub.wait_messages(200, timeout=20)
        self.assertEqual(len(got), 200)
        for topic, payload, _, _ in got:
            i, n = payload.decode().split("-")
            self.assertEqual(topic, "out/%s/%s" % (i, n))


class DelayedAuth(ExampleTestCase):

    def test_shipped_config(self):
        self.start_shipped("delayed_auth")
        for proto in (4, 5):
            with self.subTest(proto=proto):
                def login(user, pw=None):
                    return connack_code(self.port, proto=proto, username=user, password=pw)
                self.assertEqual(login("alice", "secret"), 0)
                self.assertEqual(login("bob", "correct horse"), 0)
                self.assertEqual(login("alice", "wrong"), code(BAD_CREDENTIALS, proto))
                self.assertEqual(login("mallory", "secret"), code(BAD_CREDENTIALS, proto),
                                 "a late answer cannot defer: unknown users are denied")
                self.assertEqual(connack_code(self.port, proto=proto), code(NOT_AUTHORISED, proto))

    def test_concurrent_logins(self):
        self.start_plugins([self.plugin("delayed_auth", delay_ms="500", user_alice="secret")],
                           options={"workers": 2})
        results = {}

        def login(i):
            pw = "secret" if i % 2 == 0 else "wrong"
            results[i] = connack_code(self.port, unique_id("c%d-" % i), username="alice", password=pw)
        t0 = time.monotonic()
        threads = [threading.Thread(target=login, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(results, {i: 0 if i % 2 == 0 else BAD_CREDENTIALS[0] for i in range(12)})
        # Answered side by side, not one after the other (12 x 500 ms).
        self.assertLess(time.monotonic() - t0, 4.0)

    def test_never_answered_login_times_out(self):
        self.start_plugins([self.plugin("delayed_auth", user_alice="secret", never_answer_user="eve")],
                           options={"plugin_timeout": 1})
        waiting = self.raw()
        waiting.send(connect(unique_id("eve"), username="eve", password="x"))
        self.assertEqual(connack_code(self.port, username="alice", password="secret"), 0,
                         "other logins go on while eve waits")
        t0 = time.monotonic()
        got = waiting.read_packet(timeout=10)
        self.assertEqual(got[0], 0x20)
        self.assertIn(got[3], (4, 5), "a login nobody answered must be refused")
        self.assertLess(time.monotonic() - t0, 8)

    def test_shutdown_with_answers_pending(self):
        b = self.start_plugins([self.plugin("delayed_auth", delay_ms="5000", user_alice="secret",
                                            never_answer_user="eve")])
        pending = [self.raw() for _ in range(3)]
        pending[0].send(connect(unique_id(), username="alice", password="secret"))
        pending[1].send(connect(unique_id(), username="eve", password="x"))
        pending[2].send(connect(unique_id(), username="bob", password="x"))
        b.wait_log(r"(?i)delayed_auth", timeout=5)
        time.sleep(0.2)  # let the CONNECTs reach the plugin (nothing can be observed of them)
        self.stop_checked(b)  # exit 0, and no sanitizer report (leaks included)


if __name__ == "__main__":
    main()
