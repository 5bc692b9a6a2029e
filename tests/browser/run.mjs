#!/usr/bin/env node
// tests/browser/run.mjs: drives page.html in headless Chromium (playwright-core
// with Debian's /usr/bin/chromium) for tests/integration/test_18_browser.py.
//
//   node run.mjs --http-port N --ws-port N --prefix TOPIC [--protocols 4,5] [--path /mqtt]
//
// For each MQTT protocol version the page connects to ws://127.0.0.1:WS/PATH,
// subscribes to PREFIX/in/V/#, publishes "ping from the browser (V) ✓" at
// QoS 1 to PREFIX/out/V/ping and waits for the answer that the Python test's
// paho client sends back to PREFIX/in/V/pong ("pong: " + the same text).
// Prints one line per step; exits 0 when everything arrived, 1 otherwise.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

function parseArgs(argv) {
  const args = { protocols: "4,5", path: "/mqtt", chromium: "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    args[key.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = argv[i + 1];
  }
  for (const required of ["httpPort", "wsPort", "prefix"]) {
    if (!args[required]) throw new Error(`missing --${required}`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const userDataDir = mkdtempSync(join(tmpdir(), "midge-chromium-"));
  let context;
  const deadline = setTimeout(() => {
    console.error("FAIL: timed out after 60 s");
    process.exit(1);
  }, 60000);
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: args.chromium,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (msg) => console.log(`page console: ${msg.text()}`));
    page.on("pageerror", (err) => console.log(`page error: ${err}`));
    await page.goto(`http://127.0.0.1:${args.httpPort}/page.html`);
    await page.waitForFunction(() => window.mqttTest !== undefined && typeof mqtt !== "undefined");
    const url = `ws://127.0.0.1:${args.wsPort}${args.path}`;
    for (const v of args.protocols.split(",").map(Number)) {
      const text = `ping from the browser (${v}) ✓`;
      const connack = await page.evaluate(([u, v]) => window.mqttTest.connect(u, {
        protocolVersion: v, clientId: `browser-${v}-${Date.now()}`, clean: true }), [url, v]);
      console.log(`connected with MQTT ${v}: ${JSON.stringify(connack)}`);
      const granted = await page.evaluate(([t]) => window.mqttTest.subscribe(t, 1), [`${args.prefix}/in/${v}/#`]);
      console.log(`subscribed: granted ${JSON.stringify(granted)}`);
      if (granted[0] !== 1) throw new Error(`SUBACK granted ${JSON.stringify(granted)}, expected [1]`);
      await page.evaluate(([t, p]) => window.mqttTest.publish(t, p, 1), [`${args.prefix}/out/${v}/ping`, text]);
      console.log("published the ping (PUBACK received)");
      const msg = await page.waitForFunction(() => window.mqttTest.messages.find((m) => m.topic.endsWith("/pong")),
        null, { timeout: 15000 }).then((h) => h.jsonValue());
      console.log(`received ${JSON.stringify(msg)}`);
      const want = { topic: `${args.prefix}/in/${v}/pong`, payload: `pong: ${text}`, qos: 1 };
      if (JSON.stringify(msg) !== JSON.stringify(want)) {
        throw new Error(`got ${JSON.stringify(msg)}, expected ${JSON.stringify(want)}`);
      }
      await page.evaluate(() => window.mqttTest.end());
      console.log(`MQTT ${v}: ok`);
    }
    console.log("PASS");
    return 0;
  } catch (err) {
    console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
    return 1;
  } finally {
    clearTimeout(deadline);
    if (context) await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

process.exit(await main());
