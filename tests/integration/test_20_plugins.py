#!/usr/bin/python3
"""The plugin ABI (include/midge/plugin.h) from outside: tests/plugins/probe.c
logs every event it gets and answers as its options say. Covered: every
event and its fields; chaining (allow / deny / defer, all-defer = deny);
DELAYED answers and plugin_timeout; MESSAGE_IN rewrites, drops and the ACL
check of a rewritten topic; MESSAGE_OUT; wills; ticks, timers, reload; the
API (kick_client, publish, client_set_username); per-listener plugins; AUTH
exchanges; PSK keys; refused plugins; $SYS/broker/plugins; --plugin-check.
midge only; the test plugins are built by `make check`. Run alone:
MIDGE_PLUGIN_DIR=<builddir> /usr/bin/python3 tests/integration/test_20_plugins.py
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (AUTH, CONNACK, DISCONNECT, PROP_AUTH_DATA, PROP_AUTH_METHOD,  # noqa: E402
                       PUBACK, PUBREC, PahoClient, PluginTestCase, RawClient, auth_packet,
                       auth_props, connack_code, connect, disconnect, main, mosquitto_pub,
                       parse_publish, parse_publish5, parse_v5, pingreq, pingresp, plugin_path, ProbeLog, free_port,
                       prop_user, prop_value, publish, puback, run_midge, suback, subscribe,
                       unique_id, unsuback, unsubscribe)

EVENTS = ["basic_auth", "ext_auth_start", "ext_auth_continue", "acl_check", "message_in",
          "message_out", "connect", "disconnect", "subscribe", "unsubscribe", "will", "tick",
          "reload", "bridge", "psk_key", "worker_start", "worker_stop"]

# CONNACK codes (MQTT 3.1.1, MQTT 5) of a refused login: with a user name
# 4 / 0x86, whether a plugin said DENY or every plugin deferred (a refusal
# must not tell a wrong password from an unknown user); 5 / 0x87 without one.
NOT_AUTHORISED = (5, 0x87)
BAD_CREDENTIALS = (4, 0x86)
REFUSED = {4, 5, 0x86, 0x87}


def code(codes, proto):
    return codes[1] if proto == 5 else codes[0]


def publish_v5(client, topic, payload, mid, qos=1, props=b""):
    """Publishes from an MQTT 5 client; returns the decoded PUBACK / PUBREC."""
    client.send(publish(topic, payload, qos=qos, mid=mid, proto=5, props=props))
    ack = parse_v5(client.read_packet())
    want = PUBACK if qos == 1 else PUBREC
    if ack.type != want or ack.rest != mid:
        raise AssertionError("expected an ack of type %d for mid %d, got %r" % (want, mid, ack))
    return ack


class Events(PluginTestCase):
    """Every event reaches the plugin, with the fields the ABI promises."""

    def test_lifecycle_events(self):
        entry, log = self.probe(decision="allow", tick_ms=100, timer_ms=50)
        b = self.start_plugins([entry], options={"workers": 2})
        init = log.wait("init")
        self.assertEqual(init["abi"], "1")
        self.assertIn(init["name"], ("probe", "probe.so"))  # api->plugin_name: the file's name
        self.assertEqual(init["opt_tick_ms"], "100")
        for w in (0, 1):
            log.wait("worker_start", worker=w, count=2)
            log.wait("timer", worker=w)
            log.wait("tick", worker=w, n=3)
        # The timer is one-shot: more ticks go by, no second timer line.
        ticks = log.count("tick")
        log.wait("tick", n=ticks + 6)
        for w in (0, 1):
            self.assertEqual(log.count("timer", worker=w), 1, log.text())
        self.stop_checked(b)
        entries = log.entries()
        stops = [i for i, e in enumerate(entries) if e["event"] == "worker_stop"]
        self.assertEqual(sorted(entries[i]["worker"] for i in stops), ["0", "1"], log.text())
        self.assertEqual(entries[-1]["event"], "cleanup", "cleanup must come last:\n" + log.text())
        # Nothing of a worker after its WORKER_STOP.
        for i in stops:
            w = entries[i]["worker"]
            later = [e for e in entries[i + 1:] if e["event"] in ("tick", "timer") and e["worker"] == w]
            self.assertEqual(later, [], "events of worker %s after its worker_stop" % w)

    def test_configured_name(self):
        """A plugin entry's `name:` is what api->plugin_name() answers."""
        entry, log = self.probe(name="custom", decision="allow")
        self.start_plugins([entry])
        self.assertEqual(log.wait("init")["name"], "custom")

    def test_connection_events(self):
        entry, log = self.probe(decision="allow")
        self.start_plugins([entry])
        sid, pid = unique_id("sub"), unique_id("pub")
        t = self.topic()
        sub = self.client(sid, username="alice", password="pw")
        log.wait("basic_auth", id=sid, user="alice", password_len=2)
        log.wait("connect", id=sid, user="alice", session_present=0)
        sub.subscribe_ok([(t, 1)])
        log.wait("acl_check", id=sid, user="alice", access="subscribe", topic=t, qos=1)
        log.wait("subscribe", id=sid, filter=t, qos=1)

        pub = self.client(pid)
        log.wait("basic_auth", id=pid, user="")
        pub.send(publish(t, "hello", qos=1, mid=3))
        pub.expect(puback(3))
        sub.send(puback(sub.expect_publish(t, "hello", qos=1)))
        log.wait("acl_check", id=pid, access="publish", topic=t)
        log.wait("message_in", id=pid, topic=t, payload="hello", qos=1, retain=0)
        log.wait("acl_check", id=sid, access="deliver", topic=t)
        log.wait("message_out", id=sid, topic=t, payload="hello")

        sub.send(unsubscribe(2, [t]))
        sub.expect(unsuback(2))
        log.wait("acl_check", id=sid, access="unsubscribe", topic=t)
        log.wait("unsubscribe", id=sid, filter=t)
        sub.send(disconnect())
        sub.expect_closed()
        log.wait("disconnect", id=sid, user="alice", will_sent=0)

    def test_will_event(self):
        entry, log = self.probe(decision="allow")
        self.start_plugins([entry])
        w = self.topic("/will")
        watcher = self.client().subscribe_ok([(w, 0)])
        cid = unique_id("dies")
        c = RawClient(self.port)
        c.send(connect(cid, will=(w, "gone", 0, False)))
        c.read_packet()
        log.wait("connect", id=cid)
        c.close()  # no DISCONNECT: the will goes out
        watcher.expect_publish(w, "gone")
        log.wait("will", id=cid, topic=w, payload="gone")
        log.wait("disconnect", id=cid, will_sent=1)


    def test_bridge_events(self):
        remote = self.start_plugins()  # a plain broker for the bridge to reach
        t = self.topic("/bridged")
        entry, log = self.probe(decision="allow")
        bridge = {"name": "up", "addresses": ["127.0.0.1:%d" % remote.port], "topics": ["%s out 0" % t]}
        local = self.start_plugins([entry], options={"bridges": [bridge]})
        remote.wait_log(r"New connection from", timeout=10)
        log.wait("bridge", name="up", what="connecting", address="127.0.0.1", port=remote.port)
        log.wait("bridge", name="up", what="state", connected=1, timeout=10)
        far = self.client(port=remote.port).subscribe_ok([(t, 0)])
        self.client(port=local.port).send(publish(t, "across"))
        far.expect_publish(t, "across", timeout=10)
        log.wait("bridge", name="up", what="message", direction="out", topic=t)

    def test_bridge_message_dropped_or_rewritten(self):
        """A plugin stops a crossing message (DENY) or sends it on under another topic,
        both ways."""
        remote = self.start_plugins()
        base = self.topic("")
        keep, drop, moved, renamed = (base + "/keep", base + "/drop", base + "/moved",
                                      base + "/renamed")
        entry, log = self.probe(decision="allow", bridge_drop_topic=drop,
                                bridge_rewrite_from=moved, bridge_rewrite_to=renamed)
        bridge = {"name": "pb", "addresses": ["127.0.0.1:%d" % remote.port],
                  "topics": ["%s/# both 1" % base], "restart_timeout": 1}
        local = self.start_plugins([entry], options={"bridges": [bridge]})
        log.wait("bridge", name="pb", what="state", connected=1, timeout=10)
        far = self.client(port=remote.port).subscribe_ok([(base + "/#", 0)])
        near = self.client(port=local.port).subscribe_ok([(base + "/#", 0)])
        pub = self.client(port=local.port)
        for t in (drop, moved, keep):
            pub.send(publish(t, "out"))
        far.expect_publish(renamed, "out", timeout=10)
        far.expect_publish(keep, "out", timeout=10)
        far.expect_nothing(0.5, "the dropped message must not cross")
        for t in (drop, moved, keep):
            near.expect_publish(t, "out")
        log.wait("bridge", name="pb", what="message", direction="out", topic=drop, result="deny")
        # and inwards: the remote's messages go through the same event
        rpub = self.client(port=remote.port)
        for t in (drop, keep):
            rpub.send(publish(t, "in"))
        for t in (drop, keep):
            far.expect_publish(t, "in")
        near.expect_publish(keep, "in", timeout=10)
        near.expect_nothing(0.5, "the dropped message must not come in")
        log.wait("bridge", name="pb", what="message", direction="in", topic=keep)


