#!/usr/bin/python3
"""midge_bench, the load generator midge ships: small bounded runs of each
scenario against the broker, checking the JSON it prints adds up (every
connection accepted, every QoS 1 and 2 message acknowledged and received
once and in order), and that a refused login is counted, not hidden. midge only (it is
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


FLOW_KEYS = ("scenario", "qos", "size", "version", "publishers", "subscribers", "sent",
             "delivered", "expected", "lost", "duplicates", "reordered", "wall_s",
             "delivered_per_s", "broker_cpu_s", "delivered_per_cpu_s", "lat_p50_us",
             "lat_p99_us", "lat_p999_us")


@unittest.skipIf(is_mosquitto(), "midge_bench is midge's tool; it is tested against midge")
@unittest.skipUnless(os.path.exists(BENCH), "midge_bench is not built next to MIDGE_BIN")
class BenchTool(BrokerTestCase):
    # Publishers are acknowledged on arrival and outrun the one subscriber: with the
    # default max_queued_messages (1000) a slow run (sanitizers) drops the excess.
    broker_options = {"max_queued_messages": 0}

    def assert_lossless(self, out, sent, fan=1):
        """Every message sent, delivered once to each subscriber, in order."""
        for key in FLOW_KEYS:
            self.assertIn(key, out)
        self.assertTrue(out["ok"], out["error"])
        self.assertEqual((out["sent"], out["expected"], out["delivered"]),
                         (sent, sent * fan, sent * fan))
        self.assertEqual((out["lost"], out["duplicates"], out["reordered"]), (0, 0, 0))
        self.assertGreater(out["delivered_per_s"], 0)
        self.assertGreater(out["lat_p999_us"], 0)
        self.assertLessEqual(out["lat_p50_us"], out["lat_p99_us"])
        self.assertLessEqual(out["lat_p99_us"], out["lat_p999_us"])

    def test_connect_storm_counts_every_connection(self):
        rc, out, err = bench(self.port, "connect", "--connections", "200", "--concurrency", "4")
        self.assertEqual(rc, 0, err)
        self.assertEqual((out["scenario"], out["connections"], out["refused"]),
                         ("connect", 200, 0))
        self.assertGreater(out["connections_per_s"], 0)
        self.assertGreater(out["lat_p99_us"], 0)

    def test_fanin_qos1_and_2_arrive_once(self):
        for qos in ("1", "2"):
            with self.subTest(qos=qos):
                rc, out, err = bench(self.port, "fanin", "-q", qos, "-n", "1000",
                                     "--publishers", "10", "--window", "16")
                self.assertEqual(rc, 0, err)
                self.assertEqual((out["scenario"], out["publishers"], out["subscribers"]),
                                 ("fanin", 10, 1))
                self.assert_lossless(out, 1000)
                self.assertEqual(out["acked"], 1000)

    def test_fanout_reaches_every_subscriber(self):
        rc, out, err = bench(self.port, "fanout", "-q", "1", "-n", "100", "--subscribers", "20")
        self.assertEqual(rc, 0, err)
        self.assertEqual((out["publishers"], out["subscribers"]), (1, 20))
        self.assert_lossless(out, 100, fan=20)

    def test_pairs_mqtt5_retained_qos2(self):
        rc, out, err = bench(self.port, "pairs", "-q", "2", "-n", "1000", "--pairs", "10",
                             "-V", "5", "--retain", "-s", "100")
        self.assertEqual(rc, 0, err)
        self.assertEqual((out["version"], out["size"], out["publishers"]), ("5", 100, 10))
        self.assert_lossless(out, 1000)

    def test_open_loop_qos0(self):
        # QoS 0 loss would be reported, not fail the run; on loopback there is none.
        rc, out, err = bench(self.port, "pairs", "--pairs", "5", "--rate", "2000", "-n", "400")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["rate"], 2000)
        self.assert_lossless(out, 400)

    def test_idle_reads_the_broker_memory(self):
        rc, out, err = bench(self.port, "idle", "--connections", "50", "--subscribe", "--pid",
                             str(self.broker.proc.pid))
        self.assertEqual(rc, 0, err)
        self.assertEqual((out["connections"], out["subscribe"]), (50, True))
        self.assertGreater(out["rss_before"], 0)
        self.assertGreater(out["rss_after"], 0)
        self.assertIn("rss_per_conn", out)

    def test_cpu_time_of_the_broker(self):
        rc, out, err = bench(self.port, "connect", "--connections", "100", "--pid",
                             str(self.broker.proc.pid))
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(out["broker_cpu_s"], 0)
        self.assertIn("connections_per_cpu_s", out)


@unittest.skipIf(is_mosquitto(), "midge_bench is midge's tool; it is tested against midge")
@unittest.skipUnless(os.path.exists(BENCH), "midge_bench is not built next to MIDGE_BIN")
class BenchRefused(BrokerTestCase):
    broker_options = {"allow_anonymous": False}

    def test_refusals_are_reported_and_fail_the_run(self):
        rc, out, _ = bench(self.port, "connect", "--connections", "20", "--concurrency", "2")
        self.assertNotEqual(rc, 0, "every connection refused is a failed run")
        self.assertEqual(out["refused"], 20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
