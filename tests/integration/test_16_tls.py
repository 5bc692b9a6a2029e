#!/usr/bin/python3
"""TLS listeners: paho-mqtt with tls_set(), tls_set_context() and
tls_insecure_set(), mosquitto_pub/sub --cafile, client certificates
(require_certificate, another CA, expired, revoked with crlfile),
use_identity_as_username and use_subject_as_username checked through an ACL,
tls_version, a plain MQTT client on a TLS port, PSK (psk_file, psk_hint) with
mosquitto_pub/sub, SIGHUP with a replaced certificate, and certificate files
the broker must refuse.

Certificates come from scripts/gen-test-certs.sh, made once for this module.

midge-only: the broker's log names the client's address for every refused
TLS handshake (mosquitto 2.0.11 logs "OpenSSL Error[0]: ... certificate
verify failed" and "Client <unknown> disconnected: Protocol error." without
it).

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_16_tls.py
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (PUBACK, Certs, MosquittoSub, PahoTransportClient, RawClient,  # noqa: E402
                       SecureBroker, SecureTestCase, TLSRawClient, Witness, _stop_checked,
                       connect, expect_ack, is_mosquitto, main,
                       mosquitto_pub, private_dir, publish, puback, tls_connack, tls_context,
                       unique_id, wait_for, write_file)

# paho 1.6 and the TLS 1.1 case use deprecated ssl names.
warnings.filterwarnings("ignore", category=DeprecationWarning)

CERTS = None

ACL = """\
topic readwrite #

user alice
topic readwrite alice/#

user bob
topic readwrite bob/#

