/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The dashboard at fleet size: the controller's store (a real SQLite file),
// its agents' side and its HTTP server in this process, fed synthetic hosts
// and real ReportHealth calls over gRPC (loopback, no client certificates:
// the page's cost does not depend on them); the page in headless Chromium.
// Measured at 100 hosts and again at N, in the same run: the summary API
// against /healthz (the bare HTTP round trip), one page of the host list,
// the page's first contentful paint and the time until its summary and list
// are drawn, and a filter change until the rows show it.
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { silentLogger } from '../../common/log.js';
import { addService, createClient } from '../../proto/grpc/index.js';
import { AgentService } from '../../proto/gen/hostnet/v1/agent_pb.js';
import { HealthStatus } from '../../proto/gen/hostnet/v1/health_pb.js';
import { HostSchema, SubnetSchema, TenantSchema } from '../../proto/gen/hostnet/v1/resources_pb.js';
import { openSqliteStore } from '../../controller/src/store/sqlite.js';
import { Agents } from '../../controller/src/sync/agents.js';
import { httpServer } from '../../controller/src/http.js';
import { bind } from '../../controller/src/server.js';
import { Tokens } from '../../controller/src/admin/tokens.js';
import { OPERATOR, catalog, putHost } from '../fixtures/controller-seed.js';
import { openBrowser } from '../fixtures/browser.js';

const TOKEN = 'bench-operator-token-0123456789';
const TENANTS = 10;

export interface DashboardFigures {
  hosts: number;
  healthzMs: { p50: number; p99: number };
  summaryMs: { p50: number; p99: number };
  pageOfHostsMs: { p50: number; p99: number };
  allHostsMs: number;
  allHostsKb: number;
  firstPaintMs: number;
  drawnMs: number;
  filterMs: number;
  searchMs: number;
}

const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
const median = (xs: number[]): number => quantile(xs, 0.5);

/** A check's worth of a synthetic report: mostly ok, some degraded, a few failed, as a fleet looks on a bad night. */
function report(hostId: string, i: number) {
  const status = i % 100 === 7 ? HealthStatus.FAILED : i % 50 === 3 ? HealthStatus.DEGRADED : HealthStatus.OK;
  const since = timestampFromDate(new Date(Date.now() - (i % 3600) * 1000));
  const bgp = status === HealthStatus.OK ? HealthStatus.OK : status;
  return {
    hostId, status, heartbeatSeconds: 3600, agentVersion: '0.1.0', firewallVersion: 'f1', routingVersion: 'r1',
    checks: [
      { name: 'firewall', status: HealthStatus.OK, reason: 'policy f1 in force', since },
      { name: 'bgp:eth0', status: bgp, reason: bgp === HealthStatus.OK ? 'Established with AS 65001' : 'session is Active: eth0 is down', since },
      { name: 'bgp:eth1', status: status === HealthStatus.FAILED ? bgp : HealthStatus.OK, reason: 'Established with AS 65002', since },
    ],
    sessions: [{ uplink: 'eth0', state: 'Established', remoteAs: 65001, prefixesReceived: 3, advertised: ['10.0.0.1/32'] }],
    events: [{ kind: 'firewall-drift-repaired', detail: 'table inet hostnet restored', time: since }],
  };
}

