// Drives the dashboard of the agent at process.env.DASHBOARD_URL in
// Debian's Chromium. Steps are driven by the Go side over stdin/stdout:
// it prints "STEP <name> ok ..." after each check and waits for a line on
// stdin before the next, so the Go side can push commits in between.
// LOADS=n loads the page n times first and reports each first render
// (for the benchmark); ONLY=first,scaled stops after those steps.
import { chromium } from "playwright-core";
import readline from "node:readline";

const url = process.env.DASHBOARD_URL;
const shot = process.env.SCREENSHOT;
const loads = Number(process.env.LOADS || "1");
const only = process.env.ONLY ? process.env.ONLY.split(",") : null;
const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
const next = async () => { await lines.next(); };
const wanted = (s) => !only || only.includes(s);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// historyRow is the text of the history row of the commit whose subject
// is subject ("" when there is none).
const historyRow = (page, subject) => page.evaluate((subject) => {
  for (const tr of document.querySelectorAll("#history tbody tr")) {
    if (tr.cells.length > 1 && tr.cells[1].textContent.trim().startsWith(subject)) return tr.innerText;
  }
  return "";
}, subject);
const waitRow = (page, subject, text) => page.waitForFunction(([subject, text]) => {
  for (const tr of document.querySelectorAll("#history tbody tr")) {
    if (tr.cells.length > 1 && tr.cells[1].textContent.trim() === subject && tr.innerText.includes(text)) return true;
  }
  return false;
}, [subject, text], { timeout: 60000 });

try {
  // Each load in a new page; the first render is the page's own mark,
  // the first contentful paint the browser's.
  let page;
  const renders = [], fcps = [], walls = [];
  for (let i = 0; i < loads; i++) {
    if (page) await page.close();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const started = Date.now();
    await page.goto(url);
    await page.waitForSelector(".card h3", { timeout: 30000 });
    walls.push(Date.now() - started);
    const t = await page.evaluate(() => ({
      render: performance.getEntriesByName("driftless-first-render")[0]?.startTime ?? -1,
      fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? -1,
    }));
    renders.push(t.render); fcps.push(t.fcp);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  await page.waitForFunction(() => document.querySelector("#live")?.textContent === "live", null, { timeout: 30000 });
  await page.waitForFunction(() => document.body.innerText.includes("web") && document.querySelectorAll(".replica .dot.ok").length === 1, null, { timeout: 60000 });
  const nodes = await page.locator("#nodes tbody tr").allInnerTexts();
  if (!nodes.some((t) => t.includes("node-1") && t.includes("alive"))) throw new Error("nodes table: " + nodes.join(" | "));
  // The history: the commit in force, accepted, with its placement.
  await waitRow(page, "web", "accepted");
  const row = await historyRow(page, "web");
  if (!row.includes("web →") || !row.includes("node-1")) throw new Error("history row of web: " + row);
  console.log(`STEP first ok render=${median(renders).toFixed(1)}ms fcp=${median(fcps).toFixed(1)}ms wall=${median(walls)}ms loads=${loads}`);

  // The Go side scales web to 2: shown without a reload.
  await next();
  const pushed = Date.now();
  await page.waitForFunction(() => document.querySelectorAll(".replica .dot.ok").length === 2, null, { timeout: 60000 });
  const scaled = Date.now() - pushed;
  await waitRow(page, "web: 2 replicas", "accepted");
  console.log(`STEP scaled ok update=${scaled}ms`);
  if (!wanted("rejected")) { console.log("DONE"); process.exit(0); }

  // The Go side pushes a broken manifest: the rejection with its line,
  // in the banner and in the history.
  await next();
  await page.waitForFunction(() => !document.querySelector("#rejection").classList.contains("hidden")
    && document.querySelector("#rej-lines").textContent.includes("broken.yaml:"), null, { timeout: 60000 });
  const rej = await page.locator("#rej-lines").innerText();
  await waitRow(page, "broken", "refused");
  const brow = await historyRow(page, "broken");
  if (!brow.includes("broken.yaml:5")) throw new Error("history row of broken: " + brow);
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