class AuthChaining(PluginTestCase):
    """Two plugins, A then B: the first decision wins, DEFER passes on,
    and when every plugin defers the CONNECT is refused. (Lines are matched
    by position, mark(), so that these tests do not depend on the client id
    a plugin sees during BASIC_AUTH; test_connection_events checks that.)"""

    def two(self, a_opts, b_opts):
        a, alog = self.probe(copy_as="probe_a", **a_opts)
        b, blog = self.probe(copy_as="probe_b", **b_opts)
        self.start_plugins([a, b])
        return alog, blog

    def login(self, alog, blog, proto, user):
        """(CONNACK code, A's basic_auth lines, B's basic_auth lines) of one login."""
        am, bm = alog.mark(), blog.mark()
        kw = {"username": user, "password": "x"} if user else {}
        rc = connack_code(self.port, proto=proto, **kw)
        return rc, alog.find("basic_auth", since=am), blog.find("basic_auth", since=bm)

    def test_allow_stops_the_chain(self):
        alog, blog = self.two({"allow_user": "alice"}, {"auth_decision": "deny"})
        for proto in (4, 5):
            rc, a, b = self.login(alog, blog, proto, "alice")
            self.assertEqual(rc, 0)
            self.assertEqual([(e["user"], e["result"]) for e in a], [("alice", "allow")])
            self.assertEqual(b, [], "B was asked after A allowed")

    def test_deny_stops_the_chain(self):
        alog, blog = self.two({"deny_user": "mallory"}, {"auth_decision": "allow"})
        for proto in (4, 5):
            rc, a, b = self.login(alog, blog, proto, "mallory")
            self.assertEqual(rc, code(BAD_CREDENTIALS, proto))
            self.assertEqual([(e["user"], e["result"]) for e in a], [("mallory", "deny")])
            self.assertEqual(b, [], "B was asked after A denied")

    def test_defer_passes_on(self):
        alog, blog = self.two({}, {"allow_user": "bob"})
        for proto in (4, 5):
            rc, a, b = self.login(alog, blog, proto, "bob")
            self.assertEqual(rc, 0)
            self.assertEqual([e["result"] for e in a], ["defer"])
            self.assertEqual([(e["user"], e["result"]) for e in b], [("bob", "allow")])

    def test_all_defer_is_deny(self):
        alog, blog = self.two({}, {})
        for proto in (4, 5):
            for user in ("carol", None):
                with self.subTest(proto=proto, user=user):
                    rc, a, b = self.login(alog, blog, proto, user)
                    self.assertEqual(rc, code(BAD_CREDENTIALS if user else NOT_AUTHORISED, proto))
                    self.assertEqual([e["result"] for e in a + b], ["defer", "defer"])