user CN=alice,OU=clients,O=midge test
topic readwrite subject/#
"""

LISTENERS = ["plain", "tls", "wrongname", "require", "crl", "identity", "subject", "tls13", "tls12",
             "ciphers", "capath"]
# The only TLS 1.2 cipher suite the "ciphers" listener allows.
CIPHER = "ECDHE-ECDSA-AES256-GCM-SHA384"


def setUpModule():
    global CERTS
    CERTS = Certs(["alice", "bob"])


def tearDownModule():
    if CERTS:
        CERTS.cleanup()


def der(name):
    with open(CERTS.path(name)) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def refused(result):
    """A tls_connack() result that means the broker would not talk MQTT."""
    return result[0] in ("handshake", "closed")


class Tls(SecureTestCase):
    """One broker with a listener per TLS setting (see LISTENERS)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = private_dir()
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        acl = write_file(cls.dir, "acl", ACL)
        # capath: a directory of CA certificates named by subject hash.
        capath = os.path.join(cls.dir, "capath")
        os.mkdir(capath)
        shutil.copy(CERTS.ca, os.path.join(capath, "midge-test-ca.pem"))
        subprocess.run(["openssl", "rehash", capath], check=True)
        server = CERTS.server_listener
        listeners = [
            {},
            server(),
            server(certfile=CERTS.path("wrongname.crt"), keyfile=CERTS.path("wrongname.key")),
            server(require_certificate=True),
            server(require_certificate=True, crlfile=CERTS.path("crl.pem")),
            server(require_certificate=True, use_identity_as_username=True),
            server(require_certificate=True, use_subject_as_username=True),
            server(tls_version="tlsv1.3"),
            server(tls_version="tlsv1.2"),
            server(ciphers=CIPHER),
            {"capath": capath, "certfile": CERTS.path("server.crt"), "keyfile": CERTS.path("server.key"),
             "require_certificate": True},
        ]
        cls.shared = SecureBroker(options={"allow_anonymous": True, "acl_file": acl},
                                  listeners=listeners)
        cls.addClassCleanup(_stop_checked, cls.shared)
        cls.ports = dict(zip(LISTENERS, cls.shared.ports))

    def setUp(self):
        super().setUp()
        self.broker, self.port = self.shared, self.ports["plain"]

    def tearDown(self):
        if not self.broker.alive():
            self.fail("the broker died during the test:\n" + self.broker.log())

    def paho(self, listener, **kw):
        c = PahoTransportClient(self.ports[listener], client_id=kw.pop("client_id", unique_id("paho")), **kw)
        self.addCleanup(c.close)
        return c

    def tls_client(self, listener, context=None, client_id=None, **kw):
        c = TLSRawClient(self.ports[listener], context or tls_context(CERTS.ca))
        self.addCleanup(c.close)
        c.send(connect(client_id or unique_id("tls"), **kw))
        got = c.read_packet()
        self.assertEqual(got[:4], bytes([0x20, got[1], 0, 0]), "CONNACK 0 expected")
        return c

    def assert_exchange(self, sender, receiver, topic=None):
        """paho sender -> paho receiver, QoS 1, on a fresh topic."""
        topic = topic or self.topic()
        self.assertEqual(receiver.subscribe(topic, 1), [1])
        sender.publish(topic, b"over tls \x00\xff", qos=1)
        self.assertEqual(receiver.wait_messages(1), [(topic, b"over tls \x00\xff", 1, False)])

    def assert_tls_failure_logged(self, mark):
        if not is_mosquitto():
            wait_for(lambda: re.search(r"(?im)^(?=.*127\.0\.0\.1)(?=.*(tls|ssl|handshake|certificate)).*$",
                                       self.broker.log_since(mark)),
                     what="a log line with the client's address about the failed handshake")

    # Server side ------------------------------------------------------------

    def test_paho_tls_set_ca_certs(self):
        tls = self.paho("tls", tls={"ca_certs": CERTS.ca})
        plain = self.paho("plain")
        self.assert_exchange(tls, plain)
        self.assert_exchange(plain, tls)

    def test_paho_tls_set_context(self):
        ctx = ssl.create_default_context(cafile=CERTS.ca)
        tls = self.paho("tls", tls=ctx)
        self.assert_exchange(tls, tls)

    def test_paho_protocol_5_over_tls(self):
        tls = self.paho("tls", tls={"ca_certs": CERTS.ca}, protocol=5)
        plain = self.paho("plain", protocol=5)
        self.assert_exchange(tls, plain)

    def test_server_certificate_names(self):
        c = TLSRawClient(self.ports["tls"], tls_context(CERTS.ca), server_hostname="localhost")
        self.addCleanup(c.close)
        self.assertEqual(c.sock.getpeercert(True), der("server.crt"))
        # The certificate also names 127.0.0.1 (what mosquitto_pub -h checks).
        self.assertEqual(tls_connack(self.ports["tls"], tls_context(CERTS.ca), server_hostname="127.0.0.1"),
                         ("connack", 0))

    def test_name_mismatch_refused_unless_insecure(self):
        bad = self.paho("wrongname", tls={"ca_certs": CERTS.ca}, expect_rc=None)
        self.assertIsInstance(bad.connect_error, ssl.SSLCertVerificationError)
        self.assertIn("mismatch", str(bad.connect_error))
        insecure = self.paho("wrongname", tls={"ca_certs": CERTS.ca}, insecure=True)
        self.assertEqual(insecure.connack[1], 0)
        self.assert_exchange(insecure, insecure)

    def test_untrusted_server_certificate(self):
        kind, err = tls_connack(self.ports["tls"], tls_context(CERTS.path("other-ca.crt")))
        self.assertEqual(kind, "handshake")
        self.assertIsInstance(err, ssl.SSLCertVerificationError)

    def test_mosquitto_pub_sub_cafile(self):
        t = self.topic()
        port = self.ports["tls"]
        with MosquittoSub(port, [t], qos=1, args=["--cafile", CERTS.ca, "-C", 2, "-W", 10]) as sub:
            mosquitto_pub(port, "--cafile", CERTS.ca, "-t", t, "-q", 1, "-m", "one")
            mosquitto_pub(self.ports["plain"], "-t", t, "-q", 1, "-m", "two")
            self.assertEqual(sub.wait_exit(10), 0, sub.output())
            self.assertEqual(sub.messages, [(t, b"one", 1, False), (t, b"two", 1, False)])
        # Without the CA, mosquitto_pub refuses the server.
        res = mosquitto_pub(port, "-t", t, "-m", "x", "--capath", "/nonexistent", check=False)
        self.assertNotEqual(res.returncode, 0, res.stdout)

    # Client certificates -------------------------------------------------------

    def test_client_certificate_accepted(self):
        crt, key = CERTS.client("alice")
        c = self.paho("require", tls={"ca_certs": CERTS.ca, "certfile": crt, "keyfile": key})
        self.assert_exchange(c, self.paho("plain"))

    def test_client_certificate_refusals(self):
        cases = {
            "no certificate": tls_context(CERTS.ca),
            "another CA": tls_context(CERTS.ca, *CERTS.pair("other-client")),
            "expired": tls_context(CERTS.ca, *CERTS.pair("expired")),
        }
        survivor = self.tls_client("require", tls_context(CERTS.ca, *CERTS.client("bob")))
        with Witness(self.ports["plain"]).around() as w:
            self.addCleanup(w.close)
            for what, ctx in cases.items():
                for maximum in (None, ssl.TLSVersion.TLSv1_2):
                    with self.subTest(what, tls="1.2" if maximum else "default"):
                        if maximum:
                            ctx.maximum_version = maximum
                        mark = len(self.broker.log_lines)
                        result = tls_connack(self.ports["require"], ctx)
                        self.assertTrue(refused(result), result)
                        self.assert_tls_failure_logged(mark)
        survivor.ping("(a TLS client connected before the refusals)")

    def test_client_certificate_with_paho_refused(self):
        # With TLS 1.2 the refusal comes in the handshake, so paho's connect()
        # raises. (With TLS 1.3 the alert comes after the handshake and paho
        # 1.6's network thread dies of the unhandled ssl.SSLError: the raw
        # client tests above cover that case.)
        ctx = tls_context(CERTS.ca, maximum=ssl.TLSVersion.TLSv1_2)
        c = self.paho("require", tls=ctx, expect_rc=None)
        self.assertIsInstance(c.connect_error, ssl.SSLError)
        self.assertFalse(c.connected.is_set())
        crt, key = CERTS.client("bob")
        ok = self.paho("require", tls=tls_context(CERTS.ca, crt, key, maximum=ssl.TLSVersion.TLSv1_2))
        self.assertEqual(ok.connack[1], 0)

    def test_crlfile(self):
        revoked = tls_context(CERTS.ca, *CERTS.pair("revoked"))
        self.assertTrue(refused(tls_connack(self.ports["crl"], revoked)))
        self.assertEqual(tls_connack(self.ports["crl"], tls_context(CERTS.ca, *CERTS.client("alice"))),
                         ("connack", 0))
        # Without crlfile the same certificate is fine.
        self.assertEqual(tls_connack(self.ports["require"], tls_context(CERTS.ca, *CERTS.pair("revoked"))),
                         ("connack", 0))

    def test_use_identity_as_username(self):
        alice = self.tls_client("identity", tls_context(CERTS.ca, *CERTS.client("alice")), proto=5)
        alice.send(publish("alice/x", "mine", qos=1, mid=1, proto=5))
        expect_ack(alice, PUBACK, 1, msg="(alice/# is alice's)")
        alice.send(publish("bob/x", "not mine", qos=1, mid=2, proto=5))
        expect_ack(alice, PUBACK, 2, 0x87, "(bob/# is not alice's)")
        # The certificate's CN wins over a user name in CONNECT.
        posing = self.tls_client("identity", tls_context(CERTS.ca, *CERTS.client("alice")), proto=5,
                                 username="bob", password="whatever")
        posing.send(publish("bob/x", "still not mine", qos=1, mid=1, proto=5))
        expect_ack(posing, PUBACK, 1, 0x87, "(user name bob in CONNECT, certificate alice)")
        bob = self.tls_client("identity", tls_context(CERTS.ca, *CERTS.client("bob")), proto=5)
        bob.send(publish("bob/x", "mine", qos=1, mid=1, proto=5))
        expect_ack(bob, PUBACK, 1)
        self.broker.wait_log(r"New client connected from \S+ as \S+ \(p5, c1, k60, u'alice'\)")

    def test_use_subject_as_username(self):
        c = self.tls_client("subject", tls_context(CERTS.ca, *CERTS.client("alice")), proto=5)
        # The user name is the subject in RFC 2253 form: "CN=alice,OU=clients,O=midge test".
        c.send(publish("subject/x", "by subject", qos=1, mid=1, proto=5))
        expect_ack(c, PUBACK, 1)
        c.send(publish("alice/x", "not by CN", qos=1, mid=2, proto=5))
        expect_ack(c, PUBACK, 2, 0x87)
        self.broker.wait_log(r"u'CN=alice,OU=clients,O=midge test'")

    # Protocol versions ------------------------------------------------------------

    def negotiated(self, listener, **kw):
        try:
            c = TLSRawClient(self.ports[listener], tls_context(CERTS.ca, **kw))
        except (ssl.SSLError, OSError):
            return None
        try:
            c.send(connect(unique_id("v")))
            got = c.read_packet()
            return c.sock.version() if got == bytes([0x20, 2, 0, 0]) else "refused"
        except Exception:
            return None
        finally:
            c.close()

    def test_tls_version_13(self):
        v = ssl.TLSVersion
        self.assertIsNone(self.negotiated("tls13", maximum=v.TLSv1_2))
        self.assertEqual(self.negotiated("tls13"), "TLSv1.3")

    def test_tls_version_12(self):
        # tls_version is the lowest version accepted: TLS 1.3 stays allowed
        # (mosquitto 2.0.11 and midge), 1.1 does not.
        v = ssl.TLSVersion
        self.assertIsNone(self.negotiated("tls12", minimum=v.TLSv1_1, maximum=v.TLSv1_1))
        self.assertEqual(self.negotiated("tls12", maximum=v.TLSv1_2), "TLSv1.2")
        self.assertEqual(self.negotiated("tls12", minimum=v.TLSv1_3), "TLSv1.3")
        # Without tls_version both are fine.
        self.assertEqual(self.negotiated("tls", maximum=v.TLSv1_2), "TLSv1.2")
        self.assertEqual(self.negotiated("tls"), "TLSv1.3")

    def test_ciphers(self):
        # `ciphers` limits TLS 1.2 cipher suites (TLS 1.3 has its own list).
        v = ssl.TLSVersion
        ctx = tls_context(CERTS.ca, maximum=v.TLSv1_2)
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(tls_connack(self.ports["ciphers"], ctx)[0], "handshake")
        ctx = tls_context(CERTS.ca, maximum=v.TLSv1_2)
        ctx.set_ciphers(CIPHER)
        c = TLSRawClient(self.ports["ciphers"], ctx)
        self.addCleanup(c.close)
        self.assertEqual(c.sock.cipher()[0], CIPHER)
        c.send(connect(unique_id("cipher")))
        c.expect(bytes([0x20, 2, 0, 0]))
        # Another listener accepts the other suite.
        ctx = tls_context(CERTS.ca, maximum=v.TLSv1_2)
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        self.assertEqual(tls_connack(self.ports["tls"], ctx), ("connack", 0))

    def test_capath(self):
        self.assertEqual(tls_connack(self.ports["capath"], tls_context(CERTS.ca, *CERTS.client("alice"))),
                         ("connack", 0))
        self.assertTrue(refused(tls_connack(self.ports["capath"],
                                            tls_context(CERTS.ca, *CERTS.pair("other-client")))))

    # Plain text on a TLS port -------------------------------------------------------

    def test_plain_mqtt_on_a_tls_port(self):
        survivor = self.tls_client("tls")
        with Witness(self.ports["plain"]).around() as w:
            self.addCleanup(w.close)
            mark = len(self.broker.log_lines)
            c = RawClient(self.ports["tls"])
            self.addCleanup(c.close)
            c.send(connect(unique_id("plain")))
            # No CONNACK: at most a TLS alert record, then the connection closes.
            data = b""
            c.sock.settimeout(5)
            try:
                while True:
                    chunk = c.sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            except socket.timeout:
                self.fail("the broker kept a plain-text connection open on a TLS port")
            self.assertFalse(data.startswith(b"\x20"), "a CONNACK on a TLS port: %r" % data)
            if data:
                self.assertEqual(data[0], 0x15, "only a TLS alert may come back: %r" % data)
            self.assert_tls_failure_logged(mark)
        survivor.ping()


