#!/usr/bin/python3
"""ACL files in mosquitto's syntax: the anonymous section, `user`, `topic
read|write|readwrite|deny`, `pattern` with %u and %c, what a refused PUBLISH
and SUBSCRIBE look like in MQTT 3.1.1 and 5, reading checked per delivered
message (retained messages and wills too), $SYS, SIGHUP reload of the ACL
file, and ACL files the broker must refuse.

Target-dependent assertions (mosquitto 2.0.11 differs, midge follows the
issue):
  * SUBSCRIBE to a filter the user can never read (no read rule can match any
    topic under it): midge answers SUBACK 0x80 (3.1.1) / 0x87 (MQTT 5);
    mosquitto 2.0.11 grants every subscription and only filters the messages
    it delivers. A filter that overlaps what the user may read (`#` for a
    user allowed `a/#`) is granted by both, and filtered per message.
  * SIGHUP with a new ACL: both apply the new read rules to live
    subscriptions at once; midge drops a subscription the new ACL denies (a
    later ACL granting it again does not bring it back), mosquitto keeps it
    and delivers again once the rules allow.
  * A bad ACL file on reload: midge keeps the old policy (midge-only test;
    mosquitto 2.0.11 logs the error and then runs with NO ACL: fail-open).
  * A bad ACL at start: both refuse and name the file; midge also names the
    line.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_15_acl.py
"""

import os
import re
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (PUBACK, PUBCOMP, PUBREC, MosquittoSub, SecureBroker, SecureTestCase,  # noqa: E402
                       _stop_checked, connected_client, describe, expect_ack, is_mosquitto,
                       main, make_password_file, mosquitto_pub, private_dir, publish, puback,
                       pubcomp, pubrec, pubrel, subscribe, suback, unique_id, wait_for,
                       write_file)

