#!/usr/bin/python3
"""The Lua plugin (plugins/lua/, lua.so) from outside, through real clients.

Every hook a script may define, with every kind of answer: true, false (and
false with an MQTT 5 reason code), nil (the next script, then the
password_file / acl_file, and no when nobody decides) and a table (changes,
checked again by the broker). Also the notifications, the decision cache,
the `midge` module (log, publish, kick, json, cache, now, topic_matches,
password hashes), SIGHUP reloads good and bad, every safety limit (time,
instructions, memory, errors, the sandbox: each gives the on_error decision
and one log line naming script and line, and the broker keeps serving), the
example scripts in etc/lua/, and `midge --test-auth` / `--test-acl`.

midge only; skipped when lua.so is not built. Run alone:
MIDGE_PLUGIN_DIR=<builddir> /usr/bin/python3 tests/integration/test_23_lua.py
"""

import json
import os
import re
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (DISCONNECT, PUBACK, SRCDIR, SUBACK, UNSUBACK, LuaTestCase,  # noqa: E402
                       PahoClient, connack_code, connected_client, disconnect,
                       free_port, main, midge_offers, parse_props, parse_publish, parse_publish5,
                       parse_v5, prop_bin, prop_str, prop_user, publish,
                       puback, read_varint, run_midge, subscribe, unique_id, unsubscribe,
                       wait_for, yaml_block)

LUA_EXAMPLES = os.path.join(SRCDIR, "etc", "lua")

NOT_AUTHORIZED, BAD_CREDENTIALS, QUOTA_EXCEEDED, ADMIN_ACTION = 0x87, 0x86, 0x97, 0x98

# Test scripts run with a short budget so that the endless ones end fast.
FAST = {"timeout_ms": 50}


def example(name):
    return os.path.join(LUA_EXAMPLES, name)


def line_of(text, marker):
    """The 1-based number of the line of text that contains marker."""
    for number, line in enumerate(text.splitlines(), 1):
        if marker in line:
            return number
    raise AssertionError("no line with %r" % marker)


def publish_v5(client, topic, payload, mid, qos=1, props=b"", retain=False):
    """Publishes from an MQTT 5 client; returns the PUBACK / PUBREC reason code."""
    client.send(publish(topic, payload, qos=qos, mid=mid, proto=5, props=props, retain=retain))
    ack = parse_v5(client.read_packet())
    if ack.type not in (PUBACK, PUBACK + 1) or ack.rest != mid:
        raise AssertionError("expected an ack for mid %d, got %r" % (mid, ack))
    return ack.reason


def ack_codes(client, ptype, mid, packet_bytes, proto=5):
    """Sends a SUBSCRIBE / UNSUBSCRIBE; returns the SUBACK / UNSUBACK codes."""
    client.send(packet_bytes)
    pkt = client.read_packet()
    if pkt[0] >> 4 != ptype:
        raise AssertionError("expected packet type %d, got %s" % (ptype, pkt.hex(" ")))
    _, i = read_varint(pkt, 1)
    if struct.unpack("!H", pkt[i:i + 2])[0] != mid:
        raise AssertionError("ack for another packet id: %s" % pkt.hex(" "))
    i += 2
    if proto == 5:
        _, i = parse_props(pkt, i)
    return list(pkt[i:])


def sub_codes(client, mid, topics, proto=5):
    """SUBSCRIBE [(filter, qos), ...]; returns the SUBACK codes."""
    return ack_codes(client, SUBACK, mid, subscribe(mid, topics, proto=proto), proto)


def unsub_codes(client, mid, topics):
    """MQTT 5 UNSUBSCRIBE; returns the UNSUBACK codes."""
    return ack_codes(client, UNSUBACK, mid, unsubscribe(mid, topics, proto=5))


class Events:
    """A subscriber to lua/events/#, where test scripts midge.publish() what
    their hooks saw, as "<client id> <word> <word> ..."."""

    def __init__(self, case, **connect_kw):
        self.client = case.client(unique_id("events"), **connect_kw)
        self.client.subscribe_ok([("lua/events/#", 0)])
        self.seen = []

    def wait(self, kind, first, timeout=5.0):
        """The words after `first` of the first lua/events/<kind> event that starts with it."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (topic, words) in enumerate(self.seen):
                if topic == "lua/events/" + kind and words and words[0] == first:
                    del self.seen[i]
                    return words[1:]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s event for %s; got %r" % (kind, first, self.seen))
            try:
                got = parse_publish(self.client.read_packet(timeout=left))
            except socket.timeout:
                continue
            self.seen.append((got.topic.decode(), got.payload.decode().split(" ")))


class LuaCase(LuaTestCase):
    """Helpers shared by the tests below."""

    def start(self, text, options=None, listeners=None, **plugin_options):
        """Writes one script, starts a broker running it; returns the script's path."""
        path = self.script(text)
        opts = dict(FAST)
        opts.update(plugin_options)
        self.start_lua([path], options=options, listeners=listeners, **opts)
        return path

    def log_json(self, tag, **match):
        """The JSON documents the scripts logged as "<tag> {...}" whose fields match."""
        found = []
        for line in self.broker.log().splitlines():
            m = re.search(r" %s (\{.*\})$" % re.escape(tag), line)
            if m:
                doc = json.loads(m.group(1))
                if all(doc.get(k) == v for k, v in match.items()):
                    found.append(doc)
        return found

    def wait_log_json(self, tag, **match):
        return wait_for(lambda: self.log_json(tag, **match), what="a %s %r log line" % (tag, match))[-1]

    def assert_serves(self):
        """Another client can still connect, subscribe and exchange a message."""
        t = "still/" + unique_id("t")
        sub = self.client().subscribe_ok([(t, 1)])
        pub = self.client()
        pub.send(publish(t, "alive", qos=1, mid=1))
        pub.expect(puback(1))
        sub.send(puback(sub.expect_publish(t, "alive", qos=1)))
        self.assertTrue(self.broker.alive())


# ------------------------------------------------------------ auth_on_register

REGISTER = """
function auth_on_register(client)
  midge.log("info", "REGISTER " .. midge.json.encode(client))
  local u = client.username
  if u == "allowed" then return true end
  if u == "denied" then return false end
  if u == "quota" then return false, 0x97 end
  if u == "renameme" then
    return {username = "renamed", client_id = "renamed-" .. client.client_id}
  end
  if u == "badanswer" then return 42 end
  return nil
end

function on_connect(client)
  midge.publish("lua/events/connect", client.client_id .. " " .. tostring(client.username))
end
"""


