#!/usr/bin/python3
"""Authentication: password files made by mosquitto_passwd ($7$ PBKDF2-SHA512
and $6$ SHA512), CONNACK codes for MQTT 3.1, 3.1.1 and 5, allow_anonymous and
its default, per-listener settings, clientid_prefixes,
use_username_as_clientid, SIGHUP reload of the password file, and password
files the broker must refuse.

Where mosquitto 2.0.11 differs from what midge promises, the assertion is
target-dependent and says why:
  * a wrong password: mosquitto answers 5 / 0x87 (not authorised) to every
    refusal; midge answers 4 / 0x86 (bad user name or password) as MQTT
    intends, and an unknown user gets the same answer as a wrong password
    on both (refusals must not tell which user names exist);
  * SIGHUP: mosquitto re-checks connected clients against the new file and
    drops those whose password no longer matches; midge leaves connected
    clients alone (DESIGN.md: reload "without dropping clients");
  * a malformed password file: mosquitto starts and drops the bad entries;
    midge refuses to start and names file:line.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_14_auth.py
"""

import os
import re
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (PUBACK, LoginWitness, PahoClient, SecureBroker,  # noqa: E402
                       SecureTestCase, Witness, _stop_checked, connack_code, connect,
                       connected_client, disconnect, expect_ack, is_mosquitto, main,
                       make_password_file, mosquitto_pub, private_dir, publish, puback,
                       unique_id, wait_for)

USERS = {"alice": "alice-pw", "carol": "carol pw with spaces"}
SHA512_USERS = {"bob": "bob-pw"}

# CONNACK codes for (MQTT 3.1.1 / 3.1, MQTT 5).
NOT_AUTHORISED = (5, 0x87)
# A wrong password: see the module docstring.
BAD_CREDENTIALS = NOT_AUTHORISED if is_mosquitto() else (4, 0x86)


def code_for(codes, proto):
    return codes[1] if proto == 5 else codes[0]


