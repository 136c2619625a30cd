// Finds a chat request's trace in the Aspire dashboard as a person would: log in with the token URL the AppHost
// printed, open Traces, click the newest POST /v1/ trace (the list is oldest first), and read its span rows until
// the expected spans all show (each NAME@RESOURCE: a span whose name starts with NAME, from RESOURCE). Prints one JSON object: { url, spans: [{ name, resource }] } on success; exits 1
// with a message on stderr when no such trace shows up.
// Usage: node find-trace.mjs LOGIN_URL [NAME@RESOURCE,...] [CHROMIUM_PATH]
import { chromium } from 'playwright-core';

const [login, wanted = '', executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!login) {
  console.error('usage: node find-trace.mjs LOGIN_URL [NAME@RESOURCE,...] [CHROMIUM_PATH]');
  process.exit(2);
}
const expected = wanted.split(',').filter(r => r.length > 0).map(e => e.split('@'));

// Each span row of the grid reads as: name, resource, duration (after the header row of the timeline).
async function spanRows(page) {
  const lines = (await page.innerText('body')).split('\n').map(l => l.trim()).filter(l => l.length > 0);
  const spans = [];
  for (let i = lines.indexOf('Actions') + 1; i + 1 < lines.length; i++) {
    if (/^[\d.]+(ms|s|μs)$/.test(lines[i + 2] ?? '')) {
      spans.push({ name: lines[i], resource: lines[i + 1] });
      i += 2;
    }
  }
  return spans;
}

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1400 } });
  await page.goto(login);
  await page.goto(new URL('/traces', login).href);
  // Traces arrive in batches a second or so after the request: the list fills while we wait.
  const row = page.getByText('POST /v1/').last();
  await row.waitFor({ timeout: 30_000 });
  await row.click();
  await page.waitForURL(/\/traces\/detail\//, { timeout: 30_000 });
  // Each service exports its spans on its own schedule, and a stage's last decode span ends with the request: read
  // the grid again until every expected span shows.
  let spans = [];
  for (const deadline = Date.now() + 30_000; ; await page.waitForTimeout(1_000)) {
    await page.reload();
    await page.getByText('stage prefill').first().waitFor({ timeout: 30_000 });
    spans = await spanRows(page);
    if (expected.every(([name, resource]) => spans.some(s => s.resource === resource && s.name.startsWith(name))) || Date.now() > deadline) break;
  }
  console.log(JSON.stringify({ url: page.url(), spans }));
} catch (e) {
  console.error(`no chat trace found in the dashboard: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