class AclChaining(PluginTestCase):
    """The same chain for ACL checks (A lets everyone log in)."""

    def two(self, a_opts, b_opts):
        a_opts = dict(a_opts, auth_decision="allow")
        a, alog = self.probe(copy_as="probe_a", **a_opts)
        b, blog = self.probe(copy_as="probe_b", **b_opts)
        self.start_plugins([a, b])
        return alog, blog

    def test_allow_stops_the_chain(self):
        alog, blog = self.two({"acl_decision": "allow"}, {"acl_decision": "deny"})
        t = self.topic()
        self.client().subscribe_ok([(t, 1)])
        alog.wait("acl_check", access="subscribe", topic=t, result="allow")
        self.assertEqual(blog.find("acl_check", topic=t), [], "B was asked after A allowed")

    def test_deny_stops_the_chain(self):
        t = self.topic()
        alog, blog = self.two({"acl_decision": "allow", "deny_topic": t}, {"acl_decision": "allow"})
        self.client().subscribe_ok([(t, 1)], granted=[0x80])
        alog.wait("acl_check", access="subscribe", topic=t, result="deny")
        self.assertEqual(blog.find("acl_check", topic=t), [], "B was asked after A denied")

    def test_defer_passes_on(self):
        alog, blog = self.two({"acl_decision": "defer"}, {"acl_decision": "allow"})
        t = self.topic()
        self.client().subscribe_ok([(t, 1)])
        blog.wait("acl_check", access="subscribe", topic=t, result="allow")

    def test_all_defer(self):
        """Every plugin defers: SUBSCRIBE and PUBLISH are refused, but
        UNSUBSCRIBE is allowed (leaving never widens access)."""
        alog, blog = self.two({}, {})
        t = self.topic()
        c = self.client(proto=5)
        c.send(subscribe(1, [(t, 1)], proto=5))
        c.expect(suback(1, [0x87], proto=5))
        self.assertEqual(publish_v5(c, t, "x", 2).reason, 0x87)
        c.send(unsubscribe(3, [t], proto=5))
        got = c.read_packet()
        self.assertEqual(got[0] >> 4, 11, "expected an UNSUBACK")
        self.assertLess(got[-1], 0x80, "an UNSUBSCRIBE that every plugin deferred was refused")
        blog.wait("acl_check", access="unsubscribe", topic=t, result="defer")