PASSWORDS = {"chisj": "chisj", "gw": "gw-pw", "admin": "admin-pw", "sysmon": "sysmon-pw",
             "alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "+": "plus-pw"}

ACL = """\
# Anonymous clients: the lines before the first `user` line.
topic read public/#
topic readwrite anon/#

# The seed's ACL.
user chisj
topic write mtopic
topic read mtopic

# A feeder that may write everywhere (even, it believes, to $SYS).
user gw
topic write #
topic write $SYS/#

# Reads everything ('#' does not reach $SYS).
user admin
topic read #

user sysmon
topic read $SYS/#

user alice
topic read r/#
topic write w/#
topic readwrite rw/#
topic deny rw/secret
topic a/#

user bob
topic readwrite bob/#

# carol and '+' have no section: only the patterns apply to them.
pattern read sensors/%u/#
pattern write devices/%c/out
"""


def denied_sub(proto, qos):
    """The SUBACK code for a filter the ACL never lets the user read, asked
    for at `qos`: 0x80 (3.1.1) / 0x87 (5) from midge; mosquitto 2.0.11
    grants it (see the module docstring)."""
    if is_mosquitto():
        return qos
    return 0x87 if proto == 5 else 0x80


def login(user):
    return {"username": user, "password": PASSWORDS[user]}


def publish_topic_mid(pkt):
    """(topic, qos, packet id or None) of a PUBLISH in any protocol version."""
    i = 1
    while pkt[i] & 0x80:
        i += 1
    body = pkt[i + 1:]
    tlen = int.from_bytes(body[:2], "big")
    qos = (pkt[0] >> 1) & 3
    mid = int.from_bytes(body[2 + tlen:4 + tlen], "big") if qos else None
    return body[2:2 + tlen].decode(), qos, mid


def received_until(test, sub, marker, retained=False):
    """Reads PUBLISHes on `sub` (acknowledging QoS 1) until one on `marker`
    arrives; returns the topics that came before it, in order. Retained
    messages (sent on subscribing; other tests leave some behind) are
    skipped unless `retained`."""
    got = []
    while True:
        pkt = sub.read_packet()
        if pkt[0] >> 4 != 3:
            test.fail("expected a PUBLISH, got %s" % describe(pkt))
        topic, qos, mid = publish_topic_mid(pkt)
        if qos == 1:
            sub.send(puback(mid))
        elif qos == 2:
            test.fail("QoS 2 delivery not expected here")
        if topic == marker:
            return got
        if retained or not pkt[0] & 1:
            got.append(topic)


class Acl(SecureTestCase):
    """One broker: a password file, the ACL above, allow_anonymous true."""

    @classmethod
    def setUpClass(cls):
        cls.dir = private_dir()
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.pwfile = make_password_file(os.path.join(cls.dir, "passwd"), PASSWORDS)
        cls.aclfile = write_file(cls.dir, "acl", ACL)
        cls.shared = SecureBroker(options={"allow_anonymous": True, "password_file": cls.pwfile,
                                           "acl_file": cls.aclfile, "sys_interval": 1})
        cls.addClassCleanup(_stop_checked, cls.shared)

    def setUp(self):
        super().setUp()
        self.broker, self.port = self.shared, self.shared.port

    def tearDown(self):
        if not self.broker.alive():
            self.fail("the broker died during the test:\n" + self.broker.log())

    # Helpers -------------------------------------------------------------

    def as_user(self, user, client_id=None, proto=4, **kw):
        if user is not None:
            kw.update(login(user))
        return self.client(client_id, proto=proto, **kw)

    def feed(self, *topics, qos=1, retain=False, user="gw", payload=None):
        """gw publishes each topic (payload: the topic) at QoS 1 and waits for PUBACK."""
        gw = self.as_user(user)
        for i, t in enumerate(topics, 1):
            gw.send(publish(t, t if payload is None else payload, qos=qos, mid=i, retain=retain))
            if qos:
                gw.expect(puback(i), msg="(%s publishing %s)" % (user, t))
        gw.ping()
        return gw

    def received_until(self, sub, marker, proto=4, retained=False):
        return received_until(self, sub, marker, retained)

    # The seed ------------------------------------------------------------

    def test_seed_chisj_with_mosquitto_clients(self):
        # '#' overlaps public/#, so it is granted; mtopic must not come through it.
        anon = self.client().subscribe_ok([("#", 0)])
        with MosquittoSub(self.port, ["mtopic"], qos=1,
                          args=["-u", "chisj", "-P", "chisj", "-C", 1, "-W", 10]) as sub:
            mosquitto_pub(self.port, "-t", "mtopic", "-u", "chisj", "-P", "chisj", "-q", 1,
                          "-m", "hello chisj")
            self.assertEqual(sub.wait_exit(10), 0, sub.output())
            self.assertEqual(sub.messages, [("mtopic", b"hello chisj", 1, False)])
        # Anonymous clients may not read mtopic.
        self.feed("public/sync")
        self.assertEqual(self.received_until(anon, "public/sync"), [])
        # chisj may write mtopic only.
        res = mosquitto_pub(self.port, "-t", "mtopic", "-u", "chisj", "-P", "wrong", "-m", "x", check=False)
        self.assertNotEqual(res.returncode, 0, res.stdout)

    # The anonymous section -----------------------------------------------

    def test_anonymous_section(self):
        anon = self.client()
        anon.subscribe_ok([("#", 1)])  # overlaps public/# and anon/#: granted
        admin = self.as_user("admin").subscribe_ok([("#", 1)])
        self.feed("public/a", "anon/b", "r/c", "mtopic", "a/d", "bob/e", "public/end")
        self.assertEqual(self.received_until(anon, "public/end"), ["public/a", "anon/b"])
        # Anonymous writes: anon/# yes, public/# (read only) no.
        writer = self.client()
        for i, t in enumerate(("public/x", "anon/x", "a/x", "anon/end"), 1):
            writer.send(publish(t, "", qos=1, mid=i))
            writer.expect(puback(i), msg="(a refused 3.1.1 PUBLISH is still acknowledged)")
        self.assertEqual(self.received_until(admin, "anon/end"),
                         ["public/a", "anon/b", "r/c", "mtopic", "a/d", "bob/e", "public/end", "anon/x"])

    def test_users_do_not_get_the_anonymous_rules(self):
        alice = self.as_user("alice").subscribe_ok([("#", 0)])
        self.feed("public/x", "anon/x", "a/end")
        self.assertEqual(self.received_until(alice, "a/end"), [])

    # topic read / write / readwrite / deny ---------------------------------

    def test_write_rules_v311(self):
        admin = self.as_user("admin").subscribe_ok([("#", 1)])
        alice = self.as_user("alice")
        # ("w" is under w/#: a filter's '#' also matches its parent level.)
        topics = ["r/x", "w/x", "rw/x", "rw/secret", "a/x", "bob/x", "mtopic", "public/x", "w", "ww/x"]
        for i, t in enumerate(topics, 1):
            alice.send(publish(t, t, qos=1, mid=i))
            # MQTT 3.1.1 has no way to say no: the refused message is dropped
            # silently and still PUBACKed (mosquitto 2.0.11 and midge).
            alice.expect(puback(i), msg="(publish to %s)" % t)
        alice.send(publish("a/end", "", qos=1, mid=100))
        alice.expect(puback(100))
        self.assertEqual(self.received_until(admin, "a/end"), ["w/x", "rw/x", "a/x", "w"])

    def test_refused_qos2_v311_completes_normally(self):
        admin = self.as_user("admin").subscribe_ok([("#", 1)])
        alice = self.as_user("alice")
        alice.send(publish("r/q2", "x", qos=2, mid=5))
        alice.expect(pubrec(5))
        alice.send(pubrel(5))
        alice.expect(pubcomp(5))
        alice.send(publish("a/end", "", qos=1, mid=6))
        alice.expect(puback(6))
        self.assertEqual(self.received_until(admin, "a/end"), [])

    def test_write_refused_v5_reason_codes(self):
        admin = self.as_user("admin").subscribe_ok([("#", 1)])
        alice = self.as_user("alice", proto=5)
        alice.send(publish("r/x", "no", qos=1, mid=1, proto=5))
        expect_ack(alice, PUBACK, 1, 0x87, "(read-only topic)")
        alice.send(publish("rw/secret", "no", qos=2, mid=2, proto=5))
        expect_ack(alice, PUBREC, 2, 0x87, "(denied topic)")
        # A PUBREC >= 0x80 ends the exchange: the id is free again.
        alice.send(publish("w/ok", "yes", qos=2, mid=2, proto=5))
        expect_ack(alice, PUBREC, 2, msg="(allowed topic, id reused)")
        alice.send(pubrel(2))
        expect_ack(alice, PUBCOMP, 2)
        alice.send(publish("bob/x", "no", qos=0, proto=5))  # QoS 0: dropped, nothing said
        alice.send(publish("a/end", "", qos=1, mid=3, proto=5))
        expect_ack(alice, PUBACK, 3)
        self.assertEqual(self.received_until(admin, "a/end"), ["w/ok"])

    def test_read_checked_per_delivered_message(self):
        for proto in (4, 5):
            with self.subTest(proto=proto):
                alice = self.as_user("alice", proto=proto)
                # '#' overlaps what alice may read: granted by both brokers.
                alice.send(subscribe(1, [("#", 1)], proto=proto))
                alice.expect(suback(1, [1], proto=proto))
                self.feed("r/x", "w/x", "rw/x", "rw/secret", "a/x", "bob/x", "public/x", "mtopic", "a/end")
                self.assertEqual(self.received_until(alice, "a/end", proto), ["r/x", "rw/x", "a/x"])

    def test_subscribe_to_what_can_never_be_read(self):
        for proto in (4, 5):
            with self.subTest(proto=proto):
                alice = self.as_user("alice", proto=proto)
                alice.send(subscribe(1, [("a/#", 1), ("w/x", 1), ("bob/#", 0), ("rw/secret", 2)],
                                     proto=proto))
                # midge: 0x80 / 0x87 per refused filter; mosquitto 2.0.11
                # grants them all (and then delivers nothing from them).
                alice.expect(suback(1, [1, denied_sub(proto, 1), denied_sub(proto, 0),
                                        denied_sub(proto, 2)], proto=proto))
                self.feed("w/x", "bob/y", "rw/secret", "a/end")
                self.assertEqual(self.received_until(alice, "a/end", proto), [])

    # Patterns ---------------------------------------------------------------

    def test_pattern_user_name(self):
        alice = self.as_user("alice").subscribe_ok([("sensors/#", 1)])
        self.feed("sensors/alice/t", "sensors/bob/t", "sensors/alicex/t", "sensors/alice",
                  "sensors/alice/deep/er", "sensors/alice/end")
        self.assertEqual(self.received_until(alice, "sensors/alice/end"),
                         ["sensors/alice/t", "sensors/alice", "sensors/alice/deep/er"])

    def test_pattern_other_users_tree(self):
        bob = self.as_user("bob")
        bob.send(subscribe(1, [("sensors/alice/#", 1), ("sensors/bob/#", 1)]))
        bob.expect(suback(1, [denied_sub(4, 1), 1]))
        self.feed("sensors/alice/t", "sensors/bob/end")
        self.assertEqual(self.received_until(bob, "sensors/bob/end"), [])
        # Patterns give read access only: bob cannot write his own tree.
        bob5 = self.as_user("bob", proto=5)
        bob5.send(publish("sensors/bob/t", "x", qos=1, mid=1, proto=5))
        expect_ack(bob5, PUBACK, 1, 0x87)

    def test_pattern_user_name_is_not_a_wildcard(self):
        # A user called '+' must not read sensors/<anyone>/#.
        plus = self.as_user("+")
        plus.send(subscribe(1, [("sensors/#", 0)]))
        plus.expect(suback(1, [denied_sub(4, 0)]))
        self.feed("sensors/alice/t", "sensors/bob/t")
        plus.ping()
        plus.expect_nothing(0.5)

    def test_pattern_client_id(self):
        carol = self.as_user("carol", client_id="dev1", proto=5)
        admin = self.as_user("admin").subscribe_ok([("devices/#", 1)])
        for i, (t, code) in enumerate((("devices/dev1/out", None), ("devices/dev2/out", 0x87),
                                       ("devices/dev1/in", 0x87), ("devices/dev1", 0x87),
                                       ("devices/dev1/out/x", 0x87)), 1):
            carol.send(publish(t, t, qos=1, mid=i, proto=5))
            expect_ack(carol, PUBACK, i, code, "(%s by client dev1)" % t)
        # %c stands for a whole level: client "dev" may not write devices/dev1/out.
        dev = self.as_user("carol", client_id="dev", proto=5)
        dev.send(publish("devices/dev1/out", "x", qos=1, mid=1, proto=5))
        expect_ack(dev, PUBACK, 1, 0x87, "(client dev)")
        dev.send(publish("devices/dev/out", "devices/dev/out", qos=1, mid=2, proto=5))
        expect_ack(dev, PUBACK, 2)
        self.assertEqual(self.received_until(admin, "devices/dev/out"), ["devices/dev1/out"])

    # Retained messages, wills, $SYS -------------------------------------------

    def test_retained_messages_are_read_checked(self):
        u = unique_id("ret")
        self.feed("r/%s/x" % u, "bob/%s/x" % u, "public/%s/x" % u, retain=True)
        alice = self.as_user("alice")
        alice.subscribe_ok([("+/%s/#" % u, 1)])
        self.feed("a/%s/end" % u)
        self.assertEqual(self.received_until(alice, "a/%s/end" % u, retained=True), ["r/%s/x" % u])
        # A refused retained PUBLISH is not stored either.
        alice.send(publish("bob/%s/y" % u, "no", qos=1, mid=1, retain=True))
        alice.expect(puback(1))
        admin = self.as_user("admin").subscribe_ok([("bob/%s/#" % u, 1)])
        self.feed("bob/%s/end" % u)
        self.assertEqual(self.received_until(admin, "bob/%s/end" % u, retained=True), ["bob/%s/x" % u])
        self.feed("r/%s/x" % u, "bob/%s/x" % u, "public/%s/x" % u, qos=0, retain=True, payload=b"")

    def test_wills_are_write_checked(self):
        admin = self.as_user("admin").subscribe_ok([("#", 0)])
        for topic in ("bob/will", "a/will"):
            cid = unique_id("will")
            c = connected_client(self.port, cid, will=(topic, topic, 0, False), **login("alice"))
            c.close()  # no DISCONNECT: the will goes out, if allowed
            self.broker.wait_log(r"Client %s (disconnected|closed its connection)" % re.escape(cid))
        self.assertEqual(self.received_until(admin, "a/will"), [])

    def test_sys_needs_its_own_rule(self):
        admin = self.as_user("admin")
        admin.send(subscribe(1, [("$SYS/#", 0)]))
        admin.expect(suback(1, [denied_sub(4, 0)]))
        sysmon = self.as_user("sysmon")
        sysmon.subscribe_ok([("$SYS/broker/uptime", 0)])
        # The retained value, then one published after admin subscribed.
        self.received_until(sysmon, "$SYS/broker/uptime")
        self.received_until(sysmon, "$SYS/broker/uptime")
        admin.ping()
        admin.expect_nothing(0.3, "('#' in an ACL does not reach $SYS)")

    def test_clients_cannot_publish_to_sys(self):
        # Even with `topic write $SYS/#`, as in mosquitto 2.0.11.
        gw = self.as_user("gw", proto=5)
        gw.send(publish("$SYS/custom", "x", qos=1, mid=1, proto=5))
        expect_ack(gw, PUBACK, 1, 0x87)
        gw.ping()


class AclReload(SecureTestCase):

    # p/ is the probe topic that tells which file is in force.
    ACL1 = "user gw\ntopic write #\nuser alice\ntopic read a/#\ntopic read b/#\ntopic read p/#\n"
    ACL2 = "user gw\ntopic write #\nuser alice\ntopic read b/#\n"

    def start(self, acl):
        self.pw = make_password_file(os.path.join(self.tmp, "passwd"), PASSWORDS)
        self.acl = self.file("acl", acl)
        return self.start_broker(options={"allow_anonymous": False, "password_file": self.pw,
                                          "acl_file": self.acl})

    def feed_and_collect(self, sub, topics):
        """gw publishes topics then a fresh marker on b/end/N (QoS 0, in
        order); returns what `sub` got before the marker, leaving out the
        markers of earlier calls (other subscribers' probes)."""
        marker = "b/end/" + unique_id("m")
        gw = connected_client(self.port, unique_id(), **login("gw"))
        try:
            for t in topics + [marker]:
                gw.send(publish(t, t))
            gw.ping()
            return [t for t in received_until(self, sub, marker) if not t.startswith("b/end/")]
        finally:
            gw.close()

    def test_reload_rechecks_live_subscriptions(self):
        b = self.start(self.ACL1)
        alice = connected_client(self.port, unique_id(), **login("alice"))
        self.addCleanup(alice.close)
        alice.subscribe_ok([("a/#", 0), ("b/#", 0)])
        self.assertEqual(self.feed_and_collect(alice, ["a/x", "b/x"]), ["a/x", "b/x"])
        # ACL2 takes a/# away: the live subscription stops delivering at once
        # (both brokers), and alice stays connected.
        self.file("acl", self.ACL2)
        self.reload(b, lambda: self.feed_and_collect(alice, ["a/probe"]) == [],
                    "alice's a/# to stop delivering")
        self.assertEqual(self.feed_and_collect(alice, ["a/x", "b/x"]), ["b/x"])
        alice.ping()
        # ACL1 again: a newcomer reads p/ again.
        self.file("acl", self.ACL1)

        def acl1_back():
            c = connected_client(self.port, unique_id(), **login("alice"))
            try:
                c.send(subscribe(1, [("p/#", 0), ("b/#", 0)]))
                c.read_packet()  # SUBACK: granted or not, depending on the broker and the ACL
                return self.feed_and_collect(c, ["p/probe"]) == ["p/probe"]
            finally:
                c.close()
        self.reload(b, acl1_back, "ACL1 to be back in force")
        if is_mosquitto():
            # mosquitto keeps every subscription and checks reads per message:
            # alice's a/# delivers again.
            self.assertEqual(self.feed_and_collect(alice, ["a/x", "b/x"]), ["a/x", "b/x"])
        else:
            # midge dropped alice's a/# on the previous reload ("Client <id>
            # loses its subscription to a/#: the reloaded ACL denies it."):
            # granting it again does not bring it back.
            self.assertEqual(self.feed_and_collect(alice, ["a/x", "b/x"]), ["b/x"])
            b.wait_log(r"loses its subscription to a/#")

    def test_bad_acl_on_reload_keeps_the_old_policy(self):
        self.midge_only("mosquitto 2.0.11 logs 'Error: Invalid line in acl_file ...' and then "
                        "runs with no ACL at all: every client reads and writes everything")
        b = self.start(self.ACL1)
        alice = connected_client(self.port, unique_id(), **login("alice"))
        self.addCleanup(alice.close)
        alice.subscribe_ok([("#", 0)])  # granted: it overlaps what alice may read
        mark = len(b.log_lines)
        self.file("acl", self.ACL1 + "frobnicate c/#\n")
        b.signal(signal.SIGHUP)
        bad_line = len(self.ACL1.splitlines()) + 1
        wait_for(lambda: re.search(r"%s:%d\b" % (re.escape(self.acl), bad_line), b.log_since(mark)),
                 what="the reload error naming %s:%d" % (self.acl, bad_line))
        self.assertEqual(self.feed_and_collect(alice, ["a/x", "c/x"]), ["a/x"])
        c = connected_client(self.port, unique_id(), **login("alice"))
        self.addCleanup(c.close)
        c.subscribe_ok([("#", 0)])
        self.assertEqual(self.feed_and_collect(c, ["a/x", "c/x"]), ["a/x"])


class BadAclFiles(SecureTestCase):

    def check_refused(self, text, bad_line, what):
        pw = make_password_file(os.path.join(self.tmp, "passwd"), {"alice": "a"})
        acl = self.file("acl", text)
        rc, log = self.start_refused(options={"allow_anonymous": False, "password_file": pw,
                                              "acl_file": acl})
        self.assertNotEqual(rc, 0, what)
        self.assertIn(acl, log, what)
        if not is_mosquitto():
            # mosquitto names only the file ('Error: Invalid line in acl_file
            # "PATH": frobnicate.'); midge names file:line.
            self.assertRegex(log, r"%s:%d\b" % (re.escape(acl), bad_line), what)

    def test_unknown_keyword(self):
        self.check_refused("user alice\ntopic read a/#\nfrobnicate a/#\n", 3, "unknown keyword")

    def test_unknown_access(self):
        self.check_refused("topic read x\n\nuser alice\ntopic readonly a/#\n", 4, "unknown access type")

    def test_topic_without_a_topic(self):
        self.check_refused("user alice\ntopic\n", 2, "empty topic")

    def test_missing_acl_file(self):
        pw = make_password_file(os.path.join(self.tmp, "passwd"), {"alice": "a"})
        missing = os.path.join(self.tmp, "no-such-acl")
        rc, log = self.start_refused(options={"allow_anonymous": False, "password_file": pw,
                                              "acl_file": missing})
        self.assertNotEqual(rc, 0)
        self.assertIn(missing, log)


if __name__ == "__main__":
    main()
