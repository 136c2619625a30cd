// Asks the web chat a question as a person would: the gateway's page, greedy settings, the question typed and sent
// with Enter, then the answer read once its stats line shows that the stream ended. With API_KEY, the page must first
// ask for a key: a wrong one is refused and asked for again, the right one is kept, and a reload needs no key again.
// Prints { answer, stats, key } as JSON (key: what was seen of the key entry, or null without API_KEY); exits 1 with a
// message on stderr when the page shows an error or no answer comes.
// Usage: node web-chat.mjs GATEWAY_URL QUESTION MAX_TOKENS [API_KEY] [CHROMIUM_PATH]
import { chromium } from 'playwright-core';

const [url, question, maxTokens, apiKey = '', executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!url || !question || !maxTokens) {
  console.error('usage: node web-chat.mjs GATEWAY_URL QUESTION MAX_TOKENS [API_KEY] [CHROMIUM_PATH]');
  process.exit(2);
}

const modelsListed = page => page.waitForFunction(() => document.querySelector('#model')?.options.length > 0, null, { timeout: 30_000 });

/** Enters a key in the page's key entry and saves it with Enter. */
async function enterKey(page, key) {
  await page.fill('#keyInput', key);
  await page.press('#keyInput', 'Enter');
}

/** The key entry as a person meets it: asked for, a wrong key refused, the right one kept across a reload (checked later). */
async function unlock(page) {
  await page.locator('#key').waitFor({ state: 'visible', timeout: 30_000 });
  const asked = await page.locator('#keyNote').innerText();
  await enterKey(page, `${apiKey}-wrong`);
  await page.waitForFunction(() => /refused/.test(document.querySelector('#keyNote').textContent)
    && !document.querySelector('#key').hidden, null, { timeout: 30_000 });
  const refused = await page.locator('#keyNote').innerText();
  await enterKey(page, apiKey);
  await modelsListed(page);
  return { asked, refused, hiddenOnceRight: await page.locator('#key').isHidden() };
}

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  await page.goto(url);
  const key = apiKey ? await unlock(page) : null;
  await modelsListed(page);
  await page.fill('#temperature', '0');
  await page.fill('#maxTokens', maxTokens);
  await page.fill('#input', question);
  await page.press('#input', 'Enter');
  const answer = page.locator('#log .msg.assistant').last();
  // An error before the first token replaces the answer; one after it is noted beneath the partial answer.
  await answer.locator('.stats, .error').or(page.locator('#log .msg.assistant.error')).first().waitFor({ timeout: 60_000 });
  if (await answer.evaluate(a => a.classList.contains('error') || a.querySelector('.error') !== null))
    throw new Error(`the page shows an error: ${await answer.innerText()}`);
  const result = await answer.evaluate(a => ({ answer: a.firstChild.textContent, stats: a.querySelector('.stats').textContent }));
  if (key) {
    // The key is kept in this browser: after a reload the page works without asking, the cluster view included.
    await page.reload();
    await modelsListed(page);
    await page.locator('#health .ok').waitFor({ timeout: 30_000 });
    key.askedAfterReload = await page.locator('#key').isVisible();
    key.stored = await page.evaluate(() => localStorage.getItem('exo-api-key'));
  }
  console.log(JSON.stringify({ ...result, key }));
} catch (e) {
  console.error(`the web chat did not answer: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
