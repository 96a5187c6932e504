// The console in a real browser against a real 3-node cluster: headless
// Debian Chromium (playwright-core) drives the UI that `eddy serve` serves,
// through what a user does — create a topic, produce and browse a message,
// kill the leader of partition 0 and watch leadership move and the timeline
// explain it, restart the node, run the demo workload and watch lag, reset
// the demo group's offsets, replay a range into a new topic — and saves
// screenshots of every main view.
//
// Usage: node tests/browser/console.mjs CONSOLE_URL SCREENSHOT_DIR
//   CONSOLE_URL: the URL `eddy serve` printed (with its ?token=...).
// Prints one line per step and the screenshots' paths. An unmet
// expectation is printed with its evidence (and SCREENSHOT_DIR/failure.png
// for the first one); one that later steps depend on ends the run there.
// Exits non-zero if any expectation was unmet.

import { browserRun, seconds } from './harness.mjs';

const VIEWPORT = { width: 1280, height: 800 };

const NODES = 3;
const PARTITIONS = 3;
const REPLICATION_FACTOR = 3;
/** The issue's bound on leadership moving after a kill. */
const LEADER_MOVE_LIMIT_MS = 3000;
/** A restarted node is up and back in sync within this. */
const REJOIN_TIMEOUT_MS = 20_000;
/** The demo's consumers (2 × 1000/20 records/s) fall behind its producer. */
const DEMO = { partitions: 3, recordsPerSec: 200, consumers: 2, processingMs: 20 };
const DEMO_GROUP = 'eddy-demo';
/** The demo's consumers have a 6 s session; the group empties after it. */
const GROUP_EMPTY_TIMEOUT_MS = 30_000;
/** How long one expectation may take to come true, unless it says otherwise. */
const WAIT_MS = 10_000;
/** The whole run; past it the script names the step that hung and exits. */
const RUN_TIMEOUT_MS = 170_000;

const [url, screenshotDir] = process.argv.slice(2);
if (!url || !screenshotDir) {
  console.error('usage: node tests/browser/console.mjs CONSOLE_URL SCREENSHOT_DIR');
  process.exit(2);
}

const suffix = Date.now().toString(36);
const topic = `orders-${suffix}`;
const replayTopic = `${topic}-replayed`;
const demoTopic = `demo-${suffix}`;
const message = {
  key: 'order-1',
  value: '{"id":1,"item":"kettle","quantity":2}',
  header: ['source', 'browser-test'],
};

const { expect, check, until, step, screenshot, open, run } = browserRun({
  screenshotDir,
  viewport: VIEWPORT,
  waitMs: WAIT_MS,
  runTimeoutMs: RUN_TIMEOUT_MS,
  // The demo's status is polled every second and would hide the other calls.
  quietCall: '"demoStatus"',
});

function replicaCells(page, partition) {
  return page.locator(`[data-topic="${topic}"][data-partition="${partition}"][data-role]`);
}

async function roleOf(page, partition, nodeId) {
  const cell = page.locator(`[data-topic="${topic}"][data-partition="${partition}"][data-node-id="${nodeId}"]`);
  return (await cell.count()) === 1 ? cell.getAttribute('data-role') : null;
}

async function leaderOf(page, partition) {
  const leaders = page.locator(`[data-topic="${topic}"][data-partition="${partition}"][data-role="leader"]`);
  return (await leaders.count()) === 1 ? Number(await leaders.getAttribute('data-node-id')) : null;
}

function nodeColumn(page, nodeId) {
  return page.locator(`section[data-node-id="${nodeId}"][data-status]`);
}

/** Digits of a formatted count ("1,234" → 1234); null for "—". */
function count(text) {
  const digits = (text ?? '').replace(/[^\d]/g, '');
  return digits === '' ? null : Number(digits);
}

async function cellTexts(row) {
  return row.locator('td').allInnerTexts();
}