class Register(LuaCase):

    def test_answers(self):
        self.start(REGISTER)
        for proto in (4, 5):
            with self.subTest(proto=proto):
                def login(user):
                    return connack_code(self.port, proto=proto, username=user, password="pw")
                self.assertEqual(login("allowed"), 0)
                self.assertEqual(login("denied"), BAD_CREDENTIALS if proto == 5 else 4)
                # nil, and nobody else decides: refused like a wrong password.
                self.assertEqual(login("nobody"), BAD_CREDENTIALS if proto == 5 else 4)
                # A script answer that is not true/false/nil/table: on_error (deny).
                self.assertEqual(login("badanswer"), BAD_CREDENTIALS if proto == 5 else 4)
                if proto == 5:
                    self.assertEqual(login("quota"), QUOTA_EXCEEDED, "false, 0x97 gives CONNACK 0x97")
                else:
                    self.assertNotEqual(login("quota"), 0)
        self.broker.wait_log(r"auth_on_register returned a number")

    def test_client_fields(self):
        self.start(REGISTER)
        cid = unique_id("fields")
        self.assertEqual(connack_code(self.port, client_id=cid, proto=5, username="allowed",
                                      password="s3cret", keepalive=33), 0)
        doc = self.wait_log_json("REGISTER", client_id=cid)
        self.assertEqual(doc["username"], "allowed")
        self.assertEqual(doc["password"], "s3cret")
        self.assertEqual(doc["address"], "127.0.0.1")
        self.assertIsInstance(doc["port"], int)
        self.assertGreater(doc["port"], 0)
        self.assertEqual(doc["protocol"], 5)
        self.assertEqual(doc["listener"], self.port)
        self.assertIs(doc["clean_start"], True)
        self.assertEqual(doc["keepalive"], 33)
        self.assertNotIn("cert_subject", doc, "no certificate on a plain listener")
        for proto, clean in ((3, True), (4, False)):
            cid = unique_id("p%d-" % proto)
            self.assertEqual(connack_code(self.port, client_id=cid, proto=proto, clean=clean,
                                          username="allowed", password="x"), 0)
            doc = self.wait_log_json("REGISTER", client_id=cid)
            self.assertEqual((doc["protocol"], doc["clean_start"]), (proto, clean))

    def test_nil_defers_to_the_password_file(self):
        pw = self.password_file({"filed": "file-pw", "denied": "file-pw"})
        self.start(REGISTER, options={"password_file": pw, "allow_anonymous": False})
        self.assertEqual(connack_code(self.port, username="filed", password="file-pw"), 0,
                         "nil: the password file decides")
        self.assertEqual(connack_code(self.port, username="filed", password="nope"), 4)
        self.assertEqual(connack_code(self.port, username="denied", password="file-pw"), 4,
                         "the script's false is final: the password file is not asked")
        self.assertEqual(connack_code(self.port, username="allowed", password="not-in-file"), 0,
                         "the script's true is final")

    def test_changes_rename_user_and_client_id(self):
        self.start(REGISTER)
        events = Events(self, username="allowed", password="x")
        # Several, so that with several workers some new ids belong to another worker.
        for proto in (4, 5, 4, 5):
            cid = unique_id("orig")
            c = connected_client(self.port, cid, proto=proto, username="renameme", password="x")
            self.addCleanup(c.close)
            self.assertEqual(events.wait("connect", "renamed-" + cid), ["renamed"])
            c.ping("(the renamed client is connected)")


# ------------------------------------------------------------ subscribe / unsubscribe

SUBSCRIBE = """
function auth_on_subscribe(client, topic, qos)
  midge.log("info", "SUBSCRIBE " .. midge.json.encode({id = client.client_id, topic = topic, qos = qos}))
  if topic == "s/allow" then return true end
  if topic == "s/deny" then return false end
  if topic == "s/quota" then return false, 0x97 end
  if topic == "s/move" then return {topic = "s/moved", qos = 0} end
  if topic == "s/moved" then return true end
  if topic == "s/downgrade" then return {qos = 0} end
  if topic == "s/sneak" then return {topic = "s/secret/x"} end
  return nil
end

function auth_on_unsubscribe(client, topic)
  midge.log("info", "UNSUBSCRIBE " .. midge.json.encode({id = client.client_id, topic = topic}))
  if topic == "s/allow" then return false end
  return nil
end
"""

SUBSCRIBE_ACL = """topic read s/file/#
topic readwrite s/allow
topic readwrite s/move
topic readwrite s/moved
topic readwrite s/downgrade
"""


class Subscribe(LuaCase):

    def start_subscribe(self):
        acl = self.file("acl", SUBSCRIBE_ACL)
        self.start(SUBSCRIBE, options={"acl_file": acl})

    def test_allow_deny_reason_and_defer(self):
        self.start_subscribe()
        cid = unique_id("sub")
        c = self.client(cid, proto=5)
        codes = sub_codes(c, 1, [("s/allow", 1), ("s/deny", 1), ("s/quota", 1), ("s/file/x", 1),
                                 ("s/other", 1)])
        self.assertEqual(codes, [1, NOT_AUTHORIZED, QUOTA_EXCEEDED, 1, NOT_AUTHORIZED],
                         "true, false, false+0x97, nil then acl_file grants, nil and nobody grants")
        doc = self.wait_log_json("SUBSCRIBE", id=cid, topic="s/quota")
        self.assertEqual(doc["qos"], 1)
        old = self.client(proto=4)
        self.assertEqual(sub_codes(old, 2, [("s/quota", 1), ("s/allow", 0)], proto=4), [0x80, 0])

    def test_changes_topic_and_qos(self):
        self.start_subscribe()
        c = self.client(proto=5)
        self.assertEqual(sub_codes(c, 1, [("s/move", 1)]), [0], "granted the changed QoS")
        self.assertEqual(sub_codes(c, 2, [("s/downgrade", 2)]), [0])
        pub = self.client()
        pub.send(publish("s/move", "not here", qos=1, mid=1))
        pub.expect(puback(1))
        pub.send(publish("s/moved", "here", qos=1, mid=2))
        pub.expect(puback(2))
        got = parse_publish5(c.read_packet())
        self.assertEqual((got.topic, got.payload, got.qos), ("s/moved", b"here", 0))
        pub.send(publish("s/downgrade", "low", qos=1, mid=3))
        pub.expect(puback(3))
        got = parse_publish5(c.read_packet())
        self.assertEqual((got.topic, got.payload, got.qos), ("s/downgrade", b"low", 0))
        c.ping("(nothing from the topic the subscription moved away from)")

    def test_changed_topic_is_checked_again(self):
        self.start_subscribe()
        c = self.client(proto=5)
        self.assertEqual(sub_codes(c, 1, [("s/sneak", 1)]), [NOT_AUTHORIZED],
                         "moved to a filter that nobody grants (the acl_file does not)")

    def test_unsubscribe(self):
        self.start_subscribe()
        cid = unique_id("unsub")
        c = self.client(cid, proto=5)
        self.assertEqual(sub_codes(c, 1, [("s/allow", 1), ("s/file/x", 1)]), [1, 1])
        self.assertEqual(unsub_codes(c, 2, ["s/allow"])[0], NOT_AUTHORIZED)
        self.assertLess(unsub_codes(c, 3, ["s/file/x"])[0], 0x80,
                        "nil from every script: an UNSUBSCRIBE is allowed")
        self.wait_log_json("UNSUBSCRIBE", id=cid, topic="s/allow")
        pub = self.client()
        pub.send(publish("s/allow", "kept", qos=1, mid=1))
        pub.expect(puback(1))
        got = parse_publish5(c.read_packet())
        self.assertEqual((got.topic, got.payload), ("s/allow", b"kept"),
                         "the refused UNSUBSCRIBE left the subscription in place")


# ------------------------------------------------------------ publish

PUBLISH = """
function auth_on_publish(client, msg)
  if msg.topic:sub(1, 7) == "fields/" then
    midge.log("info", "MESSAGE " .. midge.json.encode({client = client, msg = msg}))
    return true
  end
  local t = msg.topic
  if t == "p/allow" then return true end
  if t == "p/deny" then return false end
  if t == "p/quota" then return false, 0x97 end
  if t == "p/move" then return {topic = "p/moved", payload = "changed", qos = 0, retain = true} end
  if t == "p/moved" then return true end
  if t == "p/payload" then return {payload = msg.payload .. "+lua"} end
  if t == "p/sneak" then return {topic = "p/secret"} end
  return nil
end
"""

PUBLISH_ACL = """topic read p/#
topic readwrite p/file/#
topic read fields/#
"""