class TlsReload(SecureTestCase):

    def test_sighup_replaces_the_certificate(self):
        crt, key = os.path.join(self.tmp, "server.crt"), os.path.join(self.tmp, "server.key")
        shutil.copy(CERTS.path("server.crt"), crt)
        shutil.copy(CERTS.path("server.key"), key)
        b = self.start_broker(listeners=[{"cafile": CERTS.ca, "certfile": crt, "keyfile": key}])
        old = TLSRawClient(b.port, tls_context(CERTS.ca))
        self.addCleanup(old.close)
        self.assertEqual(old.sock.getpeercert(True), der("server.crt"))
        old.send(connect(unique_id("old")))
        old.expect(bytes([0x20, 2, 0, 0]))
        old.send(publish("t/old", "x", qos=1, mid=1))
        old.expect(puback(1))
        # Replace both files (a new key pair too) and reload.
        shutil.copy(CERTS.path("server2.key"), key)
        shutil.copy(CERTS.path("server2.crt"), crt)

        def new_certificate():
            c = TLSRawClient(b.port, tls_context(CERTS.ca))
            try:
                return c.sock.getpeercert(True) == der("server2.crt")
            finally:
                c.close()
        self.reload(b, new_certificate, "new connections to get server2.crt")
        self.assertEqual(tls_connack(b.port, tls_context(CERTS.ca)), ("connack", 0))
        # The connection made before keeps working.
        old.send(publish("t/old", "y", qos=1, mid=2))
        old.expect(puback(2))
        old.ping()


    def test_bad_certificate_on_reload_keeps_the_old_one(self):
        self.midge_only("checked for midge's rule: a reload that fails keeps what works")
        crt, key = os.path.join(self.tmp, "server.crt"), os.path.join(self.tmp, "server.key")
        shutil.copy(CERTS.path("server.crt"), crt)
        shutil.copy(CERTS.path("server.key"), key)
        b = self.start_broker(listeners=[{"cafile": CERTS.ca, "certfile": crt, "keyfile": key}])
        mark = len(b.log_lines)
        with open(crt, "w") as f:
            f.write("not a certificate\n")
        b.signal(signal.SIGHUP)
        wait_for(lambda: re.search(re.escape(crt), b.log_since(mark)),
                 what="the reload error naming %s" % crt)
        # New connections still get the old, working certificate.
        c = TLSRawClient(b.port, tls_context(CERTS.ca))
        self.addCleanup(c.close)
        self.assertEqual(c.sock.getpeercert(True), der("server.crt"))
        self.assertEqual(tls_connack(b.port, tls_context(CERTS.ca)), ("connack", 0))