class PasswordFile(SecureTestCase):
    """One broker for the class: allow_anonymous false and a password file."""

    @classmethod
    def setUpClass(cls):
        cls.dir = private_dir()
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.pwfile = os.path.join(cls.dir, "passwd")
        make_password_file(cls.pwfile, USERS)
        make_password_file(cls.pwfile, SHA512_USERS, hash_type="sha512")
        cls.shared = SecureBroker(options={"allow_anonymous": False, "password_file": cls.pwfile})
        cls.addClassCleanup(_stop_checked, cls.shared)

    def setUp(self):
        super().setUp()
        self.broker, self.port = self.shared, self.shared.port

    def tearDown(self):
        if not self.broker.alive():
            self.fail("the broker died during the test:\n" + self.broker.log())

    def test_file_has_both_hash_formats(self):
        with open(self.pwfile) as f:
            lines = dict(line.rstrip("\n").split(":", 1) for line in f if line.strip())
        self.assertTrue(lines["alice"].startswith("$7$"), lines["alice"])
        self.assertTrue(lines["bob"].startswith("$6$"), lines["bob"])

    def test_right_password_is_accepted(self):
        for proto in (3, 4, 5):
            for user, password in (("alice", USERS["alice"]), ("bob", SHA512_USERS["bob"]),
                                   ("carol", USERS["carol"])):
                with self.subTest(proto=proto, user=user):
                    self.assertEqual(connack_code(self.port, proto=proto, username=user,
                                                  password=password), 0)

    def test_accepted_client_works(self):
        t = self.topic()
        sub = self.client(username="alice", password=USERS["alice"]).subscribe_ok([(t, 1)])
        pub = self.client(username="bob", password=SHA512_USERS["bob"], proto=5)
        pub.send(publish(t, "hello", qos=1, mid=7, proto=5))
        expect_ack(pub, PUBACK, 7)
        sub.send(puback(sub.expect_publish(t, "hello", qos=1)))
        sub.ping()

    def test_wrong_password(self):
        for proto in (3, 4, 5):
            for user, wrong in (("alice", "alice-PW"), ("bob", "bob-pw "), ("alice", ""),
                                ("carol", "carol pw")):
                with self.subTest(proto=proto, user=user, password=wrong):
                    self.assertEqual(connack_code(self.port, proto=proto, username=user, password=wrong),
                                     code_for(BAD_CREDENTIALS, proto))

    def test_refused_connection_is_closed(self):
        c = self.raw()
        c.send(connect(unique_id(), username="alice", password="nope"))
        got = c.read_packet()
        self.assertEqual(got, bytes([0x20, 2, 0, BAD_CREDENTIALS[0]]))
        c.expect_closed()

    def test_unknown_user_answered_like_a_wrong_password(self):
        for proto in (4, 5):
            with self.subTest(proto=proto):
                unknown = connack_code(self.port, proto=proto, username="mallory", password="alice-pw")
                wrong = connack_code(self.port, proto=proto, username="alice", password="mallory")
                self.assertEqual(unknown, wrong, "an unknown user must look like a wrong password")
                self.assertEqual(unknown, code_for(BAD_CREDENTIALS, proto))

    def test_user_name_without_password(self):
        # Answered like a wrong password (mosquitto: 5 / 0x87, midge 4 / 0x86).
        for proto in (4, 5):
            with self.subTest(proto=proto):
                self.assertEqual(connack_code(self.port, proto=proto, username="alice"),
                                 code_for(BAD_CREDENTIALS, proto))

    def test_no_user_name_is_not_authorised(self):
        for proto in (3, 4, 5):
            with self.subTest(proto=proto):
                self.assertEqual(connack_code(self.port, proto=proto), code_for(NOT_AUTHORISED, proto))

    def test_user_names_are_case_sensitive(self):
        self.assertEqual(connack_code(self.port, username="Alice", password=USERS["alice"]),
                         BAD_CREDENTIALS[0])

    def test_refusals_disturb_nobody(self):
        with self.witness_auth().around():
            for proto, kw in ((4, {"username": "alice", "password": "x"}), (5, {}),
                              (4, {"username": "mallory", "password": "y"})):
                self.assertNotEqual(connack_code(self.port, proto=proto, **kw), 0)

    def witness_auth(self):
        w = LoginWitness(self.port, username="bob", password=SHA512_USERS["bob"])
        self.addCleanup(w.close)
        return w

    def test_refusal_is_logged_without_the_password(self):
        cid = unique_id("refused")
        secret = "s3cr3t-" + unique_id("pw")
        self.assertNotEqual(connack_code(self.port, client_id=cid, username="alice", password=secret), 0)
        # Some line about the refusal, then make sure everything is logged.
        self.broker.wait_log(r"(?i)not authori[sz]ed|refused|bad user")
        self.assertNotIn(secret, self.broker.log())
        if not is_mosquitto():
            # midge: one line with the address, client id and user name.
            # (mosquitto 2.0.11 logs "Sending CONNACK to 127.0.0.1 (0, 5)" and
            # "Client <unknown> disconnected, not authorised.": no id, no user.)
            self.broker.wait_log(r"^(?=.*127\.0\.0\.1)(?=.*\b%s\b)(?=.*\balice\b).*" % re.escape(cid))

    def test_paho_and_mosquitto_clients_with_credentials(self):
        t = self.topic()
        sub = PahoClient(self.port, client_id=unique_id("paho"), username="alice", password=USERS["alice"])
        self.addCleanup(sub.close)
        self.assertEqual(sub.subscribe(t, 1), [1])
        mosquitto_pub(self.port, "-t", t, "-q", 1, "-m", "from pub", "-u", "bob", "-P", SHA512_USERS["bob"])
        self.assertEqual(sub.wait_messages(1), [(t, b"from pub", 1, False)])
        res = mosquitto_pub(self.port, "-t", t, "-m", "x", "-u", "bob", "-P", "wrong", check=False)
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertRegex(res.stdout, r"(?i)connection refused|not authori[sz]ed|bad user")
        refused = PahoClient(self.port, client_id=unique_id("paho"), username="alice", password="no",
                             expect_rc=None)
        self.addCleanup(refused.close)
        self.assertEqual(refused.connack[1], BAD_CREDENTIALS[0])
        sub.publish(t, b"still here", qos=1)
        sub.wait_for(lambda m: (t, b"still here", 1, False) in m, what="own message")