class Publish(LuaCase):

    def start_publish(self, **plugin_options):
        acl = self.file("acl", PUBLISH_ACL)
        self.start(PUBLISH, options={"acl_file": acl}, **plugin_options)

    def test_allow_deny_reason_and_defer(self):
        self.start_publish()
        sub = self.client().subscribe_ok([("p/#", 1)])
        c = self.client(proto=5)
        self.assertLess(publish_v5(c, "p/allow", "a", 1), 0x80)
        self.assertEqual(publish_v5(c, "p/deny", "d", 2), NOT_AUTHORIZED)
        self.assertEqual(publish_v5(c, "p/quota", "q", 3), QUOTA_EXCEEDED)
        self.assertLess(publish_v5(c, "p/file/x", "f", 4), 0x80, "nil: the acl_file grants")
        self.assertEqual(publish_v5(c, "p/other", "o", 5), NOT_AUTHORIZED, "nil: nobody grants")
        for topic, payload in (("p/allow", "a"), ("p/file/x", "f")):
            sub.send(puback(sub.expect_publish(topic, payload, qos=1)))
        sub.ping("(only the allowed messages arrived)")
        old = self.client()
        old.send(publish("p/deny", "v4", qos=1, mid=9))
        old.expect(puback(9), msg="(MQTT 3.1.1: a refused QoS 1 message is still acknowledged)")
        sub.ping("(and it was dropped)")

    def test_message_and_client_fields(self):
        self.start_publish()
        cid = unique_id("fields")
        c = self.client(cid, proto=5)
        props = (prop_user("k", "v1") + prop_user("k", "v2") + prop_user("other", "x") +
                 prop_str(0x03, "text/plain") + prop_str(0x08, "fields/reply") +
                 prop_bin(0x09, "corr-1") + bytes([0x02]) + struct.pack("!I", 120))
        self.assertLess(publish_v5(c, "fields/x", "hello", 1, props=props, retain=True), 0x80)
        doc = self.wait_log_json("MESSAGE")
        msg, client = doc["msg"], doc["client"]
        self.assertEqual((msg["topic"], msg["payload"], msg["qos"], msg["retain"]),
                         ("fields/x", "hello", 1, True))
        p = msg["properties"]
        self.assertEqual(p["user"], {"k": "v2", "other": "x"}, "a repeated name: the last wins")
        self.assertEqual(p["content_type"], "text/plain")
        self.assertEqual(p["response_topic"], "fields/reply")
        self.assertEqual(p["correlation_data"], "corr-1")
        self.assertEqual(p["message_expiry"], 120)
        self.assertEqual(client["client_id"], cid)
        self.assertEqual(client["protocol"], 5)
        self.assertNotIn("username", client)
        self.assertNotIn("password", client, "passwords only reach auth_on_register")

    def test_changes_topic_payload_qos_retain(self):
        self.start_publish()
        sub = self.client().subscribe_ok([("p/#", 1)])
        c = self.client(proto=5)
        self.assertLess(publish_v5(c, "p/move", "original", 1), 0x80)
        sub.expect_publish("p/moved", "changed", qos=0)
        self.assertLess(publish_v5(c, "p/payload", "body", 2), 0x80)
        sub.send(puback(sub.expect_publish("p/payload", "body+lua", qos=1)))
        sub.ping("(nothing on the original topic)")
        later = self.client().subscribe_ok([("p/moved", 1)])
        later.expect_publish("p/moved", "changed", qos=0, retain=True,
                             msg="(retain = true in the changes: the message was retained)")

    def test_changed_topic_refused_by_the_acl_file(self):
        self.start_publish()
        sub = self.client().subscribe_ok([("p/#", 1)])
        c = self.client(proto=5)
        self.assertEqual(publish_v5(c, "p/sneak", "sneaky", 1), NOT_AUTHORIZED,
                         "the new topic is checked again: the script says nil, the acl_file no")
        sub.ping("(the refused message was not delivered)")


# ------------------------------------------------------------ on_deliver

DELIVER = """
function on_deliver(client, msg)
  midge.log("info", "DELIVER " .. midge.json.encode({id = client.client_id,
            online = client.address ~= nil, topic = msg.topic, payload = msg.payload}))
  if msg.payload == "secret" then return false end
  if client.client_id:find("^blocked") then return false end
  if client.client_id:find("^table") then return {payload = "for " .. client.client_id} end
  return nil
end
"""


class Deliver(LuaCase):

    def test_deny_for_one_subscriber(self):
        self.start(DELIVER)
        t = "d/" + unique_id("t")
        blocked, table, plain = (unique_id(p) for p in ("blocked-", "table-", "plain-"))
        subs = {cid: self.client(cid).subscribe_ok([(t, 1)]) for cid in (blocked, table, plain)}
        pub = self.client()
        pub.send(publish(t, "hello", qos=1, mid=1))
        pub.expect(puback(1))
        subs[plain].send(puback(subs[plain].expect_publish(t, "hello", qos=1)))
        subs[table].send(puback(subs[table].expect_publish(
            t, "for " + table, qos=1, msg="(this subscriber's own payload from on_deliver)")))
        subs[blocked].ping("(on_deliver said false for this subscriber)")
        self.wait_log_json("DELIVER", id=blocked, topic=t, payload="hello", online=True)
        pub.send(publish(t, "secret", qos=1, mid=2))
        pub.expect(puback(2))
        for c in subs.values():
            c.ping("(nobody gets a payload on_deliver refuses)")

    def test_offline_session(self):
        self.start(DELIVER)
        t = "d/" + unique_id("t")
        cid = unique_id("away-")
        c = self.client(cid, clean=False)
        c.subscribe_ok([(t, 1)])
        c.send(disconnect())
        c.expect_closed()
        pub = self.client()
        pub.send(publish(t, "queued", qos=1, mid=1))
        pub.expect(puback(1))
        pub.send(publish(t, "secret", qos=1, mid=2))
        pub.expect(puback(2))
        back = self.client(cid, clean=False, session_present=True)
        back.send(puback(back.expect_publish(t, "queued", qos=1)))
        back.ping("(the refused message was not queued or not sent)")
        self.wait_log_json("DELIVER", id=cid, payload="queued")


# ------------------------------------------------------------ notifications

NOTIFY = """
local function event(kind, ...)
  midge.publish("lua/events/" .. kind, table.concat({...}, " "))
end

function on_connect(client)
  event("connect", client.client_id, tostring(client.username), client.protocol)
  return false -- ignored: notifications decide nothing
end

function on_disconnect(client, reason)
  event("disconnect", client.client_id, reason)
end

function on_subscribe(client, topic, qos)
  if topic == "n/raise" then error("on_subscribe fails") end
  event("subscribe", client.client_id, topic, qos)
end

function on_reload()
  event("reload", "all")
end
"""


class Notifications(LuaCase):

    def test_connect_subscribe_disconnect(self):
        self.start(NOTIFY)
        events = Events(self)
        cid = unique_id("n")
        c = self.client(cid, proto=5, username="u1")
        self.assertEqual(events.wait("connect", cid), ["u1", "5"])
        c.ping("(on_connect returning false changes nothing)")
        self.assertEqual(sub_codes(c, 1, [("n/t", 1)]), [1])
        self.assertEqual(events.wait("subscribe", cid), ["n/t", "1"])
        self.assertEqual(sub_codes(c, 2, [("n/raise", 0)]), [0], "an error in a notification decides nothing")
        c.send(disconnect(proto=5, reason=0))
        c.expect_closed()
        self.assertEqual(events.wait("disconnect", cid), ["0"])
        gone = unique_id("gone")
        g = self.client(gone)
        events.wait("connect", gone)
        g.close()  # no DISCONNECT
        self.assertEqual(len(events.wait("disconnect", gone)), 1)

    def test_on_reload(self):
        self.start(NOTIFY)
        events = Events(self)
        self.broker.signal(signal.SIGHUP)
        # A worker runs on_reload with its new state, at the latest before its next hook.
        deadline = time.monotonic() + 10
        while True:
            cid = unique_id("after")
            self.client(cid)
            events.wait("connect", cid)
            try:
                events.wait("reload", "all", timeout=0.5)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise


# ------------------------------------------------------------ the midge module