class Delayed(PluginTestCase):
    """MIDGE_DELAYED answered later through api->complete(), or never."""

    def test_delayed_login_is_allowed(self):
        entry, log = self.probe(decision="allow", delay_user="carl", delay_ms=300)
        self.start_plugins([entry])
        for proto in (4, 5):
            cid, mark = unique_id(), log.mark()
            self.assertEqual(connack_code(self.port, cid, proto=proto, username="carl", password="x"), 0)
            req = log.wait("basic_auth", since=mark, user="carl", result="delayed")["request"]
            log.wait("completed", since=mark, request=req, result="allow")
            log.wait("connect", since=mark, id=cid, user="carl")

    def test_delayed_login_times_out(self):
        entry, log = self.probe(decision="allow", hang_user="zed")
        self.start_plugins([entry], options={"plugin_timeout": 1})
        for proto in (4, 5):
            with self.subTest(proto=proto):
                t0 = time.monotonic()
                rc = connack_code(self.port, proto=proto, username="zed", password="x")
                took = time.monotonic() - t0
                self.assertIn(rc, REFUSED, "a login nobody answered must be refused")
                self.assertGreater(took, 0.8, "refused before plugin_timeout")
                self.assertLess(took, 8)

    def test_waiting_login_does_not_block_others(self):
        entry, log = self.probe(decision="allow", hang_user="zed")
        self.start_plugins([entry], options={"plugin_timeout": 2, "workers": 1})
        waiting = self.raw()
        waiting.send(connect(unique_id("zed"), username="zed", password="x"))
        log.wait("basic_auth", user="zed", result="delayed")
        # The only worker keeps serving everyone else meanwhile.
        t = self.topic()
        sub = self.client().subscribe_ok([(t, 1)])
        pub = self.client()
        pub.send(publish(t, "meanwhile", qos=1, mid=1))
        pub.expect(puback(1))
        sub.send(puback(sub.expect_publish(t, "meanwhile", qos=1)))
        got = waiting.read_packet(timeout=10)
        self.assertEqual(got[0] >> 4, CONNACK)
        self.assertIn(got[3], REFUSED)

    def test_delayed_subscribe_is_granted(self):
        d = self.topic("/d")
        entry, log = self.probe(decision="allow", delay_subscribe=d + "/#", delay_ms=300)
        self.start_plugins([entry])
        other = self.topic("/other")
        c = self.client()
        c.send(subscribe(1, [(d + "/#", 1), (other, 0)]))
        c.expect(suback(1, [1, 0]), timeout=5, msg="(SUBACK after the delayed grant)")
        log.wait("completed", result="allow")
        pub = self.client()
        pub.send(publish(d + "/x", "late", qos=1, mid=1))
        pub.expect(puback(1))
        c.send(puback(c.expect_publish(d + "/x", "late", qos=1)))

    def test_hung_subscribe_times_out(self):
        h = self.topic("/h")
        entry, log = self.probe(decision="allow", hang_subscribe=h)
        self.start_plugins([entry], options={"plugin_timeout": 1})
        c = self.client()
        t0 = time.monotonic()
        c.send(subscribe(1, [(h, 1)]))
        c.send(pingreq())  # the client's input waits for the answer: PINGRESP comes after SUBACK
        c.expect(suback(1, [0x80]), timeout=8, msg="(SUBACK after plugin_timeout)")
        self.assertGreater(time.monotonic() - t0, 0.8)
        c.expect(pingresp())
        c.ping("(the client stays connected)")


