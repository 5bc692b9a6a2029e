#!/usr/bin/python3
"""Process-level behaviour: several workers, privilege drop, log_dest topic.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_12_process.py
"""

import os
import pwd
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import (BrokerTestCase, PahoClient, is_mosquitto, main,  # noqa: E402
                       mosquitto_pub, unique_id, wait_for)


class Workers(BrokerTestCase):
    """With four workers, clients land on different workers (their session's
    worker is chosen by a hash of the client id): routing, takeover and
    persistent sessions must work across them exactly as with one."""

    broker_options = {"workers": 4}

    def setUp(self):
        self.midge_only("'workers' is a midge option")
        super().setUp()

    def test_fan_in_and_out_across_workers(self):
        topic = "workers/" + unique_id()
        subs = [PahoClient(self.port, client_id=unique_id("sub%d-" % i)) for i in range(8)]
        for s in subs:
            self.addCleanup(s.close)
            s.subscribe(topic + "/#", 1)
        pubs = [PahoClient(self.port, client_id=unique_id("pub%d-" % i)) for i in range(4)]
        for p in pubs:
            self.addCleanup(p.close)
        for n in range(25):
            for i, p in enumerate(pubs):
                p.publish("%s/%d" % (topic, i), "%d" % n, qos=1)
        for s in subs:
            got = s.wait_messages(100, timeout=10)
            self.assertEqual(len(got), 100)
            # Per publisher, order is kept.
            for i in range(4):
                mine = [int(m[1]) for m in got if m[0] == "%s/%d" % (topic, i)]
                self.assertEqual(mine, list(range(25)))

    def test_takeover_and_resume_across_workers(self):
        topic = "workers/resume/" + unique_id()
        ids = [unique_id("persist%d-" % i) for i in range(12)]
        for cid in ids:
            c = PahoClient(self.port, client_id=cid, clean_session=False)
            c.subscribe(topic, 1)
            c.disconnect()
        mosquitto_pub(self.port, "-t", topic, "-q", 1, "-m", "while offline")
        for cid in ids:
            c = PahoClient(self.port, client_id=cid, clean_session=False)
            self.addCleanup(c.close)
            got = c.wait_messages(1)
            self.assertEqual(got[0][1], b"while offline", cid)
            # A second connection with the same id takes over the first.
            d = PahoClient(self.port, client_id=cid, clean_session=False)
            self.addCleanup(d.close)
            self.assertTrue(c.disconnected.wait(5), "%s was not taken over" % cid)


class PrivilegeDrop(BrokerTestCase):
    """Started as root with `user`, the broker runs as that user."""

    broker_options = {"user": "nobody"}

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to drop privileges")
        super().setUp()

    def test_runs_as_the_configured_user(self):
        nobody = pwd.getpwnam("nobody")
        # The listeners open (and are logged) before privileges are dropped: wait until
        # the broker says it runs.
        self.broker.wait_log(r"midge version \S+ running")
        with open("/proc/%d/status" % self.broker.proc.pid) as f:
            uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        self.assertEqual({int(u) for u in uids}, {nobody.pw_uid})
        # It still serves clients.
        c = PahoClient(self.port, client_id=unique_id())
        self.addCleanup(c.close)


class LogToTopic(BrokerTestCase):
    broker_options = {"log_dest": "topic", "log_type": "all"}

    def test_log_lines_are_published(self):
        watcher = PahoClient(self.port, client_id=unique_id("watcher"))
        self.addCleanup(watcher.close)
        watcher.subscribe("$SYS/broker/log/#", 0)
        cid = unique_id("logged")
        PahoClient(self.port, client_id=cid).close()

        def connected_line():
            return any(t == "$SYS/broker/log/N" and cid.encode() in p and b"New client" in p
                       for t, p, _, _ in watcher.messages)
        wait_for(connected_line, what="a 'New client connected' line on $SYS/broker/log/N")


if __name__ == "__main__":
    main()