API = """
local counter_key = "count"

function auth_on_publish(client, msg)
  local t = msg.topic
  if t == "api/kick" then
    midge.kick(msg.payload)
    return true
  end
  if t == "api/info" then
    local n = (midge.cache.get(counter_key) or 0) + 1
    midge.cache.set(counter_key, n, 60)
    local co = coroutine.wrap(function() coroutine.yield(1) coroutine.yield(2) end)
    local ok_publish = midge.publish("api/published", "from lua", 1, false)
    local bad_publish, why = midge.publish("api/bad/#", "x")
    local info = {
      now = midge.now(),
      count = n,
      missing = midge.cache.get("missing") == nil,
      matches = {midge.topic_matches("a/+/c", "a/b/c"), midge.topic_matches("a/#", "a"),
                 midge.topic_matches("a/+", "b/c")},
      utf8_len = utf8.len("h\\u{e9}llo"),
      coroutine = co() + co(),
      format = string.format("%05.1f", 3.14159),
      sorted = (function() local x = {3, 1, 2} table.sort(x) return table.concat(x, ",") end)(),
      floor = math.floor(2.5),
      loaded_text = load("return 1 + 1")(),
      binary_refused = load("\\27Lua") == nil,
      published = ok_publish == true,
      bad_publish = bad_publish == nil and type(why) == "string",
      absent = {io = type(io), execute = type(os.execute), package = type(package),
                dofile = type(dofile), loadfile = type(loadfile), debug = type(debug),
                dump = type(string.dump), getenv = type(os.getenv), remove = type(os.remove)},
    }
    return {topic = "api/out", payload = midge.json.encode(info)}
  end
  if t == "api/os" then
    local info = {time = os.time(), clock = type(os.clock()), year = os.date("!%Y"),
                  difftime = os.difftime(10, 4)}
    return {topic = "api/out", payload = midge.json.encode(info)}
  end
  if t == "json/in" then
    local doc, err = midge.json.decode(msg.payload)
    local out
    if doc == nil then
      out = {error = err}
    else
      doc.n = doc.n + 1
      doc.x_is_null = doc.x == midge.json.null
      doc.length = #doc.a
      out = doc
    end
    return {topic = "json/out", payload = midge.json.encode(out)}
  end
  if t == "json/unencodable" then
    local ok, err = pcall(midge.json.encode, {f = function() end})
    return {topic = "json/out", payload = midge.json.encode({ok = ok, error = err})}
  end
  if t == "read_file" then
    local ok, err = pcall(midge.read_file, "/etc/hostname")
    return {topic = "json/out", payload = midge.json.encode({ok = ok, error = err})}
  end
  if t == "api/log" then
    for _, level in ipairs({"error", "warning", "notice", "info", "debug"}) do
      midge.log(level, "LEVEL", level, 42, true)
    end
    print("PRINTED", 1, nil)
  end
  return true
end
"""


class Api(LuaCase):

    def test_info(self):
        self.start(API)
        out = self.client().subscribe_ok([("api/#", 0)])
        pub = self.client()
        infos, published = [], 0
        for mid in (1, 2):
            before = time.time()
            pub.send(publish("api/info", "", qos=1, mid=mid))
            pub.expect(puback(mid))
            while True:  # midge.publish's message may come before or after
                p = parse_publish(out.read_packet())
                if p.topic == b"api/published":
                    self.assertEqual(p.payload, b"from lua")
                    published += 1
                    continue
                self.assertEqual(p.topic, b"api/out")
                infos.append((before, json.loads(p.payload)))
                break
        while published < 2:
            out.expect_publish("api/published", "from lua", msg="(midge.publish)")
            published += 1
        before, info = infos[0]
        self.assertAlmostEqual(info["now"], before, delta=5)
        self.assertIsInstance(info["now"], float)
        self.assertEqual([i["count"] for _, i in infos], [1, 2], "midge.cache keeps values between calls")
        self.assertTrue(info["missing"])
        self.assertEqual(info["matches"], [True, True, False])
        self.assertEqual(info["utf8_len"], 5)
        self.assertEqual(info["coroutine"], 3)
        self.assertEqual(info["format"], "003.1")
        self.assertEqual(info["sorted"], "1,2,3")
        self.assertEqual(info["floor"], 2)
        self.assertEqual(info["loaded_text"], 2)
        self.assertTrue(info["binary_refused"], "load() takes text only")
        self.assertTrue(info["published"])
        self.assertTrue(info["bad_publish"], "midge.publish to a filter: nil, message")
        self.assertEqual(info["absent"], {k: "nil" for k in info["absent"]}, "unsafe functions are absent")

    def test_os_time_clock_date(self):
        self.start(API)
        out = self.client().subscribe_ok([("api/out", 0)])
        before = time.time()
        self.client().send(publish("api/os", ""))
        info = json.loads(parse_publish(out.read_packet()).payload)
        self.assertAlmostEqual(info["time"], before, delta=5)
        self.assertEqual(info["clock"], "number")
        self.assertEqual(info["year"], time.strftime("%Y", time.gmtime(before)))
        self.assertEqual(info["difftime"], 6)

    def test_kick(self):
        self.start(API)
        victim_id = unique_id("victim")
        victim = self.client(victim_id, proto=5)
        bystander = self.client(proto=5)
        pub = self.client()
        pub.send(publish("api/kick", victim_id, qos=1, mid=1))
        pub.expect(puback(1))
        got = victim.read_packet()
        self.assertEqual(got[0] >> 4, DISCONNECT)
        self.assertEqual(parse_v5(got).reason, ADMIN_ACTION)
        victim.expect_closed()
        bystander.ping("(only the named client was kicked)")
        pub.ping()

    def test_json_roundtrip(self):
        self.start(API)
        out = self.client().subscribe_ok([("json/out", 0)])
        pub = self.client()
        doc = {"n": 41, "x": None, "s": "h\u00e9 \U0001F600 \"q\" \\ \n\t\u0001",
               "a": [1, 2.5, "three", None, {"deep": [True, False]}], "e": {}, "big": 2 ** 62,
               "float": 0.1, "neg": -1.5e-300}
        pub.send(publish("json/in", json.dumps(doc), qos=0))
        back = json.loads(parse_publish(out.read_packet()).payload.decode("utf-8"))
        expected = dict(doc, n=42, x_is_null=True, length=5)
        self.assertEqual(back, expected)
        pub.send(publish("json/in", '{"n": 1,}'))
        err = json.loads(parse_publish(out.read_packet()).payload)["error"]
        self.assertRegex(err, r"at byte 9$", "decode: nil, message at byte N")
        pub.send(publish("json/unencodable", ""))
        res = json.loads(parse_publish(out.read_packet()).payload)
        self.assertIs(res["ok"], False)
        self.assertIn("function", res["error"])

    def test_read_file_only_at_load_time(self):
        self.start(API)
        out = self.client().subscribe_ok([("json/out", 0)])
        self.client().send(publish("read_file", ""))
        res = json.loads(parse_publish(out.read_packet()).payload)
        self.assertIs(res["ok"], False)
        self.assertIn("read_file", res["error"])

    def test_log(self):
        path = self.start(API)
        c = self.client()
        c.send(publish("api/log", "", qos=1, mid=1))
        c.expect(puback(1))
        name = re.escape(os.path.basename(path))
        for level in ("error", "warning", "notice", "info", "debug"):
            self.broker.wait_log(r"%s:\d+: LEVEL %s 42 true" % (name, level))
        self.broker.wait_log(r"PRINTED\t1\tnil")

    def test_password_hash_and_check(self):
        text = """
local HASHES = {
  pbkdf2 = midge.password_hash("pw-1"),
  sha512 = midge.password_hash("pw-1", "sha512"),
  argon2id = midge.password_hash("pw-1", "argon2id"),
}
function auth_on_register(client)
  if client.username ~= "hashes" then return true end
  for method, hash in pairs(HASHES) do
    midge.log("info", "HASH", method, hash)
    if not midge.password_check(hash, client.password) then return false end
  end
  return true
end
"""
        self.start(text, options={"workers": 1}, timeout_ms=20000)
        self.assertEqual(connack_code(self.port, username="hashes", password="pw-1"), 0)
        self.assertEqual(connack_code(self.port, username="hashes", password="pw-2"), 4)
        for method, prefix in (("pbkdf2", "$7$"), ("sha512", "$6$"), ("argon2id", "$argon2id$")):
            self.broker.wait_log(r"HASH %s %s" % (method, re.escape(prefix)))