class MessageIn(PluginTestCase):
    """MESSAGE_IN: rewrites, drops, and the ACL check of a rewritten topic."""

    def test_rewritten_topic_is_delivered(self):
        src, dst = self.topic("/src"), self.topic("/dst")
        entry, log = self.probe(decision="allow", rewrite_from=src, rewrite_to=dst)
        self.start_plugins([entry])
        new = self.client().subscribe_ok([(dst, 1)])
        old = self.client().subscribe_ok([(src, 1)])
        pub = self.client()
        pub.send(publish(src, "moved", qos=1, mid=1))
        pub.expect(puback(1))
        new.send(puback(new.expect_publish(dst, "moved", qos=1)))
        old.ping("(nothing on the old topic)")
        log.wait("message_in", topic=src, rewritten=dst)

    def test_payload_and_user_property(self):
        t = self.topic()
        entry, log = self.probe(decision="allow", payload_suffix="+x", add_user_property="via=probe")
        self.start_plugins([entry])
        sub = self.client(proto=5)
        sub.send(subscribe(1, [(t, 1)], proto=5))
        sub.expect(suback(1, [1], proto=5))
        pub = self.client(proto=5)
        self.assertLess(publish_v5(pub, t, "hi", 7, props=prop_user("k", "v")).reason, 0x80)
        got = parse_publish5(sub.read_packet())
        self.assertEqual((got.topic, got.payload), (t, b"hi+x"))
        users = [v for p, v in got.props if p == 0x26]
        self.assertEqual(users, [(b"k", b"v"), (b"via", b"probe")], "user properties kept, one added")

    def test_rewrite_onto_a_topic_the_acl_file_forbids(self):
        src, dst = self.topic("/src"), self.topic("/dst")
        acl = self.file("acl", "user u\ntopic readwrite %s\ntopic read %s\n" % (src, dst))
        entry, log = self.probe(allow_user="u", acl_decision="defer", rewrite_from=src, rewrite_to=dst)
        self.start_plugins([entry], options={"acl_file": acl})
        sub = self.client(username="u", password="x").subscribe_ok([(dst, 1)])
        pub = self.client(username="u", password="x", proto=5)
        self.assertEqual(publish_v5(pub, src, "sneaky", 1).reason, 0x87,
                         "a rewrite onto a topic the publisher may not write must be refused")
        sub.ping("(the refused message was not delivered)")

    def test_rewrite_onto_a_topic_a_plugin_denies(self):
        src, dst = self.topic("/src"), self.topic("/dst")
        entry, log = self.probe(decision="allow", rewrite_from=src, rewrite_to=dst, deny_topic=dst)
        self.start_plugins([entry])
        pub = self.client(proto=5)
        self.assertEqual(publish_v5(pub, src, "sneaky", 1).reason, 0x87)
        log.wait("acl_check", access="publish", topic=dst, result="deny")

    def test_drop(self):
        t = self.topic()
        entry, log = self.probe(decision="allow", drop_in_topic=t)
        self.start_plugins([entry])
        sub = self.client().subscribe_ok([(t, 2)])
        pub5 = self.client(proto=5)
        self.assertEqual(publish_v5(pub5, t, "q1", 1, qos=1).reason, 0x97)
        self.assertEqual(publish_v5(pub5, t, "q2", 2, qos=2).reason, 0x97)
        pub4 = self.client()
        pub4.send(publish(t, "v4", qos=1, mid=3))
        pub4.expect(puback(3), msg="(MQTT 3.1.1: a dropped QoS 1 message is still acknowledged)")
        sub.ping("(nothing was delivered)")
        self.assertEqual(log.count("message_in", topic=t, result="deny"), 3)


class MessageOut(PluginTestCase):

    def test_deny_skips_one_subscriber(self):
        t = self.topic()
        s1, s2 = unique_id("s1-"), unique_id("s2-")
        entry, log = self.probe(decision="allow", deny_out_client=s1)
        self.start_plugins([entry])
        c1 = self.client(s1).subscribe_ok([(t, 1)])
        c2 = self.client(s2).subscribe_ok([(t, 1)])
        pub = self.client()
        pub.send(publish(t, "only s2", qos=1, mid=1))
        pub.expect(puback(1))
        c2.send(puback(c2.expect_publish(t, "only s2", qos=1)))
        c1.ping("(MESSAGE_OUT denied this subscriber)")
        log.wait("message_out", id=s1, topic=t, result="deny")
        log.wait("message_out", id=s2, topic=t, result="allow")

    def test_deny_by_topic(self):
        base = self.topic()
        entry, log = self.probe(decision="allow", deny_out_topic=base + "/no")
        self.start_plugins([entry])
        sub = self.client().subscribe_ok([(base + "/#", 0)])
        pub = self.client()
        pub.send(publish(base + "/no", "x"))
        pub.send(publish(base + "/yes", "y"))
        sub.expect_publish(base + "/yes", "y")
        sub.ping()


class Wills(PluginTestCase):

    def test_deny_will_suppresses_it(self):
        entry, log = self.probe(decision="allow", deny_will="true")
        self.start_plugins([entry])
        w = self.topic("/will")
        watcher = self.client().subscribe_ok([(w, 0)])
        cid = unique_id("dies")
        c = RawClient(self.port)
        c.send(connect(cid, will=(w, "gone", 0, False)))
        c.read_packet()
        c.close()
        log.wait("will", id=cid, topic=w, result="deny")
        log.wait("disconnect", id=cid, will_sent=0)
        watcher.ping("(the will was suppressed)")


