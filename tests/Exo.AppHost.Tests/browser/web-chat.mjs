// Asks the web chat a question as a person would: the gateway's page, greedy settings, the question typed and sent
// with Enter, then the answer read once its stats line shows that the stream ended. Prints { answer, stats } as JSON;
// exits 1 with a message on stderr when the page shows an error or no answer comes.
// Usage: node web-chat.mjs GATEWAY_URL QUESTION MAX_TOKENS [CHROMIUM_PATH]
import { chromium } from 'playwright-core';

const [url, question, maxTokens, executablePath = '/usr/bin/chromium'] = process.argv.slice(2);
if (!url || !question || !maxTokens) {
  console.error('usage: node web-chat.mjs GATEWAY_URL QUESTION MAX_TOKENS [CHROMIUM_PATH]');
  process.exit(2);
}

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector('#model')?.options.length > 0, null, { timeout: 30_000 });
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
  console.log(JSON.stringify(result));
} catch (e) {
  console.error(`the web chat did not answer: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