# ------------------------------------------------------------ decision cache

COUNTED = """
function auth_on_register(client)
  midge.log("info", "CALL register " .. client.client_id .. " " .. tostring(client.password))
  return client.password ~= "wrong"
end

function auth_on_subscribe(client, topic, qos)
  midge.log("info", "CALL subscribe " .. topic)
  return topic ~= "c/deny"
end

function auth_on_publish(client, msg)
  midge.log("info", "CALL publish " .. msg.topic)
  if msg.topic == "c/change" then return {payload = msg.payload .. "+changed"} end
  return true
end
"""


class Cache(LuaCase):

    def calls(self, what):
        """How many times the script logged "CALL <what>" (call barrier() first)."""
        return self.log_count(r"CALL %s$" % re.escape(what))

    def barrier(self):
        """Waits until the broker's log has every line of the calls made so far
        (one worker: its log lines come in order)."""
        t = unique_id("c/barrier-")
        self.client().send(publish(t, "", qos=0))
        self.broker.wait_log(r"CALL publish %s$" % re.escape(t))

    def exercise(self):
        """Asks every kind of question twice; returns nothing (read self.calls())."""
        cid = unique_id("same")
        for _ in range(2):
            self.assertEqual(connack_code(self.port, client_id=cid, username="u", password="pw"), 0)
            self.assertEqual(connack_code(self.port, client_id=cid, username="u", password="wrong"), 4)
        c = self.client(proto=5)
        for mid in (1, 2):
            self.assertEqual(sub_codes(c, mid, [("c/t", 1), ("c/deny", 1)]), [1, NOT_AUTHORIZED])
        p = self.client(proto=5)
        for mid in (3, 4):
            self.assertLess(publish_v5(p, "c/t", "m", mid), 0x80)
        # Changes are applied to every message, cached or not.
        for mid in (5, 6):
            self.assertLess(publish_v5(p, "c/change", "m%d" % mid, mid), 0x80)
        return cid

    def test_second_identical_decision_skips_the_script(self):
        self.start(COUNTED, options={"workers": 1}, cache_ttl=60)
        sub = self.client().subscribe_ok([("c/change", 1)])
        cid = self.exercise()
        for mid in (5, 6):
            sub.send(puback(sub.expect_publish("c/change", "m%d+changed" % mid, qos=1)))
        self.barrier()
        self.assertEqual(self.calls("register %s pw" % cid), 1, self.broker.log())
        self.assertEqual(self.calls("register %s wrong" % cid), 1, "denials are cached too")
        self.assertEqual(self.calls("subscribe c/t"), 1)
        self.assertEqual(self.calls("subscribe c/deny"), 1)
        self.assertEqual(self.calls("publish c/t"), 1)
        # A new question is asked.
        c = self.client(proto=5)
        self.assertEqual(sub_codes(c, 1, [("c/other", 0)]), [0])
        self.barrier()
        self.assertEqual(self.calls("subscribe c/other"), 1)

    def test_no_cache_by_default(self):
        self.start(COUNTED, options={"workers": 1})
        self.client().subscribe_ok([("c/change", 1)])
        cid = self.exercise()
        self.barrier()
        self.assertEqual(self.calls("register %s pw" % cid), 2)
        self.assertEqual(self.calls("subscribe c/t"), 2)
        self.assertEqual(self.calls("publish c/t"), 2)

    def test_entries_expire(self):
        self.start(COUNTED, options={"workers": 1}, cache_ttl=1)
        c = self.client(proto=5)
        self.assertEqual(sub_codes(c, 1, [("c/t", 0)]), [0])
        self.assertEqual(sub_codes(c, 2, [("c/t", 0)]), [0])
        self.barrier()
        self.assertEqual(self.calls("subscribe c/t"), 1)
        time.sleep(1.3)
        self.assertEqual(sub_codes(c, 3, [("c/t", 0)]), [0])
        self.barrier()
        self.assertEqual(self.calls("subscribe c/t"), 2, "asked again after cache_ttl")


# ------------------------------------------------------------ reload

RELOAD_V1 = """
function auth_on_publish(client, msg)
  if msg.topic == "r/t" then return false, 0x97 end
  return true
end
"""

RELOAD_V2 = """
function auth_on_publish(client, msg)
  return true
end

function auth_on_subscribe(client, topic, qos)
  return topic ~= "r/now-denied"
end
"""

RELOAD_SYNTAX_ERROR = """
function auth_on_publish(client, msg)
  return true
end
function broken(
  return 1  -- SYNTAX
end
"""

RELOAD_TOP_LEVEL_ERROR = """
function auth_on_publish(client, msg) return true end
local settings = nil
local limit = settings.limit -- TOP LEVEL
"""


class Reload(LuaCase):

    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    def test_good_script_brings_new_behaviour(self):
        path = self.start(RELOAD_V1)
        c = self.client(proto=5)
        self.assertEqual(publish_v5(c, "r/t", "x", 1), QUOTA_EXCEEDED)
        self.assertEqual(sub_codes(c, 2, [("r/now-denied", 0)]), [0], "v1 has no auth_on_subscribe")
        self.write(path, RELOAD_V2)
        mids = iter(range(3, 60000))
        self.reload(self.broker, lambda: publish_v5(c, "r/t", "x", next(mids)) < 0x80,
                    "the new script")
        self.assertEqual(sub_codes(c, next(mids), [("r/now-denied", 0)]), [NOT_AUTHORIZED],
                         "a hook the new script defines is called from now on")

    def check_bad_reload(self, text, marker):
        path = self.start(RELOAD_V1)
        c = self.client(proto=5)
        self.assertEqual(publish_v5(c, "r/t", "x", 1), QUOTA_EXCEEDED)
        self.write(path, text)
        where = r"%s:%d:" % (re.escape(os.path.basename(path)), line_of(text, marker))
        mark = len(self.broker.log_lines)
        self.reload(self.broker, lambda: re.search(where, self.broker.log_since(mark)),
                    "a log line naming %s" % where)
        time.sleep(0.2)
        self.assertEqual(publish_v5(c, "r/t", "x", 2), QUOTA_EXCEEDED, "the old script stays")
        fresh = self.client(proto=5)
        self.assertEqual(publish_v5(fresh, "r/t", "x", 1), QUOTA_EXCEEDED,
                         "the old script stays for new clients too")
        self.assert_serves()

    def test_syntax_error_keeps_the_old_scripts(self):
        self.check_bad_reload(RELOAD_SYNTAX_ERROR, "SYNTAX")

    def test_top_level_error_keeps_the_old_scripts(self):
        self.check_bad_reload(RELOAD_TOP_LEVEL_ERROR, "TOP LEVEL")


# ------------------------------------------------------------ safety limits

