// Loads each page of a running api in headless Chromium, waits for live updates to arrive in the page,
// and saves screenshots. Run by test_pages.py, which starts the api and feeds it live data.
// Environment: BASE_URL, STOP_ID, API_KEY, DAY (YYYY-MM-DD), ROUTE_ID, ARTIFACTS (a directory); TRANSLATED_URL and
// TRANSLATED_STOP_ID: an api on a feed with translations.txt, for the board's names in the chosen language.
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = process.env;
const base = env.BASE_URL;
const artifacts = env.ARTIFACTS;
mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "smartbus-chromium-"));
const results = [];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function countOf(page, selector) {
  return page.locator(selector).count();
}

async function waitForGrowth(page, read, what, timeoutMs = 15000) {
  const first = await read();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const now = await read();
    if (now > first) return [first, now];
    await page.waitForTimeout(200);
  }
  throw new Error(`${what} did not change within ${timeoutMs} ms (stayed at ${first})`);
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
});
const failures = [];
async function scenario(name, body, origin = base) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => { if (!r.url().startsWith(origin)) errors.push("external request " + r.url()); });
  page.on("request", (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith("data:") && !r.url().startsWith("blob:")) errors.push("external request " + r.url()); });
  try {
    const detail = await body(page);
    check(errors.length === 0, "page errors: " + errors.join("; "));
    results.push({ name, ok: true, ...detail });
  } catch (error) {
    await page.screenshot({ path: join(artifacts, `${name}-failed.png`), fullPage: true }).catch(() => {});
    failures.push(`${name}: ${error.message}`);
    results.push({ name, ok: false, error: error.message });
  } finally {
    await page.close();
  }
}

await scenario("board", async (page) => {
  await page.setViewportSize({ width: 390, height: 844 }); // a phone
  await page.goto(`${base}/stops/${encodeURIComponent(env.STOP_ID)}?lang=en`);
  await page.waitForSelector("#arrivals li", { timeout: 15000 });
  const [before, after] = await waitForGrowth(page, () => countOf(page, "#arrivals li"), "board rows");
  const status = await page.textContent("#status");
  check(/Updated \d+ s ago/.test(status), `status says ${JSON.stringify(status)}`);
  check((await page.textContent("#zone")).includes(env.TIMEZONE), "times not labelled with the agency's zone");
  const labels = await page.locator("#arrivals li").evaluateAll((rows) => rows.map((r) => r.getAttribute("aria-label")));
  check(labels.every((l) => l && l.startsWith("Bus ")), "rows without screen-reader labels");
  check(await countOf(page, "#arrivals .wheelchair") > 0, "no wheelchair-accessible mark");
  await page.screenshot({ path: join(artifacts, "board-en.png"), fullPage: true });
  await page.keyboard.press("Tab"); // the language switch is the first control: keyboard reachable
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.documentElement.lang === "vi");
  check((await page.textContent("#arrivals")).includes("phút") || (await page.textContent("#arrivals")).includes("Sắp đến"),
    "Vietnamese board has no Vietnamese times");
  await page.screenshot({ path: join(artifacts, "board-vi.png"), fullPage: true });
  return { rows_before: before, rows_after: after };
});

if (env.TRANSLATED_URL) {
  await scenario("board-languages", async (page) => {
    const read = async () => ({
      stop: await page.textContent("#stop-name"),
      headsigns: await page.locator("#arrivals .headsign").allTextContents(),
      routes: await page.locator("#arrivals .route").allTextContents(),
    });
    const shown = (stop, headsign) => page.waitForFunction(([s, h]) =>
      document.getElementById("stop-name").textContent === s &&
      [...document.querySelectorAll("#arrivals .headsign")].some((e) => e.textContent === h),
    [stop, headsign], { timeout: 15000 });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${env.TRANSLATED_URL}/stops/${encodeURIComponent(env.TRANSLATED_STOP_ID)}?lang=en`);
    await shown("Nhon Market", "Pho Moi");
    const names = { en: await read() };
    await page.click("#lang");
    await page.waitForFunction(() => document.documentElement.lang === "vi");
    await shown("Chợ Nhớn", "Phố Mới"); // the stop and the live board, both in Vietnamese now
    names.vi = await read();
    check(new URL(page.url()).searchParams.get("lang") === "vi", "the chosen language is not kept in the address");
    await page.screenshot({ path: join(artifacts, "board-names-vi.png"), fullPage: true });
    await page.click("#lang");
    await shown("Nhon Market", "Pho Moi");
    return { names, back_to_english: await page.textContent("#stop-name") };
  }, env.TRANSLATED_URL);
}

await scenario("map", async (page) => {
  await page.goto(`${base}/`);
  await page.waitForFunction(() => /^[1-9]\d* buses$/.test(document.getElementById("count").textContent), null, { timeout: 15000 });
  const read = async () => parseInt(await page.textContent("#count"), 10);
  const [before, after] = await waitForGrowth(page, read, "bus count");
  check(await countOf(page, ".leaflet-overlay-pane canvas, .leaflet-overlay-pane path") > 0, "no route shapes or buses drawn");
  await page.waitForSelector("#problems li", { timeout: 15000 });
  const problems = await page.textContent("#problems");
  check(problems.includes("Bunching"), `problems panel shows ${JSON.stringify(problems)}`);
  await page.screenshot({ path: join(artifacts, "map.png") });
  return { buses_before: before, buses_after: after };
});

await scenario("analytics", async (page) => {
  const q = new URLSearchParams({ from: env.DAY, to: env.DAY, day: env.DAY, route_id: env.ROUTE_ID });
  await page.goto(`${base}/analytics?${q}`);
  await page.fill("#key", "sb_not_a_key");
  await page.click("button[type=submit]");
  await page.waitForFunction(() => document.getElementById("status").className === "error");
  check((await page.textContent("#status")).startsWith("401"), "a bad key is not refused clearly");
  await page.fill("#key", env.API_KEY);
  await page.click("button[type=submit]");
  await page.waitForSelector("body[data-loaded=yes]", { timeout: 15000 });
  check(await countOf(page, "#by-route svg rect") > 0, "no bars by route");
  check(await countOf(page, "#by-hour svg rect") === 24, "by hour is not 24 bars");
  check(await countOf(page, "#delays svg rect") > 0, "no delay distribution");
  check(await countOf(page, "#marey path.line-actual") > 0, "Marey chart has no actual trip");
  check(await countOf(page, "#marey path.line-scheduled") > 0, "Marey chart has no scheduled trip");
  await page.screenshot({ path: join(artifacts, "analytics.png"), fullPage: true });
  return {};
});

await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(JSON.stringify(results));
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