export async function dashboardBench(n: number, log: (line: string) => void = () => undefined): Promise<DashboardFigures[]> {
  const dir = await mkdtemp(join(tmpdir(), 'hostnet-dashboard-'));
  const store = openSqliteStore(join(dir, 'controller.db'));
  const agents = await Agents.open({ store, status: store, log: silentLogger() });
  const http = httpServer({
    agents, tokens: Tokens.of([{ token: TOKEN, caller: { role: 'operator' } }]), log: silentLogger(), revision: () => store.revision(), heartbeatSeconds: 3600,
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const grpc = new Server();
  addService(grpc, AgentService, agents.service(), silentLogger());
  const client = createClient(AgentService, `127.0.0.1:${await bind(grpc, '127.0.0.1:0', ServerCredentials.createInsecure())}`, credentials.createInsecure());
  const browser = await openBrowser(dir);
  try {
    await store.transact((tx) => {
      tx.put('catalog', 'standard', catalog('standard'));
      for (let t = 0; t < TENANTS; t++) {
        tx.put('tenant', `tenant-${t}`, create(TenantSchema, { id: `tenant-${t}`, name: `Tenant ${t}` }));
        tx.put('subnet', `subnet-${t}`, create(SubnetSchema, { id: `subnet-${t}`, tenantId: `tenant-${t}`, prefixV4: `10.${t}.0.0/16` }));
      }
    });
    const results: DashboardFigures[] = [];
    let have = 0;
    for (const size of [100, n]) {
      for (let i = have; i < size; i += 500) {
        await store.transact((tx) => {
          for (let k = i; k < Math.min(size, i + 500); k++) {
            putHost(tx, create(HostSchema, { id: `host-${String(k).padStart(5, '0')}`, subnetId: `subnet-${k % TENANTS}`, catalog: 'standard', asn: 65000 + (k % 1000) }), OPERATOR, false);
          }
        });
      }
      // Every host but one in a hundred reports (those stay "never seen").
      const ids = Array.from({ length: size - have }, (_, k) => have + k).filter((i) => i % 100 !== 42);
      for (let i = 0; i < ids.length; i += 100) {
        await Promise.all(ids.slice(i, i + 100).map((k) => client.reportHealth({ report: report(`host-${String(k).padStart(5, '0')}`, k) })));
      }
      have = size;
      log(`${size} hosts stored and reported`);
      results.push(await measure(base, browser, size));
    }
    return results;
  } finally {
    await browser.close().catch(() => undefined);
    client.close();
    grpc.forceShutdown();
    http.close();
    await agents.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function timed(base: string, path: string, times: number, token = true): Promise<{ p50: number; p99: number; last: number; bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    const res = await fetch(`${base}${path}`, token ? { headers: { authorization: `Bearer ${TOKEN}` } } : {});
    bytes = (await res.arrayBuffer()).byteLength;
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    ms.push(performance.now() - started);
  }
  return { p50: median(ms), p99: quantile(ms, 0.99), last: ms.at(-1) ?? NaN, bytes };
}

async function measure(base: string, browser: Awaited<ReturnType<typeof openBrowser>>, hosts: number): Promise<DashboardFigures> {
  await timed(base, '/api/v1/summary', 5);
  const healthz = await timed(base, '/healthz', 100, false);
  const summary = await timed(base, '/api/v1/summary', 100);
  const pageOfHosts = await timed(base, '/api/v1/hosts?sort=status&limit=100', 100);
  const all = await timed(base, '/api/v1/hosts', 3);
  const loads: { paint: number; drawn: number }[] = [];
  const filters: number[] = [];
  const searches: number[] = [];
  for (let round = 0; round < 5; round++) {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    await page.evaluateOnNewDocument((token: string) => sessionStorage.setItem('hostnet.token', token), TOKEN);
    await page.goto(`${base}/#/`);
    await page.waitForSelector('.fleet[data-ready=true] #summary .tile');
    const drawnAt = await page.evaluate(() => performance.now());
    const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN);
    loads.push({ paint, drawn: drawnAt });
    // A filter: from the choice to every row showing it (no debounce on a select); not the first page's status (failed sorts first).
    filters.push(await page.evaluate(async () => {
      const select = document.querySelector<HTMLSelectElement>('select[name=status]');
      if (!select) throw new Error('no status filter');
      const started = performance.now();
      select.value = 'degraded';
      select.dispatchEvent(new Event('input'));
      await new Promise<void>((resolve) => {
        const check = (): void => {
          const rows = [...document.querySelectorAll<HTMLElement>('#hosts tr[data-host]')];
          if (rows.length > 0 && rows.every((r) => r.dataset.status === 'degraded')) resolve();
          else requestAnimationFrame(check);
        };
        check();
      });
      return performance.now() - started;
    }));
    // A search typed: includes the page's 250 ms pause for the typist.
    searches.push(await page.evaluate(async (want: string) => {
      const input = document.querySelector<HTMLInputElement>('input[name=q]');
      const status = document.querySelector<HTMLSelectElement>('select[name=status]');
      if (!input || !status) throw new Error('no search');
      status.value = '';
      status.dispatchEvent(new Event('input'));
      const started = performance.now();
      input.value = want;
      input.dispatchEvent(new Event('input'));
      await new Promise<void>((resolve) => {
        const check = (): void => {
          const rows = [...document.querySelectorAll<HTMLElement>('#hosts tr[data-host]')];
          if (rows.length === 1 && rows[0]?.dataset.host === want) resolve();
          else requestAnimationFrame(check);
        };
        check();
      });
      return performance.now() - started;
    }, `host-${String(hosts - 1).padStart(5, '0')}`));
    await context.close();
  }
  return {
    hosts,
    healthzMs: { p50: healthz.p50, p99: healthz.p99 },
    summaryMs: { p50: summary.p50, p99: summary.p99 },
    pageOfHostsMs: { p50: pageOfHosts.p50, p99: pageOfHosts.p99 },
    allHostsMs: all.last,
    allHostsKb: all.bytes / 1024,
    firstPaintMs: median(loads.map((l) => l.paint)),
    drawnMs: median(loads.map((l) => l.drawn)),
    filterMs: median(filters),
    searchMs: median(searches),
  };
}