async function scenario(page) {
  let leaderMoveMs = 0;
  let killed = 0;
  let newLeader = 0;

  await step(`console loads with ${NODES} nodes up`, async () => {
    await page.goto(url);
    await page.getByRole('heading', { level: 1, name: 'Cluster', exact: true }).waitFor();
    await until(`${NODES} node columns with status up`, async () =>
      (await page.locator('section[data-node-id][data-status="up"]').count()) === NODES,
    20_000);
    return `${page.url().split('?')[0]}`;
  });

  await step(`a. create topic ${topic} (${PARTITIONS} partitions, RF ${REPLICATION_FACTOR}) from Topics`, async () => {
    await open(page, 'Topics');
    await page.getByRole('button', { name: 'Create topic', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Create topic' });
    await dialog.getByLabel('Topic name').fill(topic);
    await dialog.getByLabel('Partitions').fill(String(PARTITIONS));
    await dialog.getByLabel('Replication factor').fill(String(REPLICATION_FACTOR));
    await dialog.getByRole('button', { name: 'Create topic' }).click();
    await dialog.waitFor({ state: 'detached' });
    const row = page.locator(`tbody tr[data-topic="${topic}"]:not([data-partition])`);
    const texts = await until(`${topic} listed with ${PARTITIONS} partitions and RF ${REPLICATION_FACTOR}`, async () => {
      if ((await row.count()) !== 1) return null;
      const cells = await cellTexts(row);
      return cells[1] === String(PARTITIONS) && cells[2] === String(REPLICATION_FACTOR) ? cells : null;
    });
    await screenshot(page, 'topics');

    await open(page, 'Cluster');
    await page.getByLabel('Filter topics').fill(topic);
    for (let partition = 0; partition < PARTITIONS; partition++) {
      await until(`${REPLICATION_FACTOR} replica cells for ${topic}-${partition} in the Cluster view`, async () =>
        (await replicaCells(page, partition).count()) === REPLICATION_FACTOR,
      );
    }
    return `listed as ${JSON.stringify(texts.slice(0, 3))}; ${PARTITIONS}×${REPLICATION_FACTOR} replica cells`;
  });

  await step('b. produce a message (key, JSON value, header) and browse it from the beginning', async () => {
    await open(page, 'Messages');
    await page.getByLabel('Topic', { exact: true }).selectOption(topic);
    const produce = page.getByRole('form', { name: 'Produce a message' });
    await produce.getByLabel('Key', { exact: true }).fill(message.key);
    await produce.getByLabel('Value', { exact: true }).fill(message.value);
    await produce.getByLabel('Produce to partition').fill('0');
    await produce.getByRole('button', { name: '+ Add header' }).click();
    await produce.getByLabel('Header 1 name').fill(message.header[0]);
    await produce.getByLabel('Header 1 value').fill(message.header[1]);
    await produce.getByRole('button', { name: 'Produce', exact: true }).click();
    await page.locator('.toast', { hasText: `Produced to ${topic}-0 at offset 0` }).waitFor();

    const browse = page.getByRole('form', { name: 'Browse messages' });
    await browse.getByLabel('Start at').selectOption('beginning');
    await browse.getByRole('button', { name: 'Browse', exact: true }).click();
    const row = page.locator('tr[data-partition="0"][data-offset="0"]');
    await row.waitFor();
    const cells = await cellTexts(row);
    expect(cells[3] === message.key, `the key column shows ${message.key}: ${JSON.stringify(cells)}`);
    expect(cells[4] === message.value, `the value column shows the value: ${JSON.stringify(cells)}`);
    expect(cells[5] === '1', `the row counts 1 header: ${JSON.stringify(cells)}`);

    await row.click();
    const detail = page.getByRole('complementary', { name: 'Message detail' });
    await detail.getByRole('heading', { name: `${topic}-0 @ 0` }).waitFor();
    const key = await detail.getByLabel('Key as text').innerText();
    expect(key === message.key, `the detail shows the key as text: ${JSON.stringify(key)}`);
    const pretty = JSON.stringify(JSON.parse(message.value), null, 2);
    const json = await detail.getByLabel('Value as json').innerText();
    expect(
      JSON.stringify(JSON.parse(json)) === message.value && json.includes('\n'),
      `the value is shown as pretty JSON: ${JSON.stringify(json)} (expected like ${JSON.stringify(pretty)})`,
    );
    const headerRow = detail.locator('tr', { hasText: message.header[0] });
    const header = await headerRow.locator('td').allInnerTexts();
    expect(
      header[0] === message.header[0] && header[1] === message.header[1],
      `the header ${message.header.join('=')} is shown: ${JSON.stringify(header)}`,
    );

    await detail.getByRole('group', { name: 'Value format' }).getByRole('button', { name: 'HEX' }).click();
    const hex = await detail.getByLabel('Value as hex').innerText();
    const expectedHex = Buffer.from(message.value).toString('hex');
    expect(hex.replace(/\s/g, '') === expectedHex, `the value in hex is its bytes: ${JSON.stringify(hex)}`);
    await screenshot(page, 'messages');
    await detail.getByRole('group', { name: 'Value format' }).getByRole('button', { name: 'JSON' }).click();
    await detail.getByLabel('Value as json').waitFor();
    return `offset 0 of ${topic}-0: key, JSON value, header, hex (${hex.split('\n')[0]} …)`;
  });

  await step('c. kill the leader of partition 0 from the Cluster view; leadership moves', async () => {
    await open(page, 'Cluster');
    await page.getByLabel('Filter topics').fill(topic);
    killed = await until(`a leader cell for ${topic}-0`, () => leaderOf(page, 0));
    const wasController = (await nodeColumn(page, killed).getByTitle('Active controller').count()) > 0;
    await page.getByRole('button', { name: `Kill node ${killed}`, exact: true }).click();
    const dialog = page.getByRole('dialog', { name: `Kill node ${killed}?` });
    await dialog.getByRole('button', { name: 'Kill', exact: true }).click();
    const killedAt = Date.now();
    const leader = await until(
      `the leader cell of ${topic}-0 on a node other than ${killed}`,
      async () => {
        const now = await leaderOf(page, 0);
        return now !== null && now !== killed ? now : null;
      },
      LEADER_MOVE_LIMIT_MS + 7000,
    );
    leaderMoveMs = Date.now() - killedAt;
    newLeader = leader;
    const role = wasController ? 'the leader and the controller' : 'the leader';
    console.log(`     leader of ${topic}-0 moved from node ${killed} (${role}) to node ${leader} in ${leaderMoveMs} ms`);
    await screenshot(page, 'cluster-after-kill');
    await check(
      page,
      leaderMoveMs <= LEADER_MOVE_LIMIT_MS,
      `the leader cell moved within ${LEADER_MOVE_LIMIT_MS} ms of the kill of node ${killed} (${role}): took ${leaderMoveMs} ms`,
    );
    const status = await nodeColumn(page, killed).getAttribute('data-status');
    return `node ${killed} (${role}) → node ${leader} in ${leaderMoveMs} ms; node ${killed} shows ${status}`;
  });

  await step(`c. the Timeline explains why node ${killed} lost partition 0 and who leads it now`, async () => {
    await open(page, 'Timeline');
    const events = page.getByRole('list', { name: 'Events' }).locator('li.event');
    const mentioning = events.filter({ hasText: new RegExp(`node ${killed}\\b`, 'i') });
    const found = await until(`an event (fenced / down / leader elected) mentioning node ${killed}`, async () => {
      const kinds = await mentioning.evaluateAll((items) => items.map((item) => item.getAttribute('data-kind')));
      return kinds.find((kind) => /fenced|node_down|leader_elected|leader_moved/.test(kind ?? '')) ?? null;
    });
    const text = await mentioning.and(page.locator(`[data-kind="${found}"]`)).first().locator('.text').innerText();
    await screenshot(page, 'timeline');

    // Topic names are case-sensitive: the explanation must spell the topic
    // as the chip beside it does.
    await page.getByLabel('Filter by kind').selectOption('leader_elected');
    const election = page
      .locator('li.event[data-kind="leader_elected"]')
      .filter({ has: page.getByRole('button', { name: `${topic}-0`, exact: true }) })
      .filter({ hasText: `node ${newLeader}` });
    const explanation = await until(`a leader_elected event for ${topic}-0 naming node ${newLeader}`, async () =>
      (await election.count()) > 0 ? election.first().locator('.text').innerText() : null,
    );
    await check(
      page,
      explanation.includes(`${topic}-0`),
      `the leader_elected explanation names partition ${topic}-0 as it is spelled: ${JSON.stringify(explanation)}`,
    );
    await page.getByLabel('Filter by kind').selectOption('');
    return `${found}: "${text}"; leader_elected: "${explanation}"`;
  });

  await step(`c. restart node ${killed} from the UI; it comes back up and rejoins the ISR`, async () => {
    await open(page, 'Cluster');
    await page.getByLabel('Filter topics').fill(topic);
    const started = Date.now();
    await page.getByRole('button', { name: `Restart node ${killed}`, exact: true }).click();
    await until(`node ${killed} shows status up`, async () =>
      (await nodeColumn(page, killed).getAttribute('data-status')) === 'up',
    REJOIN_TIMEOUT_MS);
    const upMs = Date.now() - started;
    // What the row of partition 0 showed, change by change, as evidence.
    const seen = [];
    await until(
      `node ${killed}'s replica of ${topic}-0 in sync again (follower, or leader once preferred leadership is restored), not out-of-sync/offline`,
      async () => {
        const role = await roleOf(page, 0, killed);
        const leaders = await page
          .locator(`[data-topic="${topic}"][data-partition="0"][data-role="leader"]`)
          .evaluateAll((cells) => cells.map((cell) => cell.getAttribute('data-node-id')).join('+'));
        const shown = `node ${killed} ${role}, leader ${leaders || 'none'}`;
        if (seen.at(-1)?.shown !== shown) seen.push({ atMs: Date.now() - started, shown });
        return role === 'follower' || role === 'leader';
      },
      Math.max(1000, REJOIN_TIMEOUT_MS - upMs),
    );
    const history = seen.map(({ atMs, shown }) => `+${atMs} ms: ${shown}`).join('; ');
    // Leadership goes back to a restarted node only once it is in sync
    // (automatic preferred-leader rebalancing): until then the new leader
    // alone leads, and never two nodes or none.
    await check(
      page,
      seen.every(
        ({ shown }) =>
          shown.endsWith(`leader ${newLeader}`) || shown === `node ${killed} leader, leader ${killed}`,
      ),
      `while node ${killed} rejoined, ${topic}-0 was led by node ${newLeader} alone (or by node ${killed} again once in sync): ${history}`,
    );
    await page.getByLabel('Filter topics').fill('');
    await screenshot(page, 'cluster');
    return `up after ${seconds(upMs)}, follower of ${topic}-0 after ${seconds(Date.now() - started)} (${history})`;
  });

  await step(
    `d. start the demo (${DEMO.recordsPerSec} records/s, ${DEMO.consumers} consumers, ${DEMO.processingMs} ms each); lag per partition`,
    async () => {
      await open(page, 'Demo workload');
      const form = page.getByRole('form', { name: 'Demo settings' });
      await form.getByLabel('Topic', { exact: true }).fill(demoTopic);
      await form.getByLabel('Partitions').fill(String(DEMO.partitions));
      await form.getByLabel('Records per second').fill(String(DEMO.recordsPerSec));
      await form.getByLabel('Consumers').fill(String(DEMO.consumers));
      await form.getByLabel('Processing ms per record').fill(String(DEMO.processingMs));
      await form.getByRole('button', { name: 'Start demo' }).click();
      await page.locator('.badge', { hasText: 'running' }).waitFor();
      await until('the demo produced and consumed records', async () => {
        const produced = count(await page.locator('[data-stat="produced"]').innerText());
        const consumed = count(await page.locator('[data-stat="consumed"]').innerText());
        return produced > 0 && consumed > 0;
      }, 15_000);

      await page.getByRole('link', { name: `Open group ${DEMO_GROUP}` }).click();
      await page.getByRole('heading', { level: 2, name: DEMO_GROUP, exact: true }).waitFor();
      const rows = page.getByRole('table', { name: 'Partition lag' }).locator(`tr[data-topic="${demoTopic}"]`);
      const lags = await until(
        `a lag row with a number for each of the ${DEMO.partitions} partitions of ${demoTopic}, one of them above 0`,
        async () => {
          const lags = await rows.evaluateAll((items) =>
            items.map((item) => [item.getAttribute('data-partition'), item.getAttribute('data-lag')]),
          );
          const numeric = lags.filter(([, lag]) => lag !== null && /^\d+$/.test(lag));
          return numeric.length === DEMO.partitions && numeric.some(([, lag]) => Number(lag) > 0) ? lags : null;
        },
        20_000,
      );
      const chart = page.getByRole('img', { name: `Lag of ${DEMO_GROUP} over time` });
      await chart.locator('svg').waitFor({ timeout: 20_000 });
      await screenshot(page, 'groups');

      await open(page, 'Demo workload');
      const producedRate = page.locator('.stat', { has: page.locator('[data-stat="produced"]') }).getByText(/\/s$/);
      const rate = await until('the Demo view shows the records produced per second', async () => {
        const text = await producedRate.innerText();
        return count(text) > 0 ? text : null;
      });
      await screenshot(page, 'demo');
      await page.getByRole('button', { name: 'Stop demo' }).click();
      await page.locator('.badge', { hasText: 'stopped' }).waitFor();
      return `lag by partition ${lags.map(([partition, lag]) => `${partition}:${lag}`).join(' ')}; chart drawn; producing ${rate}; demo stopped`;
    },
  );

  await step(`e. once ${DEMO_GROUP} is Empty, reset its offsets on ${demoTopic} to earliest from Messages`, async () => {
    await open(page, 'Consumer groups');
    const state = page.locator(`tr[data-group="${DEMO_GROUP}"] .state`);
    const emptyStarted = Date.now();
    await until(`group ${DEMO_GROUP} in state Empty after the demo stopped`, async () =>
      (await state.innerText()) === 'Empty',
    GROUP_EMPTY_TIMEOUT_MS);
    const emptyMs = Date.now() - emptyStarted;

    await open(page, 'Messages');
    await page.getByLabel('Topic', { exact: true }).selectOption(demoTopic);
    const reset = page.getByRole('form', { name: "Reset a group's offsets" });
    await reset.getByLabel('Group', { exact: true }).fill(DEMO_GROUP);
    await reset.getByLabel('Reset to').selectOption('earliest');
    await reset.getByRole('button', { name: 'Reset offsets' }).click();
    // The outcome line, not the spinner (also a status) shown while busy.
    await reset.getByRole('status').filter({ hasText: `Offsets of group ${DEMO_GROUP} on ${demoTopic} reset` }).waitFor();
    await reset.getByRole('link', { name: 'See the group' }).click();
    await page.getByRole('heading', { level: 2, name: DEMO_GROUP, exact: true }).waitFor();

    const rows = page.getByRole('table', { name: 'Partition lag' }).locator(`tr[data-topic="${demoTopic}"]`);
    const offsets = await until(
      `every partition of ${demoTopic} committed at 0 with lag = end offset`,
      async () => {
        const found = [];
        for (const row of await rows.all()) {
          const cells = await cellTexts(row);
          found.push({
            partition: Number(await row.getAttribute('data-partition')),
            committed: count(cells[2]),
            end: count(cells[3]),
            lag: Number(await row.getAttribute('data-lag')),
          });
        }
        const reset = found.length === DEMO.partitions && found.every((row) => row.committed === 0 && row.lag === row.end);
        return reset ? found : null;
      },
    );
    return `Empty after ${seconds(emptyMs)}; ${offsets.map((row) => `p${row.partition} 0/${row.end}`).join(', ')}`;
  });

  await step(`f. replay ${topic}-0 offsets 0..1 into new topic ${replayTopic} from Messages`, async () => {
    await open(page, 'Messages');
    await page.getByLabel('Topic', { exact: true }).selectOption(topic);
    const replay = page.getByRole('form', { name: 'Replay a range' });
    await replay.getByLabel('Source partition').selectOption('0');
    await replay.getByLabel('From offset').fill('0');
    await replay.getByLabel('To offset (exclusive)').fill('1');
    await replay.getByLabel('Target topic').fill(replayTopic);
    await replay.getByRole('button', { name: 'Replay', exact: true }).click();
    const outcome = replay.getByRole('status').filter({ hasText: /^Copied/ });
    await outcome.waitFor();
    const status = await outcome.innerText();
    expect(
      status.includes(`Copied 1 record from ${topic}-0 to ${replayTopic}`),
      `the replay reports 1 record copied: ${JSON.stringify(status)}`,
    );

    const topicSelect = page.getByLabel('Topic', { exact: true });
    await until(`${replayTopic} in the topic list`, async () =>
      (await topicSelect.locator(`option[value="${replayTopic}"]`).count()) > 0,
    );
    await topicSelect.selectOption(replayTopic);
    const browse = page.getByRole('form', { name: 'Browse messages' });
    await browse.getByLabel('Start at').selectOption('beginning');
    await browse.getByRole('button', { name: 'Browse', exact: true }).click();
    const row = page.getByRole('table', { name: 'Messages' }).locator('tbody tr[data-offset]');
    await row.first().waitFor();
    const rows = await row.count();
    expect(rows === 1, `${replayTopic} holds exactly the one copied record (found ${rows})`);
    const cells = await cellTexts(row.first());
    expect(
      cells[3] === message.key && cells[4] === message.value && cells[5] === '1',
      `the copy has the key, value and header of the original: ${JSON.stringify(cells)}`,
    );
    return `copied record at ${replayTopic}-${cells[0]} offset ${cells[1]}`;
  });

  await step('g. cluster view in dark theme', async () => {
    await open(page, 'Cluster');
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await until('the dark theme applied', async () =>
      (await page.locator('html').getAttribute('data-theme')) === 'dark',
    );
    const taken = await screenshot(page, 'cluster-dark');
    await page.getByRole('button', { name: 'Switch to light theme' }).click();
    return `${taken} screenshots in ${screenshotDir}`;
  });

  console.log(`leader move after kill: ${leaderMoveMs} ms (limit ${LEADER_MOVE_LIMIT_MS} ms)`);
}

await run(scenario);
