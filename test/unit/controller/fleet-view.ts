// The dashboard's questions as pure functions: the host list's query
// parameters (every bad one named), filtering, sorting (ties by id), paging,
// the rollout state of a host, and the fleet summary with refusals grouped.
import t from 'tap';
import type { HostStatus, HostView, RolloutState } from '../../../controller/src/api-types.js';
import { fleetSummary, parseHostQuery, rolloutStateOf, selectHosts } from '../../../controller/src/fleet-view.js';

const STATUSES: HostStatus[] = ['ok', 'degraded', 'failed', 'stale', 'unknown'];

function view(i: number, over: Partial<HostView> = {}): HostView {
  const rollout: RolloutState = i % 7 === 0 ? 'refused' : i % 5 === 0 ? 'pending' : 'applied';
  return {
    id: `h${String(i).padStart(4, '0')}`, subnet: `s${i % 3}`, tenant: `t${i % 2}`, status: STATUSES[i % 5] ?? 'ok',
    lastSeen: i % 5 === 4 ? null : new Date(Date.UTC(2026, 11, 2, 0, 0, i % 60)).toISOString(),
    connected: i % 4 !== 0, controller: null, desiredVersion: 'v2', appliedVersion: rollout === 'applied' ? 'v2' : 'v1', rollout,
    nack: rollout === 'refused' ? { version: 'v2', reason: i % 2 ? 'NftRejectedError' : 'FrrReloadError', message: `m${i}` } : null,
    checks: [], events: [], sessions: [], agentVersion: '0.1.0', repairsTotal: 0, ...over,
  };
}

const FLEET = Array.from({ length: 1000 }, (_, i) => view(i));
const q = (s: string) => parseHostQuery(new URLSearchParams(s));

void t.test('query parameters: each bad one named, nothing guessed', async (t) => {
  t.same(q(''), { status: new Set(), tenant: undefined, subnet: undefined, text: undefined, connected: undefined, rollout: undefined,
    sort: 'id', descending: false, offset: 0, limit: undefined }, 'none: every host, by id, all of them');
  t.same([...q('status=failed,stale').status], ['failed', 'stale']);
  const bad: [string, RegExp][] = [
    ['colour=red', /query parameter "colour": unknown; the host list takes status, tenant/],
    ['status=broken', /"status": "broken" is not one of ok, degraded, failed, stale, unknown/],
    ['status=ok,', /"status": "" is not one of/],
    ['connected=yes', /"connected": "yes" is not one of true, false/],
    ['rollout=done', /"rollout": "done" is not one of applied, pending, refused/],
    ['sort=name', /"sort": "name" is not one of id, status, tenant, subnet, lastSeen, rollout/],
    ['order=up', /"order": "up"/],
    ['limit=0', /"limit": "0" is not an integer from 1 to 1000/],
    ['limit=1001', /"limit": "1001"/],
    ['limit=10.5', /"limit"/],
    ['offset=-1', /"offset": "-1" is not an integer/],
    ['offset=1e3', /"offset"/],
    ['limit=10&limit=20', /"limit": given more than once/],
    [`q=${'x'.repeat(254)}`, /"q": longer than 253 characters/],
  ];
  for (const [s, want] of bad) t.throws(() => q(s), { name: 'Error', message: want }, s.slice(0, 40));
});

