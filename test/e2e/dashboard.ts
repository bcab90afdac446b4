/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The operators' dashboard in headless Chromium against the lab: sign in
// (a bad token says so), counts that match the API, a host whose uplinks are
// cut turning red on the page and back without a reload (the filter being
// used stays), a flushed ruleset's repair on the host page, a refused update
// with the agent's error grouped by reason and in full, a tenant admin who
// sees only its tenant's hosts. HOSTNET_SCREENSHOTS=DIR saves the fleet view
// and a host page there (docs/img holds the ones the docs show).
import t from 'tap';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import type { Page } from 'puppeteer-core';
import { Lab, freePort, waitFor } from '../lab/index.js';
import { AclSchema, Action, Protocol } from '../../proto/gen/hostnet/v1/resources_pb.js';
import type { FleetSummary, HostView } from '../../controller/src/api-types.js';
import { World } from '../../lab/world.js';
import { openBrowser } from '../fixtures/browser.js';

const SHOTS = process.env.HOSTNET_SCREENSHOTS;

/** The page's state as an operator reads it: tiles, rollout counts, rows. */
async function read(page: Page): Promise<{ tiles: Record<string, number>; rows: { id: string; status: string; why: string }[]; viewer: string }> {
  return page.evaluate(() => {
    const tiles: Record<string, number> = {};
    for (const a of document.querySelectorAll<HTMLElement>('.tile')) tiles[a.dataset.count ?? ''] = Number(a.querySelector('.n')?.textContent);
    for (const a of document.querySelectorAll<HTMLElement>('#rollout a[data-count]')) tiles[`rollout:${a.dataset.count ?? ''}`] = parseInt(a.textContent ?? '', 10);
    const rows = [...document.querySelectorAll<HTMLElement>('#hosts tr[data-host]')].map((r) => ({
      id: r.dataset.host ?? '', status: r.dataset.status ?? '', why: r.querySelector('.why')?.textContent ?? '',
    }));
    return { tiles, rows, viewer: document.getElementById('viewer')?.textContent ?? '' };
  });
}