class Anonymous(SecureTestCase):

    def test_default_refuses_anonymous_once_a_listener_is_configured(self):
        # mosquitto 2.0: allow_anonymous defaults to false when listeners are
        # configured; midge does the same.
        self.start_broker(options={"allow_anonymous": None})
        for proto in (4, 5):
            with self.subTest(proto=proto):
                self.assertEqual(connack_code(self.port, proto=proto), code_for(NOT_AUTHORISED, proto))
        # A user name with nothing to check it against is refused too.
        self.assertEqual(connack_code(self.port, username="alice", password="x"), 5)

    def test_default_with_a_password_file(self):
        pw = self.password_file(USERS)
        self.start_broker(options={"allow_anonymous": None, "password_file": pw})
        self.assertEqual(connack_code(self.port), 5)
        self.assertEqual(connack_code(self.port, username="alice", password=USERS["alice"]), 0)

    def test_allow_anonymous_with_a_password_file(self):
        pw = self.password_file(USERS)
        self.start_broker(options={"allow_anonymous": True, "password_file": pw})
        self.assertEqual(connack_code(self.port), 0)
        self.assertEqual(connack_code(self.port, username="alice", password=USERS["alice"]), 0)
        # Giving a user name means being checked: a wrong password is refused.
        for proto in (4, 5):
            with self.subTest(proto=proto):
                self.assertEqual(connack_code(self.port, proto=proto, username="alice", password="no"),
                                 code_for(BAD_CREDENTIALS, proto))

    def test_per_listener_settings(self):
        pw = self.password_file(USERS)
        b = self.start_broker(options={"per_listener_settings": True},
                              listeners=[{"password_file": pw, "allow_anonymous": False},
                                         {"allow_anonymous": True}])
        secured, open_ = b.ports
        self.assertEqual(connack_code(secured), 5)
        self.assertEqual(connack_code(secured, username="alice", password="no"), BAD_CREDENTIALS[0])
        self.assertEqual(connack_code(secured, username="alice", password=USERS["alice"]), 0)
        self.assertEqual(connack_code(open_), 0)
        # No password file on the open listener: a user name is taken as given,
        # whatever the password (mosquitto 2.0.11 does the same).
        self.assertEqual(connack_code(open_, username="alice", password="anything"), 0)
        # Both listeners share one broker: messages cross.
        t = self.topic()
        sub = self.client(port=open_).subscribe_ok([(t, 1)])
        pub = self.client(port=secured, username="alice", password=USERS["alice"])
        pub.send(publish(t, "across", qos=1, mid=1))
        pub.expect(puback(1))
        sub.send(puback(sub.expect_publish(t, "across", qos=1)))
        sub.ping()

    def test_per_listener_default_is_no_anonymous(self):
        pw = self.password_file(USERS)
        b = self.start_broker(options={"per_listener_settings": True},
                              listeners=[{"password_file": pw}, {}])
        for port in b.ports:
            with self.subTest(port=port):
                self.assertEqual(connack_code(port), 5)
        self.assertEqual(connack_code(b.ports[0], username="alice", password=USERS["alice"]), 0)
        self.assertEqual(connack_code(b.ports[1], username="alice", password=USERS["alice"]), 5)

    def test_clientid_prefixes(self):
        self.start_broker(options={"clientid_prefixes": "good-"})
        self.assertEqual(connack_code(self.port, client_id="good-1"), 0)
        self.assertEqual(connack_code(self.port, client_id="bad-1"), 5)
        self.assertEqual(connack_code(self.port, client_id="bad-2", proto=5), 0x87)
        self.assertEqual(connack_code(self.port, client_id="goo"), 5)
        # An empty client id has no prefix either.
        self.assertEqual(connack_code(self.port, client_id=""), 5)
        with self.witness_with_prefix().around():
            self.assertEqual(connack_code(self.port, client_id="x-good-"), 5)

    def witness_with_prefix(self):
        w = Witness(self.port, name="good-" + unique_id("w"))
        self.addCleanup(w.close)
        return w


