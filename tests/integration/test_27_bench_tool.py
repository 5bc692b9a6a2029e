#!/usr/bin/python3
"""midge_bench, the load generator midge ships: small bounded runs of each
mode against the broker, checking the JSON it prints adds up (every
connection accepted, every QoS 1 and 2 message acknowledged and received
once), and that a refused login is counted, not hidden. midge only (it is
midge's tool; the broker under test is the one built here).
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import MIDGE_BIN, BrokerTestCase, is_mosquitto  # noqa: E402

BENCH = os.environ.get("MIDGE_BENCH_BIN",
                       os.path.join(os.path.dirname(os.path.abspath(MIDGE_BIN)), "midge_bench"))


def bench(port, *args):
    """(exit status, the JSON line's object) of one midge_bench run."""
    res = subprocess.run([BENCH] + list(args) + ["-p", str(port), "--json", "--duration", "20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                         universal_newlines=True)
    lines = [l for l in res.stdout.splitlines() if l.startswith("{")]
    return res.returncode, (json.loads(lines[-1]) if lines else None), res.stderr


@unittest.skipIf(is_mosquitto(), "midge_bench is midge's tool; it is tested against midge")
@unittest.skipUnless(os.path.exists(BENCH), "midge_bench is not built next to MIDGE_BIN")
class BenchTool(BrokerTestCase):
    # Publishers are acknowledged on arrival and outrun the one subscriber: with the
    # default max_queued_messages (1000) a slow run (sanitizers) drops the excess.
    broker_options = {"max_queued_messages": 0}

    def test_connect_mode_counts_every_connection(self):
        rc, out, err = bench(self.port, "connect", "-n", "200", "-c", "4")
        self.assertEqual(rc, 0, err)
        self.assertEqual((out["mode"], out["count"], out["refused"]), ("connect", 200, 0))
        self.assertGreater(out["rate"], 0)

    def test_publish_qos1_and_2_arrive_once(self):
        for qos in ("1", "2"):
            with self.subTest(qos=qos):
                rc, out, err = bench(self.port, "publish", "-q", qos, "-n", "2000", "-c", "2",
                                     "--inflight", "16")
                self.assertEqual(rc, 0, err)
                self.assertEqual((out["count"], out["received"], out["acked"]), (2000, 2000, 2000))

    def test_cpu_time_of_the_broker(self):
        rc, out, err = bench(self.port, "connect", "-n", "100", "--pid",
                             str(self.broker.proc.pid))
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(out["cpu_seconds"], 0)


@unittest.skipIf(is_mosquitto(), "midge_bench is midge's tool; it is tested against midge")
@unittest.skipUnless(os.path.exists(BENCH), "midge_bench is not built next to MIDGE_BIN")
class BenchRefused(BrokerTestCase):
    broker_options = {"allow_anonymous": False}

    def test_refusals_are_reported_and_fail_the_run(self):
        rc, out, _ = bench(self.port, "connect", "-n", "20", "-c", "2")
        self.assertNotEqual(rc, 0, "every connection refused is a failed run")
        self.assertEqual(out["refused"], 20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
