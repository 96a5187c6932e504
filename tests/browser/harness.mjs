// What the browser scenarios share: a headless Debian Chromium with a fresh
// profile, steps that print one line each, expectations that either end the
// run (`expect`, `until`) or are reported and let it go on (`check`),
// screenshots taken once animations settle, and a failure report (failure.png,
// what the page showed, its errors, and the last API calls and answers).

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
// This machine has no network: without the background-networking flags
// Chromium's own connections are refused, many at a time.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
];
/** How often a condition is looked at again. */
const POLL_MS = 100;
/** A screenshot waits this long at most for animations to end. */
const SETTLE_TIMEOUT_MS = 2000;
/** API calls remembered for the failure report. */
const REMEMBERED_CALLS = 40;

/** An unmet expectation, with its evidence as the message. */
export class Unmet extends Error {}

export function seconds(ms) {
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * One run of a scenario. `screenshotDir` receives the screenshots (and
 * failure.png); `waitMs` is how long an expectation may take unless it says
 * otherwise; past `runTimeoutMs` the run names the step that hung and exits;
 * API calls whose request contains `quietCall` are left out of the report's
 * recent calls (polling that would hide the rest).
 */
export function browserRun({ screenshotDir, viewport, waitMs, runTimeoutMs, quietCall = null }) {
  mkdirSync(screenshotDir, { recursive: true });
  const screenshots = [];
  /** Recent API calls and their answers, for the failure report. */
  const calls = [];
  /** Errors the page itself raised. */
  const pageErrors = [];
  /** Expectations that failed (see `check`), and the step running now. */
  const unmet = [];
  let currentStep = 'launching the browser';

  /** An expectation the rest of the run depends on: fails the run at once. */
  function expect(condition, what) {
    if (!condition) throw new Unmet(what);
  }

  /**
   * An expectation the rest of the run does not depend on: reported now (with
   * failure.png for the first one), the run goes on, and the exit status says it.
   */
  async function check(page, condition, what) {
    if (condition) return;
    console.error(`FAIL ${currentStep}: ${what}`);
    if (unmet.length === 0) await reportPage(page);
    unmet.push(`${currentStep}: ${what}`);
  }

  /**
   * Polls `probe` until it returns something other than null/undefined/false
   * and returns that; fails with `what` (and the last value seen) otherwise.
   */
  async function until(what, probe, timeoutMs = waitMs) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        last = await probe();
        if (last !== null && last !== undefined && last !== false) return last;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Unmet(`${what} (not within ${seconds(timeoutMs)}; last seen: ${JSON.stringify(last ?? null)})`);
  }

  async function step(name, body) {
    currentStep = name;
    const started = Date.now();
    const unmetBefore = unmet.length;
    const detail = await body();
    const outcome = unmet.length === unmetBefore ? 'ok  ' : 'FAIL';
    console.log(`${outcome} ${name} (${seconds(Date.now() - started)})${detail ? ` — ${detail}` : ''}`);
  }

  /**
   * Saves the page once its finite animations (leader marks moving, cells
   * fading) are over, without the confirmation toasts that cover the view;
   * failure toasts stay.
   */
  async function screenshot(page, name) {
    await page.evaluate(() => {
      for (const dismiss of document.querySelectorAll('.toast.success button[aria-label="Dismiss"]')) dismiss.click();
    });
    await page
      .waitForFunction(
        () =>
          document
            .getAnimations()
            .every((animation) => animation.playState !== 'running' || animation.effect?.getComputedTiming().endTime === Infinity),
        null,
        { timeout: SETTLE_TIMEOUT_MS },
      )
      .catch(() => {});
    const path = join(screenshotDir, `${name}.png`);
    await page.screenshot({ path });
    screenshots.push(path);
    return screenshots.length;
  }

  /** Opens a view from the sidebar and waits for its heading. */
  async function open(page, label, heading = label) {
    await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: label, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
  }

  /** failure.png and what the page and the API said, for the first failure. */
  async function reportPage(page) {
    const failurePath = join(screenshotDir, 'failure.png');
    await page
      .screenshot({ path: failurePath, fullPage: true })
      .then(() => console.error(`  screenshot: ${failurePath}`))
      .catch(() => {});
    const shown = await page
      .locator('[role="alert"], .toast')
      .allInnerTexts()
      .catch(() => []);
    if (shown.length > 0) console.error(`  the page shows: ${JSON.stringify(shown)}`);
    if (pageErrors.length > 0) console.error(`  page errors: ${JSON.stringify(pageErrors)}`);
    const failedCalls = calls.filter((call) => call.status !== 200 || call.response.includes('"error"'));
    for (const call of failedCalls.slice(-5)) {
      console.error(`  failed call: ${call.request} → HTTP ${call.status} ${call.response}`);
    }
    const recent = calls.filter((call) => quietCall === null || !call.request.includes(quietCall)).slice(-5);
    for (const call of recent) console.error(`  recent call: ${call.request} → HTTP ${call.status} ${call.response}`);
  }

  /**
   * Opens the browser, runs `scenario(page)`, prints the screenshots and the
   * verdict, and sets the exit status.
   */
  async function run(scenario) {
    const runStarted = Date.now();
    const profile = mkdtempSync(join(tmpdir(), 'eddy-browser-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
      colorScheme: 'light',
      locale: 'en-US',
    });
    const watchdog = setTimeout(() => {
      console.error(`FAIL the run took over ${seconds(runTimeoutMs)}; hung in: ${currentStep}`);
      process.exit(1);
    }, runTimeoutMs);
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(waitMs);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('response', async (response) => {
      if (!response.url().endsWith('/api/call')) return;
      const request = response.request().postData() ?? '';
      const body = await response.text().catch(() => '');
      calls.push({ status: response.status(), request, response: body.slice(0, 600) });
      if (calls.length > REMEMBERED_CALLS) calls.shift();
    });

    try {
      await scenario(page);
    } catch (error) {
      const reason = error instanceof Unmet ? error.message : (error?.stack ?? String(error));
      console.error(`FAIL ${currentStep}: ${reason}`);
      if (unmet.length === 0) await reportPage(page);
      unmet.push(`${currentStep}: ${reason}`);
    } finally {
      clearTimeout(watchdog);
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    }
    console.log(`screenshots:\n${screenshots.map((path) => `  ${path}`).join('\n')}`);
    if (unmet.length > 0) {
      console.error(`${unmet.length} expectation(s) unmet after ${seconds(Date.now() - runStarted)}:`);
      for (const what of unmet) console.error(`  - ${what}`);
      process.exitCode = 1;
    } else {
      console.log(`all steps passed in ${seconds(Date.now() - runStarted)}`);
    }
  }

  return { expect, check, until, step, screenshot, open, run };
}