class Reload(PluginTestCase):

    def test_reload_passes_new_options(self):
        a, b = self.topic("/a"), self.topic("/b")
        entry, log = self.probe(decision="allow", deny_topic=a)
        broker = self.start_plugins([entry])
        c = self.client(proto=5)
        self.assertEqual(publish_v5(c, a, "x", 1).reason, 0x87)
        self.assertLess(publish_v5(c, b, "x", 2).reason, 0x80)

        entry["options"]["deny_topic"] = b
        broker.rewrite(options=broker.options)
        self.reload(broker, lambda: log.find("reload", opt_deny_topic=b), "the probe's reload line")
        reload = log.find("reload")[-1]
        self.assertEqual(reload["opt_log_file"], log.path)
        self.assertEqual(reload["opt_decision"], "allow")
        # The connected client sees the new behaviour.
        self.assertLess(publish_v5(c, a, "x", 3).reason, 0x80)
        self.assertEqual(publish_v5(c, b, "x", 4).reason, 0x87)


class BrokerApi(PluginTestCase):
    """The API functions a plugin calls: kick_client, publish, client_set_username."""

    def test_kick_client(self):
        k = self.topic("/kick")
        entry, log = self.probe(decision="allow", kick_on_publish_topic=k)
        self.start_plugins([entry])
        w = self.topic("/will")
        watcher = self.client().subscribe_ok([(w, 0)])
        cid = unique_id("kicked")
        c = self.client(cid, proto=5, will=(w, "will", 0, False))
        c.send(publish(k, "bye", proto=5))
        got = c.read_packet()
        self.assertEqual(got[0] >> 4, DISCONNECT, "expected DISCONNECT 0x98")
        self.assertEqual(parse_v5(got).reason, 0x98)
        c.expect_closed()
        log.wait("disconnect", id=cid, will_sent=0)
        watcher.ping("(kicked without its will)")
        c4 = self.client(proto=4)
        c4.send(publish(k, "bye"))
        c4.expect_closed()

    def test_publish_from_plugin(self):
        t = self.topic("/hello")
        entry, log = self.probe(decision="allow", publish_on_connect=t)
        self.start_plugins([entry])
        wid = unique_id("watcher")
        watcher = self.client(wid).subscribe_ok([(t, 0)])
        cid = unique_id("newcomer")
        self.client(cid)
        # The watcher's own greeting may arrive too (published while it subscribed).
        got = parse_publish(watcher.read_packet())
        if got.payload == ("hello " + wid).encode():
            got = parse_publish(watcher.read_packet())
        self.assertEqual((got.topic, got.payload), (t.encode(), ("hello " + cid).encode()))
        log.wait("published", topic=t, rc="ok")

    def test_set_username(self):
        cid = unique_id("ren")
        acl = self.file("acl", "user renamed\ntopic readwrite ren/#\n")
        entry, log = self.probe(allow_user="orig", acl_decision="defer",
                                set_username_for="%s=renamed" % cid)
        self.start_plugins([entry], options={"acl_file": acl})
        c = self.client(cid, username="orig", password="x")
        log.wait("connect", id=cid, user="renamed")
        c.subscribe_ok([("ren/#", 1)])
        c.subscribe_ok([("orig/#", 1)], mid=2, granted=[0x80])
        log.wait("acl_check", id=cid, user="renamed", access="subscribe", topic="ren/#")