class UsernameAsClientId(SecureTestCase):

    def setUp(self):
        super().setUp()
        pw = self.password_file(USERS)
        make_password_file(pw, SHA512_USERS, hash_type="sha512")
        self.start_broker(options={"allow_anonymous": True, "password_file": pw},
                          listeners=[{"use_username_as_clientid": True}])

    def test_user_name_replaces_the_client_id(self):
        first = connected_client(self.port, "one", username="alice", password=USERS["alice"])
        self.addCleanup(first.close)
        first.ping()
        # Another connection by alice under another id takes her session over.
        second = connected_client(self.port, "two", username="alice", password=USERS["alice"])
        self.addCleanup(second.close)
        first.expect_closed(msg="(taken over: both are client 'alice')")
        second.ping()

    def test_session_belongs_to_the_user_name(self):
        t = self.topic()
        c = connected_client(self.port, "one", clean=False, username="bob", password=SHA512_USERS["bob"])
        c.subscribe_ok([(t, 1)])
        c.send(disconnect())
        c.close()
        again = connected_client(self.port, "another-id", clean=False, session_present=True,
                                 username="bob", password=SHA512_USERS["bob"])
        self.addCleanup(again.close)
        pub = self.client(username="carol", password=USERS["carol"])  # anonymous is refused here
        pub.send(publish(t, "kept", qos=1, mid=1))
        pub.expect(puback(1))
        again.send(puback(again.expect_publish(t, "kept", qos=1)))
        again.ping()

    def test_empty_client_id_is_fine(self):
        for proto in (4, 5):
            with self.subTest(proto=proto):
                self.assertEqual(connack_code(self.port, client_id="", proto=proto, username="carol",
                                              password=USERS["carol"]), 0)
        self.broker.wait_log(r"New client connected from \S+ as carol \(p[25], c1, k60, u'carol'\)")

    def test_no_user_name_is_refused(self):
        # Nothing to use as the client id: not authorised (as mosquitto 2.0.11).
        self.assertEqual(connack_code(self.port, client_id="anon"), 5)
        self.assertEqual(connack_code(self.port, client_id="anon", proto=5), 0x87)


class Reload(SecureTestCase):

    def start(self):
        self.pw = self.password_file(USERS)
        make_password_file(self.pw, SHA512_USERS, hash_type="sha512")
        return self.start_broker(options={"allow_anonymous": False, "password_file": self.pw})

    def test_new_password_takes_effect(self):
        b = self.start()
        alice = connected_client(self.port, unique_id(), username="alice", password=USERS["alice"])
        alice5 = connected_client(self.port, unique_id(), proto=5, username="alice", password=USERS["alice"])
        bob = connected_client(self.port, unique_id(), username="bob", password=SHA512_USERS["bob"])
        for c in (alice, alice5, bob):
            self.addCleanup(c.close)
        make_password_file(self.pw, {"alice": "alice-new", "dave": "dave-pw"})
        self.reload(b, lambda: connack_code(self.port, username="alice", password="alice-new") == 0,
                    "alice's new password to work")
        self.assertEqual(connack_code(self.port, username="dave", password="dave-pw"), 0)
        self.assertEqual(connack_code(self.port, username="alice", password=USERS["alice"]),
                         BAD_CREDENTIALS[0])
        self.assertEqual(connack_code(self.port, username="bob", password=SHA512_USERS["bob"]), 0)
        bob.ping("(bob's password did not change: he stays connected)")
        if is_mosquitto():
            # mosquitto 2.0.11 checks every connected client against the new
            # file and closes, without a DISCONNECT packet, those it would now
            # refuse ("Client <id> disconnected." in its log).
            alice.expect_closed()
            alice5.expect_closed()
        else:
            # midge: a reload leaves connected clients alone.
            alice.ping("(a reload leaves connected clients alone)")
            alice5.ping("(a reload leaves connected clients alone)")

    def test_removed_user(self):
        b = self.start()
        carol = connected_client(self.port, unique_id(), username="carol", password=USERS["carol"])
        self.addCleanup(carol.close)
        os.unlink(self.pw)
        make_password_file(self.pw, {"alice": USERS["alice"]})
        self.reload(b, lambda: connack_code(self.port, username="carol", password=USERS["carol"]) != 0,
                    "carol to be refused")
        self.assertEqual(connack_code(self.port, username="alice", password=USERS["alice"]), 0)
        if is_mosquitto():
            carol.expect_closed()  # re-checked on reload: see test_new_password_takes_effect
        else:
            carol.ping()

    def test_missing_password_file_on_reload(self):
        b = self.start()
        alice = connected_client(self.port, unique_id(), username="alice", password=USERS["alice"])
        self.addCleanup(alice.close)
        os.unlink(self.pw)
        if is_mosquitto():
            # mosquitto 2.0.11 logs 'Error: Unable to open pwfile "...".', keeps
            # running with nobody allowed in and closes every client.
            mark = len(b.log_lines)
            self.reload(b, lambda: connack_code(self.port, username="alice", password=USERS["alice"]) != 0)
            b.wait_log(r'Unable to open pwfile "%s"' % re.escape(self.pw))
            self.assertNotIn("running", b.log_since(mark))
            alice.expect_closed()
            return
        # midge: the reload fails as a whole, naming the file, and the old
        # password file stays in force.
        mark = len(b.log_lines)
        b.signal(signal.SIGHUP)
        wait_for(lambda: re.search(re.escape(self.pw), b.log_since(mark)), what="an error naming the file")
        self.assertEqual(connack_code(self.port, username="alice", password=USERS["alice"]), 0)
        alice.ping()