class BadTlsFiles(SecureTestCase):

    def check_refused(self, listener, name):
        rc, log = self.start_refused(listeners=[listener])
        self.assertNotEqual(rc, 0)
        self.assertIn(name, log)

    def test_missing_certfile(self):
        missing = os.path.join(self.tmp, "missing.crt")
        self.check_refused({"certfile": missing, "keyfile": CERTS.path("server.key")}, missing)

    def test_certfile_not_a_certificate(self):
        garbage = self.file("garbage.crt", "this is not PEM\n")
        self.check_refused({"certfile": garbage, "keyfile": CERTS.path("server.key")}, garbage)

    def test_key_does_not_match(self):
        self.check_refused({"certfile": CERTS.path("server.crt"), "keyfile": CERTS.path("server2.key")},
                           CERTS.path("server2.key"))

    def test_missing_cafile(self):
        missing = os.path.join(self.tmp, "missing-ca.crt")
        self.check_refused({"cafile": missing, "certfile": CERTS.path("server.crt"),
                            "keyfile": CERTS.path("server.key")}, missing)


PSK_KEYS = {"alice": "00112233445566778899aabbccddeeff", "bob": "deadbeefcafe"}


class Psk(SecureTestCase):
    """psk_file + psk_hint; the identity is the user name (use_identity_as_username)."""

    def setUp(self):
        super().setUp()
        psk = self.file("psk", "".join("%s:%s\n" % kv for kv in PSK_KEYS.items()))
        acl = self.file("acl", "user alice\ntopic readwrite alice/#\nuser bob\ntopic readwrite bob/#\n")
        self.start_broker(options={"allow_anonymous": False, "psk_file": psk, "acl_file": acl},
                          listeners=[{"psk_hint": "midge-hint", "use_identity_as_username": True},
                                     {"psk_hint": "other-hint"}])
        self.identity_port, self.anonymous_port = self.broker.ports

    def psk_args(self, user, key=None):
        return ["--psk", key or PSK_KEYS[user], "--psk-identity", user]

    def test_mosquitto_pub_sub_with_psk(self):
        with MosquittoSub(self.identity_port, ["alice/#"], qos=1,
                          args=self.psk_args("alice") + ["-C", 1, "-W", 10]) as sub:
            mosquitto_pub(self.identity_port, *self.psk_args("alice"), "-t", "alice/x", "-q", 1, "-m", "psk")
            self.assertEqual(sub.wait_exit(10), 0, sub.output())
            self.assertEqual(sub.messages, [("alice/x", b"psk", 1, False)])

    def test_identity_is_the_user_name(self):
        with MosquittoSub(self.identity_port, ["alice/#", "bob/#"], qos=1,
                          args=self.psk_args("alice") + ["-C", 1, "-W", 10]) as sub:
            # bob may not write alice/#, and alice may not read bob/#.
            mosquitto_pub(self.identity_port, *self.psk_args("bob"), "-t", "alice/y", "-q", 1, "-m", "bob")
            mosquitto_pub(self.identity_port, *self.psk_args("bob"), "-t", "bob/y", "-q", 1, "-m", "bob")
            mosquitto_pub(self.identity_port, *self.psk_args("alice"), "-t", "alice/z", "-q", 1,
                          "-m", "alice")
            self.assertEqual(sub.wait_exit(10), 0, sub.output())
            self.assertEqual(sub.messages, [("alice/z", b"alice", 1, False)])
        self.broker.wait_log(r"New client connected from \S+ as \S+ \(p2, c1, k60, u'bob'\)")

    def test_wrong_key_and_unknown_identity(self):
        with MosquittoSub(self.identity_port, ["alice/#"], qos=1, args=self.psk_args("alice")) as sub:
            for args in (self.psk_args("alice", "00112233445566778899aabbccddee00"),
                         self.psk_args("mallory", PSK_KEYS["alice"])):
                with self.subTest(args=args):
                    mark = len(self.broker.log_lines)
                    res = mosquitto_pub(self.identity_port, *args, "-t", "alice/w", "-m", "x", check=False)
                    self.assertNotEqual(res.returncode, 0, res.stdout)
                    self.assertRegex(res.stdout, r"(?i)tls|ssl")
                    if not is_mosquitto():
                        wait_for(lambda: re.search(
                            r"(?im)^(?=.*127\.0\.0\.1)(?=.*(tls|ssl|handshake|psk)).*$",
                            self.broker.log_since(mark)),
                                 what="a log line with the client's address about the failed handshake")
            mosquitto_pub(self.identity_port, *self.psk_args("alice"), "-t", "alice/ok", "-q", 1, "-m", "ok")
            self.assertEqual(sub.wait_messages(1), [("alice/ok", b"ok", 1, False)])

    def test_without_identity_as_username_the_client_is_anonymous(self):
        # The other listener has no use_identity_as_username: no user name,
        # and allow_anonymous is false.
        res = mosquitto_pub(self.anonymous_port, *self.psk_args("alice"), "-t", "alice/x", "-m", "x",
                            check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertRegex(res.stdout, r"(?i)not authori[sz]ed")

    def test_sighup_reloads_the_psk_file(self):
        # alice gets a new key: the old one stops working for new connections.
        new_key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
        psk = self.file("psk", "alice:%s\nbob:%s\n" % (new_key, PSK_KEYS["bob"]))

        def new_key_works():
            res = mosquitto_pub(self.identity_port, *self.psk_args("alice", new_key), "-t", "alice/r",
                                "-m", "x", check=False)
            return res.returncode == 0
        self.reload(self.broker, new_key_works, "alice's new PSK to work")
        res = mosquitto_pub(self.identity_port, *self.psk_args("alice"), "-t", "alice/r", "-m", "x",
                            check=False)
        self.assertNotEqual(res.returncode, 0, "the old key still works after the reload")
        self.assertTrue(os.path.exists(psk))

    def test_plain_client_on_a_psk_port(self):
        c = RawClient(self.identity_port)
        self.addCleanup(c.close)
        c.send(connect(unique_id("plain")))
        c.sock.settimeout(5)
        data = b""
        try:
            while True:
                chunk = c.sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        self.assertFalse(data.startswith(b"\x20"), data)


if __name__ == "__main__":
    main()