class PerListener(PluginTestCase):
    """A global plugin G runs for every listener, then a listener's own L."""

    def test_listener_plugin_applies_to_its_listener_only(self):
        g, glog = self.probe(copy_as="probe_g", allow_user="gu", acl_decision="allow")
        l, llog = self.probe(copy_as="probe_l", allow_user="lu")
        b = self.start_plugins([g], listeners=[{}, {"plugins": [l]}])
        plain, own = b.ports[0], b.ports[1]
        self.assertEqual(connack_code(plain, "p-gu", username="gu", password="x"), 0)
        self.assertEqual(connack_code(plain, "p-lu", username="lu", password="x"), BAD_CREDENTIALS[0],
                         "L must not run on the first listener")
        self.assertEqual(connack_code(own, "o-gu", username="gu", password="x"), 0)
        self.assertEqual(connack_code(own, "o-lu", username="lu", password="x"), 0)
        self.assertEqual([(e["user"], e["result"]) for e in glog.find("basic_auth")],
                         [("gu", "allow"), ("lu", "defer"), ("gu", "allow"), ("lu", "defer")])
        self.assertEqual([(e["user"], e["result"]) for e in llog.find("basic_auth")], [("lu", "allow")],
                         "L runs on its listener only, after G (which decided for gu)")


    def test_mosquitto_conf_auth_plugin_on_one_listener(self):
        """mosquitto.conf's auth_plugin / auth_opt_* after a listener, with
        per_listener_settings, configure that listener only."""
        log = os.path.join(self.tmp, unique_id("probe") + ".log")
        conf = ("per_listener_settings true\n"
                "user root\n"
                "listener %d 127.0.0.1\n"
                "allow_anonymous true\n"
                "listener %d 127.0.0.1\n"
                "allow_anonymous true\n"
                "auth_plugin %s\n"
                "auth_opt_log_file %s\n"
                "auth_opt_deny_user mallory\n"
                "plugin_opt_acl_decision allow\n") % (free_port(), free_port(), plugin_path("probe"),
                                                       log)
        b = self.start_plugins(raw_config=conf, config_name="broker.conf", listeners=[{}, {}])
        plain, guarded = b.ports[0], b.ports[1]
        self.assertEqual(connack_code(plain, "m1", username="mallory", password="x"), 0,
                         "the first listener has no plugin")
        self.assertEqual(connack_code(guarded, "m2", username="mallory", password="x"),
                         BAD_CREDENTIALS[0])
        probe = ProbeLog(log)
        probe.wait("init", opt_deny_user="mallory", opt_acl_decision="allow")
        self.assertEqual([(e["id"], e["result"]) for e in probe.find("basic_auth")],
                         [("m2", "deny")])


class ExtAuth(PluginTestCase):
    """Enhanced authentication (MQTT 5 AUTH) through EXT_AUTH_START / CONTINUE."""

    def setUp(self):
        super().setUp()
        entry, self.log = self.probe(decision="allow", ext_method="M")
        self.start_plugins([entry])

    def connack(self, c):
        got = parse_v5(c.read_packet())
        self.assertEqual(got.type, CONNACK, got)
        return got

    def test_one_step(self):
        c = self.raw()
        c.send(connect(unique_id(), proto=5, props=auth_props("M", b"ok")))
        got = self.connack(c)
        self.assertEqual(got.reason, 0)
        self.assertEqual(prop_value(got.props, PROP_AUTH_METHOD), b"M")
        self.assertEqual(prop_value(got.props, PROP_AUTH_DATA), b"welcome")
        self.log.wait("ext_auth_start", method="M", data=b"ok".hex(), reauth=0, result="allow")
        c.ping()

    def test_two_steps(self):
        c = self.raw()
        cid = unique_id()
        c.send(connect(cid, proto=5, props=auth_props("M", b"step")))
        got = parse_v5(c.read_packet())
        self.assertEqual((got.type, got.reason), (AUTH, 0x18), got)
        self.assertEqual(prop_value(got.props, PROP_AUTH_METHOD), b"M")
        self.assertEqual(prop_value(got.props, PROP_AUTH_DATA), b"challenge")
        c.send(auth_packet(0x18, "M", b"answer"))
        got = self.connack(c)
        self.assertEqual(got.reason, 0)
        self.assertEqual(prop_value(got.props, PROP_AUTH_DATA), b"done")
        self.log.wait("ext_auth_continue", id=cid, method="M", data=b"answer".hex(), result="allow")
        c.ping()

    def test_wrong_answer(self):
        c = self.raw()
        c.send(connect(unique_id(), proto=5, props=auth_props("M", b"step")))
        self.assertEqual(parse_v5(c.read_packet()).type, AUTH)
        c.send(auth_packet(0x18, "M", b"wrong"))
        self.assertEqual(self.connack(c).reason, 0x87)
        c.expect_closed()

    def test_unknown_method(self):
        c = self.raw()
        c.send(connect(unique_id(), proto=5, props=auth_props("SCRAM-NONE", b"ok")))
        self.assertEqual(self.connack(c).reason, 0x8C)
        c.expect_closed()

    def test_reauthentication(self):
        c = self.raw()
        cid = unique_id()
        c.send(connect(cid, proto=5, props=auth_props("M", b"ok")))
        self.assertEqual(self.connack(c).reason, 0)
        c.send(auth_packet(0x19, "M", b"ok"))
        got = parse_v5(c.read_packet())
        self.assertEqual((got.type, got.reason), (AUTH, 0x00), got)
        self.assertEqual(prop_value(got.props, PROP_AUTH_DATA), b"welcome")
        self.log.wait("ext_auth_start", id=cid, reauth=1, result="allow")
        c.ping("(still connected after re-authentication)")


PSK_ID, PSK_KEY = "probe-id", "00112233445566778899aabbccddeeff"