BAD = """
local marker = ...
function auth_on_publish(client, msg)
  local t = msg.topic
  if t == "bad/loop" then
    while true do end -- LOOP
  elseif t == "bad/pcall" then
    while true do pcall(function() while true do end end) end -- PCALL
  elseif t == "bad/memory" then
    local t = {} while true do t[#t+1] = string.rep("x", 1e6) end -- MEMORY
  elseif t == "bad/memory-pcall" then
    while true do pcall(string.rep, "x", 1e9) end -- MEMPCALL
  elseif t == "bad/error" then
    error("deliberate") -- ERROR
  elseif t == "bad/io" then
    io.open("/etc/passwd") -- IO
  elseif t == "bad/execute" then
    os.execute("touch " .. msg.payload) -- EXECUTE
  elseif t == "bad/bytecode" then
    load(string.dump(function() return 1 end))() -- BYTECODE
  elseif t == "bad/dofile" then
    dofile("/etc/passwd") -- DOFILE
  elseif t == "bad/require" then
    require("os") -- REQUIRE
  elseif t == "bad/readonly" then
    string.upper = nil -- READONLY
  elseif t == "bad/table-error" then
    error({code = 1}) -- TABLE ERROR
  elseif t == "bad/assert" then
    assert(false, "asserted") -- ASSERT
  end
  return true
end
"""


class Safety(LuaCase):
    """Each misbehaving call: the on_error decision, one log line naming
    script and line, and a broker that goes on serving."""

    def start_bad(self, **plugin_options):
        opts = {"memory_limit": "16M"}
        opts.update(plugin_options)
        self.path = self.start(BAD, **opts)
        self.name = os.path.basename(self.path)
        self.bad = self.client(proto=5)
        self.mids = iter(range(1, 60000))

    def misbehave(self, topic, marker, expect=NOT_AUTHORIZED, payload="x"):
        """expect: the PUBACK reason (None: any success code)."""
        mark = len(self.broker.log_lines)
        t0 = time.monotonic()
        code = publish_v5(self.bad, topic, payload, next(self.mids))
        if expect is None:
            self.assertLess(code, 0x80, "%s: the on_error decision (allow)" % topic)
        else:
            self.assertEqual(code, expect, "%s: the on_error decision" % topic)
        elapsed = time.monotonic() - t0
        where = r"%s:%d:" % (re.escape(self.name), line_of(BAD, marker))
        wait_for(lambda: re.search(where, self.broker.log_since(mark)),
                 what="a log line naming %s:%d (%s)\n%s" % (self.name, line_of(BAD, marker), topic,
                                                           self.broker.log_since(mark)))
        lines = [l for l in self.broker.log_since(mark).splitlines() if self.name in l]
        self.assertEqual(len(lines), 1, "one log line per failure:\n" + "\n".join(lines))
        # The same state goes on answering, and other clients are served.
        self.assertLess(publish_v5(self.bad, "fine", "ok", next(self.mids)), 0x80)
        self.assert_serves()
        return elapsed

    def test_endless_loop(self):
        self.start_bad()
        self.assertLess(self.misbehave("bad/loop", "LOOP"), 3.0)

    def test_timeout_swallowed_by_pcall(self):
        self.start_bad()
        self.assertLess(self.misbehave("bad/pcall", "PCALL"), 3.0)

    def test_max_instructions(self):
        self.start_bad(timeout_ms=20000, max_instructions=200000)
        self.assertLess(self.misbehave("bad/loop", "LOOP"), 5.0,
                        "the instruction limit ends it long before timeout_ms")

    def test_memory_bomb(self):
        self.start_bad()
        self.misbehave("bad/memory", "MEMORY")

    def test_memory_error_swallowed_by_pcall(self):
        self.start_bad()
        self.misbehave("bad/memory-pcall", "MEMPCALL")

    def test_runtime_error(self):
        self.start_bad()
        self.misbehave("bad/error", "ERROR")

    def test_error_without_position(self):
        # error(table) and assert() add no "file:line:"; the log names them anyway.
        self.start_bad()
        self.misbehave("bad/table-error", "TABLE ERROR")
        self.misbehave("bad/assert", "ASSERT")

    def test_io_is_absent(self):
        self.start_bad()
        self.misbehave("bad/io", "IO")

    def test_os_execute_is_absent(self):
        self.start_bad()
        marker = os.path.join(self.tmp, "executed")
        self.misbehave("bad/execute", "EXECUTE", payload=marker)
        self.assertFalse(os.path.exists(marker))

    def test_bytecode_cannot_be_loaded(self):
        self.start_bad()
        self.misbehave("bad/bytecode", "BYTECODE")

    def test_dofile_and_require_are_absent(self):
        self.start_bad()
        self.misbehave("bad/dofile", "DOFILE")
        self.misbehave("bad/require", "REQUIRE")

    def test_libraries_are_read_only(self):
        self.start_bad()
        self.misbehave("bad/readonly", "READONLY")

    def test_on_error_allow(self):
        self.start_bad(on_error="allow")
        sub = self.client().subscribe_ok([("bad/#", 0)])
        self.misbehave("bad/error", "ERROR", expect=None)
        sub.expect_publish("bad/error", "x", msg="(on_error allow: the message went through)")

    def test_on_error_defer(self):
        acl = self.file("acl", "topic readwrite bad/loop\ntopic readwrite still/#\ntopic readwrite fine\n")
        self.start_bad(on_error="defer", options={"acl_file": acl})
        self.misbehave("bad/loop", "LOOP", expect=None)    # the acl_file allows it
        self.misbehave("bad/error", "ERROR", expect=NOT_AUTHORIZED)  # nobody allows it

    def test_scripts_do_not_share_globals(self):
        a = self.script('shared = "from a"\nfunction on_connect(c) shared = "changed" end\n')
        b = self.script('function auth_on_publish(client, msg)\n'
                        '  return {payload = tostring(shared)}\nend\n')
        self.start_lua([a, b], **FAST)
        sub = self.client().subscribe_ok([("g/t", 0)])
        self.client().send(publish("g/t", "x"))
        sub.expect_publish("g/t", "nil", msg="(each script has its own globals)")

    def test_client_table_changes_do_not_stick(self):
        # A hook that writes into its client table (by mistake or on purpose)
        # changes nothing that a later hook or script sees.
        a = self.script("""
function auth_on_publish(client, msg)
  pcall(function() client.username = "admin" client.note = "from a" end)
  return nil
end
""")
        b = self.script("""
function auth_on_publish(client, msg) return true end
function auth_on_subscribe(client, topic, qos)
  return client.username == "eve" and client.note == nil
end
""")
        self.start_lua([a, b], **FAST)
        eve = self.client(proto=5, username="eve")
        self.assertLess(publish_v5(eve, "x/y", "z", 1), 0x80)
        self.assertEqual(sub_codes(eve, 2, [("x/#", 0)]), [0], "client.username is still eve")

    def test_endless_top_level_refuses_to_start(self):
        text = "local x = 0\nwhile true do x = x + 1 end -- FOREVER\n"
        path = self.script(text)
        rc, log = self.refused_plugins([self.lua([path], **FAST)])
        self.assertNotEqual(rc, 0)
        self.assertRegex(log, r"%s:%d:" % (re.escape(os.path.basename(path)), line_of(text, "FOREVER")))