void t.test('the dashboard page in a real browser', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const world = await World.build(lab, { grpcPort: await freePort(), httpPort: await freePort(), log: (l) => t.comment(l) });
  t.teardown(() => world.close());
  const browser = await openBrowser(lab.dir);
  t.teardown(() => browser.close());
  const url = `${world.httpUrl}/`;
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // The browser logs every 401 and refused connection as an error; the page expects them (bad and revoked tokens,
  // the controller restarted), and nothing else.
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 401|net::ERR_CONNECTION_REFUSED/.test(m.text())) pageErrors.push(m.text()); });
  const h1 = world.host('h1');

  await t.test('the page is our own and nothing else', async (t) => {
    const res = await fetch(url);
    t.equal(res.status, 200, '/ needs no token: the page asks for one');
    t.match(res.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/, 'it may load only itself');
    t.match(await res.text(), /<script type="module" src="\/app.js">/);
    t.equal((await fetch(`${world.httpUrl}/app.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
  });

  await t.test('sign in: a bad token says so, a good one shows the fleet', async (t) => {
    await page.goto(url);
    await page.waitForSelector('form.sign-in input#token');
    t.notOk(await page.$('#hosts'), 'no data without a token');
    await page.type('#token', 'not-a-token-of-this-controller');
    await page.click('form.sign-in button[type=submit]');
    await page.waitForSelector('#sign-in-error');
    t.equal(await page.$eval('#sign-in-error', (e) => e.textContent), 'The controller refused the token: unknown token.', 'a clear message');
    await page.type('#token', world.adminToken);
    await page.click('form.sign-in button[type=submit]');
    await page.waitForSelector('.fleet[data-ready=true] #hosts tr[data-host]');
    t.notMatch(page.url(), world.adminToken, 'the token is not in the URL');
    t.equal(await page.evaluate(() => sessionStorage.getItem('hostnet.token')), world.adminToken, 'it is kept for this tab only');
  });

  await t.test('counts match the API', async (t) => {
    const summary = await world.api<FleetSummary>('/api/v1/summary');
    await waitFor('the page to show the API\'s counts', async () => {
      const { tiles } = await read(page);
      return tiles.ok === summary.status.ok && tiles['rollout:applied'] === summary.rollout.applied ? true : undefined;
    }, { timeoutMs: 5000, intervalMs: 100 });
    const { tiles, rows, viewer } = await read(page);
    t.same(tiles, {
      failed: summary.status.failed, stale: summary.status.stale, degraded: summary.status.degraded, 'never seen': summary.status.unknown, ok: summary.status.ok,
      disconnected: summary.disconnected, 'refused update': summary.rollout.refused,
      'rollout:applied': summary.rollout.applied, 'rollout:pending': summary.rollout.pending, 'rollout:refused': summary.rollout.refused,
    }, 'every tile and rollout count is the API\'s');
    const notOk = (await world.api<HostView[]>('/api/v1/hosts')).filter((h) => h.status !== 'ok')
      .map((h) => `${h.id} ${h.status}: ${h.checks.filter((c) => c.status !== 'ok').map((c) => `${c.name}: ${c.reason}`).join('; ')}`);
    t.equal(summary.status.ok, world.hosts.size, `every host is ok (${summary.status.ok}${notOk.length > 0 ? `; ${notOk.join(' | ')}` : ''})`);
    t.same(rows.map((r) => r.id).sort(), [...world.hosts.keys()].sort(), 'every host is listed');
    t.equal(viewer, 'operator: the whole fleet');
    const api = await world.api<{ name: string; routedPorts: number; status: string; sessions: { port: string; state: string }[] }[]>('/api/v1/switches');
    t.same(api.map((w) => [w.name, w.status, w.sessions.map((x) => `${x.port}:${x.state}`).join(' ')]), ['tor1', 'tor2'].map((n) => [n, 'ok', 'swp1:Established swp2:Established swp3:Established swp9:Established']),
      'the ToR agents report every neighbor\'s session established');
    const switches = await waitFor('the switches on the page', async () => {
      const rows = await page.$$eval('#switches tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
      return rows.length === 2 ? rows : undefined;
    }, { timeoutMs: 5000, intervalMs: 100 });
    t.same(switches, api.map((w) => [w.name, 'ok', '', w.name === 'tor1' ? '65001' : '65002', String(w.routedPorts), String(8 - w.routedPorts), 'connected', 'applied']),
      'both switches: ok, their hosts and free ports, the ToR agent connected, the current configuration applied');
  });

  await t.test('uplinks cut: the host turns red without a reload, and back; the filter and the scroll position stay', async (t) => {
    await page.type('input[name=q]', 'a-web');
    await waitFor('the list filtered to a-web', async () => ((await read(page)).rows.length === 2 ? true : undefined), { timeoutMs: 5000, intervalMs: 50 });
    await page.evaluate(() => { (window as unknown as { marker: number }).marker = 1; });
    // A short window, scrolled down to the list: the redraws every 2 s must not move it.
    await page.setViewport({ width: 1280, height: 300 });
    const scrolled = await page.evaluate(() => {
      document.querySelector('#hosts')?.scrollIntoView();
      return window.scrollY;
    });
    t.ok(scrolled > 100, `scrolled to the list (${scrolled} px)`);
    const cut = Date.now();
    for (const link of ['eth0', 'eth1']) await h1.ns.exec(['ip', 'link', 'set', link, 'down']);
    const red = await waitFor('h1 red on the page', async () => {
      const row = (await read(page)).rows.find((r) => r.id === 'h1');
      return row?.status === 'failed' ? row : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    t.comment(`h1 shown failed ${Date.now() - cut} ms after its uplinks went down`);
    t.match(red.why, /^bgp:eth[01]: /, `the reason is shown: ${red.why}`);
    t.equal((await read(page)).tiles.failed, 1, 'the failed tile counts it');
    for (const link of ['eth0', 'eth1']) await h1.ns.exec(['ip', 'link', 'set', link, 'up']);
    await waitFor('h1 ok on the page again', async () => ((await read(page)).rows.find((r) => r.id === 'h1')?.status === 'ok' ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
    t.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 1, 'the page was never reloaded');
    t.equal(await page.evaluate(() => window.scrollY), scrolled, 'the scroll position stayed through every redraw');
    await page.setViewport({ width: 1280, height: 900 });
    t.equal(await page.$eval('input[name=q]', (e) => (e).value), 'a-web', 'the search typed stays');
    const filtered = (await read(page)).rows;
    t.same(filtered.map((r) => r.id), ['h1', 'h2'], `and still filters the list (${filtered.map((r) => `${r.id} ${r.status} ${r.why}`).join(' | ')})`);
    t.match(page.url(), /#\/\?q=a-web$/, 'the filter is in the fragment: a reload or a link keeps it');
  });

  await t.test('a flushed ruleset: the repair on the host page', async (t) => {
    await page.click('#hosts tr[data-host=h2] a');
    await page.waitForSelector('.host[data-status]');
    await world.host('h2').ns.exec(['nft', 'flush', 'ruleset']);
    await waitFor('the repair event on h2\'s page', async () => {
      const text = await page.$eval('.host', (e) => e.textContent ?? '');
      return text.includes('firewall-drift-repaired') ? true : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    const checks = await page.$$eval('.host table:first-of-type tbody tr', (rows) => rows.map((r) => r.querySelector('td')?.textContent));
    t.ok(checks.includes('firewall') && checks.includes('bgp:eth0'), `every check is listed: ${checks.join(', ')}`);
    const sessions = await page.$$eval('.host table', (tables) => tables.find((x) => x.textContent?.includes('ToR AS'))?.querySelectorAll('tbody tr').length);
    t.equal(sessions, 2, 'a BGP session per uplink');
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'dashboard-host.png'), fullPage: true });
    await page.click('#back');
    await page.waitForSelector('.fleet[data-ready=true]');
    t.equal(await page.$eval('input[name=q]', (e) => (e).value), 'a-web', 'back on the fleet by the page\'s link, the filter is there');
    t.same((await read(page)).rows.map((r) => r.id), ['h1', 'h2'], 'and filters the list');
  });

  await t.test('a refused update: grouped by reason on the fleet, in full on the host', async (t) => {
    const { client: admin, metadata } = world.admin();
    await world.stopAgent('h3');
    await world.startAgent('h3', { wrap: ['setpriv', '--bounding-set', '-net_admin'] });
    await admin.apply({ resources: [{ kind: { case: 'acl', value: create(AclSchema, { subnetId: 'b-db', rules: [
      { id: 'postgres', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 5432 }], source: { kind: { case: 'any', value: true } }, destination: { kind: { case: 'subnet', value: true } } },
    ] }) } }] }, { metadata });
    await page.goto(`${url}#/`);
    await waitFor('the refusal on the fleet view', async () => ((await read(page)).tiles['refused update'] === 1 ? true : undefined), { timeoutMs: 20_000, intervalMs: 100 });
    const reasons = await page.$$eval('table.reasons tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((d) => d.textContent)));
    const view = await world.api<HostView>('/api/v1/hosts/h3');
    t.same(reasons, [[view.nack?.reason, '1', view.nack?.message, 'h3']], 'one reason, one host, the agent\'s error, a link to it');
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'dashboard-fleet.png'), fullPage: true });
    await page.click('table.reasons a');
    await page.waitForSelector('#nack pre');
    t.equal(await page.$eval('#nack pre', (e) => e.textContent), view.nack?.message, 'the host page shows the NACK error in full');
    t.match(view.nack?.message, /Operation not permitted/);
    await world.stopAgent('h3');
    await world.startAgent('h3');
    await waitFor('h3 applied after all', async () => ((await page.$eval('.host', (e) => e.querySelector('#nack') === null && e.textContent?.includes('the desired version is applied'))) ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    t.pass('the refusal leaves the page once the agent applies it');
  });

  await t.test('the controller restarted: the page says it does not answer, keeps what it showed, and comes back by itself', async (t) => {
    await page.goto(`${url}#/`);
    await page.waitForSelector('.fleet[data-ready=true] #hosts tr[data-host]');
    await world.stopController();
    const problem = await waitFor('the page to say the controller does not answer', async () => {
      const p = await page.$eval('#problem', (e) => ((e as HTMLElement).hidden ? '' : e.textContent ?? ''));
      return p || undefined;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    t.match(problem, /^the controller does not answer .* — showing what it said \d+ s ago$/, `a clear message: ${problem}`);
    t.equal((await read(page)).rows.length, world.hosts.size, 'the hosts shown stay on the page');
    await world.startController();
    await waitFor('the message gone and the page current again', async () => (await page.$eval('#problem', (e) => (e as HTMLElement).hidden) ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
    t.equal((await read(page)).rows.length, world.hosts.size, 'every host listed, without a reload or a new sign-in');
    // A restarted controller on SQLite knows no report until the agents, reconnected, send one.
    await waitFor('every host ok on the page again', async () => ((await read(page)).tiles.ok === world.hosts.size ? true : undefined), { timeoutMs: 30_000, intervalMs: 200 });
    t.pass('every host ok again as its agent reconnected and reported');
  });

  await t.test('a tenant admin sees only its tenant\'s hosts', async (t) => {
    const context = await browser.createBrowserContext();
    t.teardown(() => context.close());
    const tenant = await context.newPage();
    await tenant.goto(url);
    await tenant.waitForSelector('#token');
    await tenant.type('#token', world.tenantTokens['tenant-b'] ?? '');
    await tenant.click('form.sign-in button[type=submit]');
    await tenant.waitForSelector('.fleet[data-ready=true] #hosts tr[data-host]');
    await waitFor('the tenant\'s viewer line', async () => ((await read(tenant)).viewer ? true : undefined), { timeoutMs: 5000, intervalMs: 50 });
    const { tiles, rows, viewer } = await read(tenant);
    const own = (await world.api<HostView[]>('/api/v1/hosts')).filter((h) => h.tenant === 'tenant-b').map((h) => h.id).sort();
    t.same(rows.map((r) => r.id).sort(), own, `only tenant-b's hosts: ${own.join(', ')}`);
    t.equal(tiles.ok, own.length, 'and only they are counted');
    t.equal(viewer, 'tenant admin: tenant-b');
    t.equal(await tenant.$('#switches'), null, 'no switches for a tenant');
    await tenant.goto(`${url}#/hosts/h1`);
    await tenant.waitForSelector('.host .error');
    t.match(await tenant.$eval('.host .error', (e) => e.textContent), /Host h1 is not known/, 'another tenant\'s host is not shown');
  });

  await t.test('a token the controller stops accepting sends the page back to sign-in', async (t) => {
    await page.evaluate(() => sessionStorage.setItem('hostnet.token', 'revoked-or-mistyped-token'));
    await page.waitForSelector('#sign-in-error', { timeout: 10_000 });
    t.match(await page.$eval('#sign-in-error', (e) => e.textContent), /refused the token: unknown token/);
  });

  t.same(pageErrors, [], 'no script error in the page');
});