class Psk(PluginTestCase):
    """PSK_KEY: the plugin gives the key of a TLS-PSK identity (no psk_file)."""

    def setUp(self):
        super().setUp()
        entry, self.log = self.probe(decision="allow", psk_identity=PSK_ID, psk_key=PSK_KEY)
        self.start_plugins([entry], listeners=[{"psk_hint": "probe-hint"}])

    def pub(self, identity, key):
        return mosquitto_pub(self.port, "--psk", key, "--psk-identity", identity,
                             "-t", self.topic(), "-m", "x", "-q", 1, check=False)

    def test_key_from_plugin(self):
        res = self.pub(PSK_ID, PSK_KEY)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.log.wait("psk_key", identity=PSK_ID, hint="probe-hint", result="allow")

    def test_wrong_key_or_identity(self):
        self.assertNotEqual(self.pub(PSK_ID, "00112233445566778899aabbccddee00").returncode, 0)
        self.assertNotEqual(self.pub("stranger", PSK_KEY).returncode, 0)
        self.log.wait("psk_key", identity="stranger", result="defer")
        self.assertTrue(self.broker.alive())


class Refusals(PluginTestCase):
    """A plugin that cannot be loaded or whose init fails stops the broker
    from starting, with an error that names the plugin file."""

    def assert_refused(self, entry, *reasons):
        rc, log = self.refused_plugins([entry])
        self.assertNotEqual(rc, 0, log)
        self.assertIn(entry["path"], log, "the error must name the plugin file")
        for reason in reasons:
            self.assertIn(reason, log)

    def test_bad_version(self):
        self.assert_refused({"path": plugin_path("bad_version")})

    def test_no_init(self):
        self.assert_refused({"path": plugin_path("no_init")})

    def test_init_fails(self):
        entry, log = self.probe(fail_init="true")
        self.assert_refused(entry)

    def test_missing_file(self):
        self.assert_refused({"path": os.path.join(self.tmp, "nonexistent.so")})

    def test_listener_plugin_refused_too(self):
        rc, log = self.refused_plugins(listeners=[{}, {"plugins": [{"path": plugin_path("no_init")}]}])
        self.assertNotEqual(rc, 0, log)
        self.assertIn(plugin_path("no_init"), log)


class SysTopics(PluginTestCase):
    """$SYS/broker/plugins/<name>/<event>/{calls,errors,latency_us}."""

    def test_plugin_statistics(self):
        entry, log = self.probe(decision="allow")
        self.start_plugins([entry], options={"sys_interval": 1})
        w = PahoClient(self.port, client_id=unique_id("sys"))
        self.addCleanup(w.close)
        w.subscribe("$SYS/broker/plugins/#", 0)
        self.client()
        base = "$SYS/broker/plugins/probe/"

        def latest(topic):
            for t, payload, _, _ in reversed(w.messages):
                if t == topic:
                    return payload.decode()
            return None

        def has(name, minimum):
            """calls and errors are counts; latency_us a number (maybe with decimals)."""
            v = latest(base + name)
            return v is not None and re.fullmatch(r"\d+(\.\d+)?", v) and float(v) >= minimum \
                and (name.endswith("latency_us") or v.isdigit())
        w.wait_for(lambda msgs: has("connect/calls", 2) and has("basic_auth/calls", 2), timeout=10,
                   what=base + "connect/calls >= 2")
        for event in ("connect", "basic_auth", "acl_check"):
            for stat in ("calls", "errors", "latency_us"):
                w.wait_for(lambda msgs: has("%s/%s" % (event, stat), 0), timeout=10,
                           what=base + "%s/%s" % (event, stat))
        self.assertEqual(latest(base + "connect/errors"), "0")


class PluginCheck(PluginTestCase):
    """midge --plugin-check PATH: loads the plugin, reports and exits."""

    def test_good_plugin(self):
        path = plugin_path("probe")
        res = run_midge("--plugin-check", path)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        lines = res.stdout.splitlines()
        self.assertIn("plugin: " + path, lines)
        self.assertIn("abi version: 1", lines)
        events = [l for l in lines if l.startswith("events: ")]
        self.assertEqual(len(events), 1, res.stdout)
        self.assertEqual(sorted(events[0].split()[1:]), sorted(EVENTS))

    def test_example_lists_its_one_event(self):
        path = plugin_path("auth_static")
        res = run_midge("--plugin-check", path)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("events: basic_auth", res.stdout.splitlines())

    def test_bad_plugins(self):
        for name, reason in (("bad_version", "unsupported ABI version"),
                             ("no_init", "missing symbol midge_plugin_init")):
            with self.subTest(plugin=name):
                path = plugin_path(name)
                res = run_midge("--plugin-check", path)
                self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
                self.assertIn(path, res.stderr)
                self.assertIn(reason, res.stderr)


if __name__ == "__main__":
    main()