class Options(LuaCase):

    def test_bad_options_refuse_to_start(self):
        ok = self.script("function auth_on_publish(c, m) return true end\n")
        for opts in ({"timeout_ms": "soon"}, {"memory_limit": "lots"}, {"on_error": "maybe"},
                     {"max_instructions": "-1"}, {"cache_ttl": "x"}):
            with self.subTest(opts=opts):
                rc, log = self.refused_plugins([self.lua([ok], **opts)])
                self.assertNotEqual(rc, 0)
                self.assertIn(list(opts)[0], log)
        rc, log = self.refused_plugins([{"path": self.lua_so, "options": {"timeout_ms": 50}}])
        self.assertNotEqual(rc, 0, "no scripts")
        rc, log = self.refused_plugins([self.lua([os.path.join(self.tmp, "missing.lua")])])
        self.assertNotEqual(rc, 0)
        self.assertIn("missing.lua", log)

    def test_memory_limit_forms(self):
        """Bytes, k and M; the limit holds for each state (a 4 MB string needs more than 2M)."""
        text = 'local big = string.rep("x", 4 * 1024 * 1024)\nfunction auth_on_publish(c, m) return true end\n'
        path = self.script(text)
        for limit in ("16M", "20000k", str(24 * 1024 * 1024)):
            with self.subTest(limit=limit):
                b = self.start_plugins([self.lua([path], memory_limit=limit)])
                self.stop_checked(b)
        rc, log = self.refused_plugins([self.lua([path], memory_limit="2M")])
        self.assertNotEqual(rc, 0)
        self.assertIn("memory", log)

    def test_scripts_in_one_value_and_in_several(self):
        a = self.script('function auth_on_subscribe(c, t, q) if t == "o/a" then return false end end\n')
        b = self.script('function auth_on_subscribe(c, t, q) if t == "o/b" then return false end end\n')
        c = self.script('function auth_on_subscribe(c, t, q) return true end\n')
        for value in (["%s %s" % (a, b), c], ["%s,%s,%s" % (a, b, c)], [a, b, c]):
            with self.subTest(scripts=value):
                broker = self.start_plugins([{"path": self.lua_so, "options": {"scripts": value}}])
                cl = self.client(port=broker.port, proto=5)
                self.assertEqual(sub_codes(cl, 1, [("o/a", 0), ("o/b", 0), ("o/c", 0)]),
                                 [NOT_AUTHORIZED, NOT_AUTHORIZED, 0], "all three scripts, in order")
                cl.close()
                self.stop_checked(broker)
                self.broker = None

    def test_script_order(self):
        first = self.script('function auth_on_publish(c, m) if m.topic == "o/t" then return false, 0x97 end end\n')
        second = self.script('function auth_on_publish(c, m) return true end\n')
        self.start_lua([first, second], **FAST)
        c = self.client(proto=5)
        self.assertEqual(publish_v5(c, "o/t", "x", 1), QUOTA_EXCEEDED, "the first script decides")
        self.assertLess(publish_v5(c, "o/u", "x", 2), 0x80, "its nil: the second decides")

    def test_mosquitto_conf_plugin_opt(self):
        a = self.script('function auth_on_publish(c, m) if m.topic == "m/a" then return false end end\n')
        b = self.script('function auth_on_publish(c, m) return true end\n')
        conf = ("listener %d 127.0.0.1\nallow_anonymous true\nuser root\nplugin %s\n"
                "plugin_opt_scripts %s\nplugin_opt_scripts %s\nplugin_opt_timeout_ms 50\n"
                % (free_port(), self.lua_so, a, b))
        self.start_broker(raw_config=conf, config_name="broker.conf")
        c = self.client(proto=5)
        self.assertEqual(publish_v5(c, "m/a", "x", 1), NOT_AUTHORIZED)
        self.assertLess(publish_v5(c, "m/b", "x", 2), 0x80)

    def test_allow_modules(self):
        self.file("lmod_ok.lua", "return {answer = 42}\n")
        self.file("lmod_no.lua", "return {answer = 0}\n")
        text = """
local ok = require("lmod_ok")
function auth_on_publish(client, msg)
  if msg.topic == "mod/ok" then return {payload = tostring(ok.answer)} end
  if msg.topic == "mod/no" then require("lmod_no") end -- NOT ALLOWED
  return true
end
"""
        path = self.script(text)
        env = {"LUA_PATH_5_4": os.path.join(self.tmp, "?.lua") + ";;",
               "LUA_PATH": os.path.join(self.tmp, "?.lua") + ";;"}
        self.start_plugins([self.lua([path], allow_modules=["lmod_ok"], **FAST)], env=env)
        sub = self.client().subscribe_ok([("mod/#", 0)])
        c = self.client(proto=5)
        self.assertLess(publish_v5(c, "mod/ok", "x", 1), 0x80)
        sub.expect_publish("mod/ok", "42")
        self.assertEqual(publish_v5(c, "mod/no", "x", 2), NOT_AUTHORIZED, "a module not in allow_modules")
        self.broker.wait_log(r"lmod_no.*not allowed")


# ------------------------------------------------------------ etc/lua examples

