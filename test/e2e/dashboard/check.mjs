// Drives the dashboard of the agent at process.env.DASHBOARD_URL in
// Debian's Chromium. Steps are driven by the Go test over stdin/stdout:
// it prints "STEP <name> ok" after each check and waits for a line on
// stdin before the next, so the Go side can push commits in between.
import { chromium } from "playwright-core";
import readline from "node:readline";

const url = process.env.DASHBOARD_URL;
const shot = process.env.SCREENSHOT;
const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
const next = async () => { await lines.next(); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const started = Date.now();
  await page.goto(url);
  await page.waitForSelector(".card h3", { timeout: 30000 });
  const firstPaint = Date.now() - started;
  await page.waitForFunction(() => document.querySelector("#live")?.textContent === "live", null, { timeout: 30000 });
  await page.waitForFunction(() => document.body.innerText.includes("web") && document.querySelectorAll(".replica .dot.ok").length === 1, null, { timeout: 60000 });
  const nodes = await page.locator("#nodes tbody tr").allInnerTexts();
  if (!nodes.some((t) => t.includes("node-1") && t.includes("alive"))) throw new Error("nodes table: " + nodes.join(" | "));
  console.log(`STEP first ok ${firstPaint}ms`);

  // The Go side scales web to 2: shown without a reload.
  await next();
  const pushed = Date.now();
  await page.waitForFunction(() => document.querySelectorAll(".replica .dot.ok").length === 2, null, { timeout: 60000 });
  console.log(`STEP scaled ok ${Date.now() - pushed}ms`);

  // The Go side pushes a broken manifest: the rejection with its line.
  await next();
  await page.waitForFunction(() => !document.querySelector("#rejection").classList.contains("hidden")
    && document.querySelector("#rej-lines").textContent.includes("broken.yaml:"), null, { timeout: 60000 });
  const rej = await page.locator("#rej-lines").innerText();
  console.log(`STEP rejected ok ${JSON.stringify(rej)}`);

  // A replica's log, from this node.
  await page.locator(".replica").first().click();
  await page.waitForFunction(() => document.querySelector("#logs-text").textContent.includes("hello from web"), null, { timeout: 30000 });
  console.log("STEP logs ok");
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  console.log("DONE");
} finally {
  await browser.close();
  rl.close();
}