class BadPasswordFiles(SecureTestCase):

    def good_lines(self):
        pw = self.password_file(USERS, name="good")
        with open(pw) as f:
            return f.read()

    def test_missing_password_file_refuses_start(self):
        missing = os.path.join(self.tmp, "no-such-passwd")
        rc, log = self.start_refused(options={"allow_anonymous": False, "password_file": missing})
        self.assertNotEqual(rc, 0)
        # mosquitto: 'Error: Unable to open pwfile "<path>".', exit status 13.
        self.assertIn(missing, log)

    def check_malformed(self, bad_line, why):
        text = self.good_lines() + bad_line + "\n"
        pw = self.file("passwd", text)
        bad_lineno = text.count("\n")
        if is_mosquitto():
            # mosquitto 2.0.11 starts anyway: it skips a line without ':'
            # silently and drops an entry whose hash it cannot read ("Error:
            # Invalid password hash type for user carol, removing entry.").
            b = self.start_broker(options={"allow_anonymous": False, "password_file": pw})
            self.assertEqual(connack_code(b.port, username="alice", password=USERS["alice"]), 0)
            return
        # midge refuses to start and names file:line.
        rc, log = self.start_refused(options={"allow_anonymous": False, "password_file": pw})
        self.assertNotEqual(rc, 0, why)
        self.assertRegex(log, r"%s:%d\b" % (re.escape(pw), bad_lineno), why)

    def test_line_without_colon(self):
        self.check_malformed("just-a-user-name", "a line without ':'")

    def test_plain_text_password(self):
        self.check_malformed("dave:plain-text-password", "a plain-text password")

    def test_malformed_file_on_reload_keeps_the_old_one(self):
        self.midge_only("mosquitto 2.0.11 applies the file without its bad entries "
                        "(and closes clients it now refuses)")
        pw = self.file("passwd", self.good_lines())
        b = self.start_broker(options={"allow_anonymous": False, "password_file": pw})
        alice = connected_client(self.port, unique_id(), username="alice", password=USERS["alice"])
        self.addCleanup(alice.close)
        mark = len(b.log_lines)
        # alice's line replaced by a plain-text password, and a line without ':'.
        self.file("passwd", "alice:alice-new\nbroken\n")
        b.signal(signal.SIGHUP)
        wait_for(lambda: re.search(r"%s:1\b" % re.escape(pw), b.log_since(mark)),
                 what="the reload error naming %s:1" % pw)
        # The old file is still in force: the hashed password works and the
        # plain text one does not.
        self.assertEqual(connack_code(self.port, username="alice", password=USERS["alice"]), 0)
        self.assertEqual(connack_code(self.port, username="carol", password=USERS["carol"]), 0)
        self.assertEqual(connack_code(self.port, username="alice", password="alice-new"), 4)
        alice.ping()


if __name__ == "__main__":
    main()
