#!/usr/bin/python3
"""MQTT.js in headless Chromium through a websockets listener: the page
(tests/browser/page.html, with the mqtt browser bundle from
tests/browser/node_modules, served by a small http.server on a free loopback
port) connects to ws://127.0.0.1:PORT/mqtt with MQTT 3.1.1 and 5,
subscribes and publishes; a paho client on the TCP listener answers each
ping from the browser with a pong, so messages go both ways.
tests/browser/run.mjs drives the page with playwright-core and Debian's
/usr/bin/chromium.

This test installs nothing: it skips, saying why, unless `npm ci` has been run
in tests/browser (mqtt and playwright-core) and /usr/bin/chromium and node
exist.

Run alone: MIDGE_TEST_TARGET=mosquitto /usr/bin/python3 tests/integration/test_18_browser.py
"""

import functools
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from midgetest import PahoClient, SecureTestCase, main, unique_id  # noqa: E402

BROWSER_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "browser"))
CHROMIUM = os.environ.get("MIDGE_CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")


def missing_requirements():
    needs = []
    for mod in ("mqtt/dist/mqtt.min.js", "playwright-core/package.json"):
        if not os.path.exists(os.path.join(BROWSER_DIR, "node_modules", mod)):
            needs.append("tests/browser/node_modules/%s (run `npm ci` in tests/browser)" % mod.split("/")[0])
    if not os.access(CHROMIUM, os.X_OK):
        needs.append("%s (apt-get install chromium)" % CHROMIUM)
    if not NODE:
        needs.append("node (apt-get install nodejs)")
    return needs


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@unittest.skipIf(missing_requirements(), "browser test needs: %s" % "; ".join(missing_requirements()))
class Browser(SecureTestCase):

    def setUp(self):
        super().setUp()
        self.start_broker(listeners=[{}, {"protocol": "websockets"}])
        self.tcp, self.ws = self.broker.ports
        handler = functools.partial(QuietHandler, directory=BROWSER_DIR)
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.http.daemon_threads = True
        thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(self.http.server_close)
        self.addCleanup(self.http.shutdown)

    def run_page(self, prefix, protocols="4,5", path="/mqtt"):
        cmd = [NODE, os.path.join(BROWSER_DIR, "run.mjs"), "--http-port", str(self.http.server_address[1]),
               "--ws-port", str(self.ws), "--prefix", prefix, "--protocols", protocols, "--path", path]
        proc = subprocess.Popen(cmd, cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # node and the Chromium it started
            out, _ = proc.communicate()
            self.fail("run.mjs did not finish within 90 s:\n" + out.decode("utf-8", "replace"))
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # anything left of that session
            except ProcessLookupError:
                pass
        return proc.returncode, out.decode("utf-8", "replace")

    def echo(self, prefix):
        """A paho client on TCP that answers PREFIX/out/V/ping with PREFIX/in/V/pong."""
        paho = PahoClient(self.tcp, client_id=unique_id("echo"))
        self.addCleanup(paho.close)
        seen = []

        def on_message(client, userdata, msg):
            seen.append((msg.topic, bytes(msg.payload), msg.qos))
            version = msg.topic.split("/")[-2]
            client.publish("%s/in/%s/pong" % (prefix, version), b"pong: " + msg.payload, qos=1)
        paho.client.on_message = on_message
        self.assertEqual(paho.subscribe(prefix + "/out/#", 1), [1])
        return seen

    def test_mqtt_js_in_chromium(self):
        prefix = "browser/" + unique_id("b")
        seen = self.echo(prefix)
        rc, out = self.run_page(prefix)
        self.assertEqual(rc, 0, "run.mjs failed:\n" + out)
        self.assertIn("PASS", out)
        # What the browser published reached the TCP client byte for byte.
        self.assertEqual(seen, [("%s/out/%d/ping" % (prefix, v),
                                 ("ping from the browser (%d) \u2713" % v).encode("utf-8"), 1)
                                for v in (4, 5)])
        self.broker.wait_log(r"New client connected from \S+ as browser-5-\d+ \(p5")

    def test_mqtt_js_on_another_path(self):
        prefix = "browser/" + unique_id("b")
        seen = self.echo(prefix)
        rc, out = self.run_page(prefix, protocols="4", path="/custom/path")
        self.assertEqual(rc, 0, "run.mjs failed:\n" + out)
        self.assertEqual(len(seen), 1)


if __name__ == "__main__":
    main()