class Examples(LuaCase):
    """etc/lua/*.lua as shipped, with the plugin's default options."""

    def test_auth(self):
        self.start_lua([example("auth.lua")])
        for proto in (4, 5):
            with self.subTest(proto=proto):
                def login(user, pw):
                    return connack_code(self.port, proto=proto, username=user, password=pw)
                bad = BAD_CREDENTIALS if proto == 5 else 4
                self.assertEqual(login("alice", "secret"), 0)
                self.assertEqual(login("bob", "builder"), 0)
                self.assertEqual(login("alice", "builder"), bad)
                self.assertEqual(login("alice", None), bad)
                self.assertEqual(login("mallory", "secret"), bad, "nil, and nobody else decides")
        self.broker.wait_log(r"auth\.lua:\d+: wrong password for alice from 127\.0\.0\.1")

    def test_auth_defers_to_a_password_file(self):
        pw = self.password_file({"erin": "erin-pw", "alice": "file-pw"})
        self.start_lua([example("auth.lua")], options={"password_file": pw, "allow_anonymous": False})
        self.assertEqual(connack_code(self.port, username="erin", password="erin-pw"), 0)
        self.assertEqual(connack_code(self.port, username="erin", password="x"), 4)
        self.assertEqual(connack_code(self.port, username="alice", password="file-pw"), 4,
                         "auth.lua owns alice: its false is final")

    def test_acl(self):
        self.start_lua([example("acl.lua")], options={"sys_interval": 1})
        alice = self.client(proto=5, username="alice")
        self.assertEqual(sub_codes(alice, 1, [("users/alice/#", 1), ("users/bob/#", 1), ("#", 0),
                                              ("users/+/x", 0), ("$SYS/#", 0)]),
                         [1, NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED, NOT_AUTHORIZED])
        alice.send(publish("users/alice/in", "hi", proto=5))  # QoS 0: she reads it back
        got = parse_publish5(alice.read_packet())
        self.assertEqual((got.topic, got.payload), ("users/alice/in", b"hi"))
        self.assertEqual(publish_v5(alice, "users/bob/in", "hi", 3), NOT_AUTHORIZED)
        self.assertEqual(publish_v5(alice, "users/alicex/in", "hi", 4), NOT_AUTHORIZED)
        anon = self.client(proto=5)
        self.assertEqual(sub_codes(anon, 1, [("users/alice/#", 0)]), [NOT_AUTHORIZED])
        self.assertEqual(publish_v5(anon, "users/alice/in", "x", 2), NOT_AUTHORIZED)
        wild = self.client(proto=5, username="+")
        self.assertEqual(sub_codes(wild, 1, [("users/+/#", 0)]), [NOT_AUTHORIZED])
        admin = self.client(proto=5, username="admin")
        self.assertEqual(sub_codes(admin, 1, [("$SYS/#", 0)]), [0])
        got = parse_publish5(admin.read_packet(timeout=15))
        self.assertTrue(got.topic.startswith("$SYS/"), got.topic)

    def test_auth_and_acl_together(self):
        self.start_lua([example("auth.lua"), example("acl.lua")], cache_ttl=60)
        bob = self.client(proto=5, username="bob", password="builder")
        self.assertEqual(sub_codes(bob, 1, [("users/bob/#", 0), ("users/alice/#", 0)]),
                         [0, NOT_AUTHORIZED])
        self.assertEqual(connack_code(self.port, proto=5, username="bob", password="secret"),
                         BAD_CREDENTIALS)

    def test_rewrite_json(self):
        self.start_lua([example("rewrite_json.lua")])
        sub = PahoClient(self.port, client_id=unique_id("paho-sub"))
        self.addCleanup(sub.close)
        sub.subscribe("sensors/#", 1)
        sub.subscribe("other/#", 1)
        pub = PahoClient(self.port, client_id=unique_id("paho-pub"))
        self.addCleanup(pub.close)
        before = time.time()
        pub.publish("sensors/kitchen", json.dumps({"t": 21.5, "unit": "\u00b0C", "tags": [1, None]}), qos=1)
        for payload in ("21.5", "[1, 2]", '{"broken": ', "\xff".encode("latin-1")):
            pub.publish("sensors/raw", payload, qos=1)
        pub.publish("other/x", '{"a": 1}', qos=1)
        msgs = sub.wait_messages(6)
        first = json.loads(msgs[0][1])
        self.assertEqual({k: v for k, v in first.items() if k != "received_at"},
                         {"t": 21.5, "unit": "\u00b0C", "tags": [1, None]})
        self.assertAlmostEqual(first["received_at"], before, delta=5)
        self.assertEqual([m[1] for m in msgs[1:5]], [b"21.5", b"[1, 2]", b'{"broken": ', b"\xff"],
                         "payloads that are not JSON objects pass untouched")
        self.assertEqual(msgs[5][:2], ("other/x", b'{"a": 1}'))

    def test_ratelimit(self):
        with open(example("ratelimit.lua")) as f:
            limit = int(re.search(r"^local MAX_PER_SECOND = (\d+)", f.read(), re.M).group(1))
        self.start_lua([example("ratelimit.lua")])
        for attempt in range(3):
            t = "rl/%d" % attempt
            sub = self.client().subscribe_ok([(t + "/#", 1)])
            c = self.client(proto=5)  # a fresh client id: a fresh count
            other = self.client(proto=5)
            # Start early in a wall clock second, so that the burst stays inside it.
            wait_for(lambda: 0.05 < time.time() % 1 < 0.3, timeout=2, interval=0.005, what="a new second")
            started = time.time()
            codes = [publish_v5(c, t + "/c", "m%d" % i, i + 1) for i in range(limit + 5)]
            other_code = publish_v5(other, t + "/o", "other client", 1)
            if int(time.time()) == int(started):
                break  # else a slow machine crossed into the next second: again
        self.assertEqual(codes, [0] * limit + [QUOTA_EXCEEDED] * 5, "within one second")
        self.assertLess(other_code, 0x80, "counted per client")
        for i in range(limit):
            sub.send(puback(sub.expect_publish(t + "/c", "m%d" % i, qos=1)))
        sub.send(puback(sub.expect_publish(t + "/o", "other client", qos=1)))
        sub.ping("(the refused ones were dropped)")
        time.sleep(1.0)
        self.assertLess(publish_v5(c, t + "/c", "next second", 100), 0x80, "the next second starts afresh")
        self.broker.wait_log(r"ratelimit\.lua:\d+: client \S+ is over %d publishes a second" % limit)

    def users_script(self, users_file):
        with open(example("users_json.lua")) as f:
            text = f.read()
        line = 'local USERS_FILE = "/etc/midge/users.json"'
        if line not in text:
            raise AssertionError("users_json.lua no longer has %r" % line)
        return self.script(text.replace(line, 'local USERS_FILE = "%s"' % users_file), "users_json.lua")

    def test_users_json(self):
        self.start_lua([self.users_script(example("users.json"))])
        self.assertEqual(connack_code(self.port, proto=5, username="dave", password="correct horse"), 0)
        self.assertEqual(connack_code(self.port, proto=5, username="carol", password="wrong"),
                         BAD_CREDENTIALS)
        self.assertEqual(connack_code(self.port, proto=5, username="zoe", password="x"), BAD_CREDENTIALS)
        carol = self.client(proto=5, username="carol", password="hunter2")
        self.assertEqual(sub_codes(carol, 1, [("devices/carol/#", 1), ("public/#", 0),
                                              ("devices/dave/#", 0), ("#", 0)]),
                         [1, 0, NOT_AUTHORIZED, NOT_AUTHORIZED])
        writer = self.client(proto=5, username="carol", password="hunter2")
        self.assertLess(publish_v5(writer, "public/news", "hi", 1), 0x80)
        self.assertEqual(publish_v5(writer, "devices/dave/cmd", "x", 2), NOT_AUTHORIZED)
        got = parse_publish5(carol.read_packet())
        self.assertEqual((got.topic, got.payload), ("public/news", b"hi"))

    def test_users_json_reload_and_bad_file(self):
        with open(example("users.json")) as f:
            dave = json.load(f)["users"]["dave"]["password"]  # "correct horse"
        users = self.file("users.json", json.dumps({"users": {"frank": {
            "password": dave, "topics": ["f/"]}}}))
        script = self.users_script(users)
        self.start_lua([script])
        self.assertEqual(connack_code(self.port, proto=5, username="frank", password="correct horse"), 0)
        with open(users, "w") as f:
            f.write('{"users": {"frank": ')
        mark = len(self.broker.log_lines)
        self.reload(self.broker, lambda: "users_json.lua" in self.broker.log_since(mark),
                    "a log line naming users_json.lua")
        self.assertIn("at byte", self.broker.log_since(mark), "the JSON error and where it is")
        self.assertEqual(connack_code(self.port, proto=5, username="frank", password="correct horse"), 0,
                         "the old users stay")
        os.remove(users)
        rc, log = self.refused_plugins([self.lua([script])])
        self.assertNotEqual(rc, 0, "a missing users file: the broker does not start")
        self.assertRegex(log, r"users_json\.lua:\d+: cannot read the users file")


# ------------------------------------------------------------ midge --test-auth / --test-acl

class DryRun(LuaCase):
    """midge --test-auth / --test-acl run the chain offline: allow exits 0, deny 1."""

    def setUp(self):
        super().setUp()
        if not midge_offers("--test-auth"):
            self.skipTest("this midge has no --test-auth / --test-acl (midge --help does not list them)")
        pw = self.password_file({"erin": "erin-pw"})
        doc = {"user": "root", "password_file": pw,
               "listeners": [{"port": 0, "bind_address": "127.0.0.1"}],
               "plugins": [self.lua([example("auth.lua"), example("acl.lua")])]}
        self.config = self.file("dry.yaml", "\n".join(yaml_block(doc)) + "\n")

    def run_dry(self, *args):
        r = run_midge(*(list(args[:1]) + ["-c", self.config] + list(args[1:])))
        return r.returncode, r.stdout.strip()

    def test_auth(self):
        rc, out = self.run_dry("--test-auth", "--username", "alice", "--password", "secret")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"^allow \(by lua: .*auth\.lua:\d+")
        rc, out = self.run_dry("--test-auth", "--username", "alice", "--password", "nope",
                               "--client-id", "dry-1")
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"^deny \(by lua: .*auth\.lua:\d+")
        rc, out = self.run_dry("--test-auth", "--username", "erin", "--password", "erin-pw")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"^allow \(by password_file", "auth.lua said nil: the file decided")
        rc, out = self.run_dry("--test-auth", "--username", "erin", "--password", "nope")
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"^deny \(by password_file")

    def test_acl(self):
        def acl(user, topic, access):
            args = ["--test-acl", "--client-id", "dry", "--topic", topic, "--access", access]
            if user:
                args += ["--username", user]
            return self.run_dry(*args)
        rc, out = acl("alice", "users/alice/x", "write")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"^allow \(by lua: .*acl\.lua:\d+")
        rc, out = acl("alice", "users/bob/x", "write")
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"^deny \(by lua: .*acl\.lua:\d+")
        self.assertEqual(acl("admin", "$SYS/#", "subscribe")[0], 0)
        self.assertEqual(acl("alice", "$SYS/#", "subscribe")[0], 1)
        self.assertEqual(acl(None, "users/x/#", "subscribe")[0], 1, "anonymous: denied")
        rc, out = acl("alice", "users/alice/x", "read")
        self.assertEqual(rc, 0, out)
        rc, out = acl("alice", "users/bob/x", "read")
        self.assertEqual(rc, 1, "on_deliver in acl.lua refuses: %s" % out)


if __name__ == "__main__":
    main()