void t.test('filter, sort, page', async (t) => {
  const failed = selectHosts(FLEET, q('status=failed'));
  t.equal(failed.total, 200, 'a fifth of the fleet is failed');
  t.ok(failed.items.every((h) => h.status === 'failed'));
  const combined = selectHosts(FLEET, q('status=failed,stale&tenant=t0&connected=false&rollout=applied'));
  t.same(combined.items.map((h) => h.id), FLEET.filter((h) => ['failed', 'stale'].includes(h.status) && h.tenant === 't0' && !h.connected && h.rollout === 'applied').map((h) => h.id), 'filters combine');
  t.ok(combined.total > 0, `and select something (${combined.total})`);
  t.same(selectHosts(FLEET, q('q=H001')).items.map((h) => h.id), Array.from({ length: 10 }, (_, i) => `h001${i}`), 'text: in the id, any case');
  t.equal(selectHosts(FLEET, q('q=s2')).total, FLEET.filter((h) => h.subnet === 's2').length, 'text: in the subnet');
  t.equal(selectHosts(FLEET, q('subnet=s')).total, 0, 'subnet and tenant are exact');

  const page2 = selectHosts(FLEET, q('offset=100&limit=100'));
  t.same([page2.total, page2.items.length, page2.items[0]?.id, page2.items[99]?.id], [1000, 100, 'h0100', 'h0199'], 'pages by id');
  t.same(selectHosts(FLEET, q('offset=990&limit=100')).items.length, 10, 'the last page is short');
  t.same(selectHosts(FLEET, q('offset=5000&limit=100')), { total: 1000, items: [] }, 'past the end: nothing, with the total');

  const byStatus = selectHosts(FLEET, q('sort=status&limit=1000')).items;
  t.same([...new Set(byStatus.map((h) => h.status))], ['failed', 'stale', 'degraded', 'unknown', 'ok'], 'status: worst first');
  const failedIds = byStatus.filter((h) => h.status === 'failed').map((h) => h.id);
  t.same(failedIds, [...failedIds].sort(), 'ties by id');
  t.equal(selectHosts(FLEET, q('sort=status&order=desc&limit=1')).items[0]?.status, 'ok', 'descending: best first');
  t.equal(selectHosts(FLEET, q('sort=id&order=desc&limit=1')).items[0]?.id, 'h0999', 'by id descending');
  t.equal(selectHosts(FLEET, q('sort=lastSeen&limit=1')).items[0]?.lastSeen, null, 'last report: never seen first');
  t.equal(selectHosts(FLEET, q('sort=rollout&limit=1')).items[0]?.rollout, 'refused', 'rollout: refused first');
});

void t.test('the rollout state of a host', async (t) => {
  t.equal(rolloutStateOf('v2', 'v2', undefined), 'applied');
  t.equal(rolloutStateOf('v2', 'v2', 'v1'), 'applied', 'an older refusal does not count once the desired version is applied');
  t.equal(rolloutStateOf('v2', 'v1', 'v2'), 'refused');
  t.equal(rolloutStateOf('v3', 'v1', 'v2'), 'pending', 'a refusal of an older version: the new one may yet apply');
  t.equal(rolloutStateOf('', '', undefined), 'pending', 'nothing compiled yet');
});

void t.test('the summary', async (t) => {
  const s = fleetSummary(FLEET, { role: 'operator' }, 42, new Date('2026-12-02T00:00:00Z'));
  t.same(s.status, { ok: 200, degraded: 200, failed: 200, stale: 200, unknown: 200 });
  t.equal(s.hosts, 1000);
  t.equal(s.disconnected, 250);
  t.equal(s.rollout.applied + s.rollout.pending + s.rollout.refused, 1000, 'every host in one rollout state');
  t.equal(s.rollout.refused, FLEET.filter((h) => h.rollout === 'refused').length);
  t.same(s.rollout.reasons.map((r) => [r.reason, r.hosts, r.sample.length]), [['FrrReloadError', 72, 5], ['NftRejectedError', 71, 5]], 'refusals by reason, most first, five examples each');
  t.same(s.rollout.reasons[0]?.sample, ['h0000', 'h0014', 'h0028', 'h0042', 'h0056'], 'examples in the order given');
  t.equal(s.rollout.reasons[0]?.message, 'm0', 'the first host\'s message');
  t.same({ revision: s.revision, generatedAt: s.generatedAt, viewer: s.viewer }, { revision: 42, generatedAt: '2026-12-02T00:00:00.000Z', viewer: { role: 'operator' } });
  t.same(fleetSummary([], { role: 'tenant-admin', tenant: 't9' }, 1, new Date(0)).rollout, { applied: 0, pending: 0, refused: 0, reasons: [] }, 'an empty fleet');
});
