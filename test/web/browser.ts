// Headless chromium (Debian's /usr/bin/chromium, driven by puppeteer-core: no browser download)
// inside a lab's bae namespace, opened on an agent's live view; shared by the live-view tests.
import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { AgentLab } from '../agent/agent-lab';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Launches chromium in namespace `ns` (a wrapper script through nsenter, written into the lab's
 * run directory), opens http://127.0.0.1:`port`/ and waits until the page says it is live.
 */
export async function openLiveView(al: Pick<AgentLab, 'write' | 'runDir'>, ns: string, port: number, height: number): Promise<{ browser: Browser; page: Page }> {
  const wrapper = al.write('chromium.sh', `#!/bin/sh\nexec nsenter --net=/run/netns/${ns} ${CHROMIUM} "$@"\n`);
  fs.chmodSync(wrapper, 0o755);
  const browser = await puppeteer.launch({
    executablePath: wrapper,
    pipe: true,
    headless: true,
    timeout: 30_000,
    protocolTimeout: 30_000,
    userDataDir: path.join(al.runDir, 'chromium'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    defaultViewport: { width: 1400, height },
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load', timeout: 15_000 });
    await page.waitForSelector('#state.live', { timeout: 10_000 });
    return { browser, page };
  } catch (err) {
    await browser.close();
    throw err;
  }
}
