// The operators' dashboard: one page the controller serves at /, reading the
// JSON API with the caller's token (kept in the tab's sessionStorage, never
// in the URL). Views by the URL's fragment: the fleet (#/ with the list's
// filters, e.g. #/?status=failed) and a host (#/hosts/ID). Every view polls
// the API and updates in place: the filters being typed, the scroll position
// and the page stay as they are. Everything the agents report is tenant
// data (tenants have root on their hosts): it is only ever set as text.
import type { FleetSummary, HostStatus, HostView, RolloutState, SwitchView } from '../src/api-types.js';

const POLL_MS = 2000;
const PAGE_SIZE = 100;
const TOKEN_KEY = 'hostnet.token';
const STATUS_ORDER: readonly HostStatus[] = ['failed', 'stale', 'degraded', 'unknown', 'ok'];
const ROLLOUT: readonly RolloutState[] = ['applied', 'pending', 'refused'];
const STATUS_LABEL: Record<HostStatus, string> = { ok: 'ok', degraded: 'degraded', failed: 'failed', stale: 'stale', unknown: 'never seen' };

// ---- DOM helpers: elements from tag, attributes and children; strings become text nodes.

type Child = Node | string | number | null | undefined | false;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, v);
  fill(e, ...children);
  return e;
}

/** Replaces the element's children (null, undefined and false are skipped). */
function fill(e: HTMLElement, ...children: Child[]): void {
  e.replaceChildren();
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(typeof c === 'number' ? String(c) : c);
}

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page lacks #${id}`);
  return e as T;
}

const badge = (s: HostStatus): HTMLElement => el('span', { class: `badge st-${s}` }, STATUS_LABEL[s]);
const hostHref = (id: string): string => `#/hosts/${encodeURIComponent(id)}`;

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago", with the exact time as the title. */
function ago(iso: string | null, now = Date.now()): HTMLElement {
  if (!iso) return el('span', { class: 'muted' }, 'never');
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const text = s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : s < 86400 ? `${Math.floor(s / 3600)} h ago` : `${Math.floor(s / 86400)} d ago`;
  return el('time', { datetime: iso, title: iso }, text);
}

// ---- The API.

class SignInNeeded extends Error {}
class NotFound extends Error {}

async function api<T>(path: string): Promise<{ body: T; total: number | undefined }> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new SignInNeeded('');
  let res: Response;
  try {
    res = await fetch(path, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
  } catch (err) {
    throw new Error(`the controller does not answer (${err instanceof Error ? err.message : String(err)})`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`the controller answered ${res.status} with something that is not JSON`);
  }
  const error = typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : `HTTP ${res.status}`;
  if (res.status === 401) throw new SignInNeeded(error);
  if (res.status === 404) throw new NotFound(error);
  if (!res.ok) throw new Error(`the controller answered ${res.status}: ${error}`);
  const total = res.headers.get('x-total-count');
  return { body: body as T, total: total === null ? undefined : Number(total) };
}

// ---- Problems and freshness, shown above every view.

let lastGood = 0;

function showProblem(message: string | undefined): void {
  const p = byId('problem');
  p.hidden = message === undefined;
  p.textContent = message === undefined ? '' : `${message}${lastGood ? ` — showing what it said ${Math.round((Date.now() - lastGood) / 1000)} s ago` : ''}`;
}

function fresh(): void {
  lastGood = Date.now();
  showProblem(undefined);
  byId('freshness').textContent = `updated ${new Date(lastGood).toLocaleTimeString()}`;
}

// ---- Views. Each has a refresh (called on every poll) and may keep its own DOM between polls.

interface View {
  readonly root: HTMLElement;
  refresh(): Promise<void>;
  /** The fragment changed but this view stays (the list's filters): take the new state. */
  update?(hash: string): boolean;
}

function signInView(message: string): View {
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'current-password', placeholder: 'API token', required: '', size: '40' });
  const form = el('form', { class: 'sign-in' },
    el('h1', {}, 'Sign in'),
    el('p', {}, 'Paste an API token of the controller: an operator\'s sees the whole fleet, a tenant admin\'s only its tenant\'s hosts.'),
    el('label', { for: 'token' }, 'Token '), input, ' ', el('button', { type: 'submit' }, 'Sign in'),
    message ? el('p', { id: 'sign-in-error', class: 'error', role: 'alert' }, message) : null);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    void show(true);
  });
  queueMicrotask(() => input.focus());
  return { root: form, refresh: async () => undefined };
}

/** The list's state, as the fragment's query says it (#/?status=failed&q=web&sort=status&page=2). */
interface ListState {
  status: string;
  tenant: string;
  subnet: string;
  q: string;
  rollout: string;
  connected: string;
  sort: string;
  order: string;
  page: number;
}

function listState(hash: string): ListState {
  const p = new URLSearchParams(hash.split('?')[1] ?? '');
  const g = (k: string): string => p.get(k) ?? '';
  return {
    status: g('status'), tenant: g('tenant'), subnet: g('subnet'), q: g('q'), rollout: g('rollout'), connected: g('connected'),
    sort: g('sort') || 'status', order: g('order') || 'asc', page: Math.max(1, Number(g('page')) || 1),
  };
}

/** The list as the operator left it: the host page's way back keeps the filters. */
let lastList = '#/';

function listHash(s: ListState): string {
  const p = new URLSearchParams();
  for (const k of ['status', 'tenant', 'subnet', 'q', 'rollout', 'connected'] as const) if (s[k]) p.set(k, s[k]);
  if (s.sort !== 'status') p.set('sort', s.sort);
  if (s.order !== 'asc') p.set('order', s.order);
  if (s.page > 1) p.set('page', String(s.page));
  const q = p.toString();
  return `#/${q ? `?${q}` : ''}`;
}

/** The link to the list with one filter set (the counts' links). */
const filtered = (patch: Partial<ListState>): string => listHash({ ...listState(''), ...patch });

function tile(n: number, label: string, href: string, cls: string): HTMLElement {
  return el('a', { class: `tile ${cls}${n === 0 ? ' zero' : ''}`, href, 'data-count': label }, el('span', { class: 'n' }, n), el('span', { class: 'l' }, label));
}

function summaryView(s: FleetSummary): HTMLElement {
  const tiles = el('div', { class: 'tiles' },
    ...STATUS_ORDER.map((st) => tile(s.status[st], STATUS_LABEL[st], filtered({ status: st }), `st-${st}`)),
    tile(s.disconnected, 'disconnected', filtered({ connected: 'false' }), 'disconnected'),
    tile(s.rollout.refused, 'refused update', filtered({ rollout: 'refused' }), 'refused'));
  const r = s.rollout;
  const pct = (n: number): string => `${s.hosts ? (100 * n) / s.hosts : 0}%`;
  const done = r.pending === 0 && r.refused === 0;
  const rollout = el('section', { class: 'rollout', id: 'rollout' },
    el('h2', {}, `Rollout of revision ${s.revision}: `, el('span', { class: done ? 'ok' : 'busy' }, done ? 'done everywhere' : 'not done')),
    el('div', { class: 'bar', role: 'img', 'aria-label': `${r.applied} applied, ${r.pending} pending, ${r.refused} refused` },
      el('span', { class: 'applied', 'data-width': pct(r.applied) }),
      el('span', { class: 'pending', 'data-width': pct(r.pending) }),
      el('span', { class: 'refused', 'data-width': pct(r.refused) })),
    el('p', {},
      ...ROLLOUT.flatMap((x, i) => [i ? ' · ' : '', el('a', { href: filtered({ rollout: x }), 'data-count': x }, `${r[x]} ${x}`)]),
      ` of ${s.hosts} hosts`),
    r.reasons.length === 0 ? null : el('table', { class: 'reasons' },
      el('thead', {}, el('tr', {}, el('th', {}, 'refused because'), el('th', {}, 'hosts'), el('th', {}, 'agent\'s error (first host)'), el('th', {}, 'e.g.'))),
      el('tbody', {}, ...r.reasons.map((x) => el('tr', {},
        el('td', {}, x.reason), el('td', {}, x.hosts), el('td', { class: 'message' }, x.message),
        el('td', {}, ...x.sample.flatMap((id, i) => [i ? ', ' : '', el('a', { href: hostHref(id) }, id)])))))));
  // Widths by CSSOM, not style attributes: the page's policy allows no inline styles.
  for (const bar of rollout.querySelectorAll<HTMLElement>('[data-width]')) bar.style.width = bar.dataset.width ?? '0';
  return el('div', {}, tiles, rollout);
}

/** The switches (operators): their agent, and whether each runs its current configuration. */
function switchesView(list: readonly SwitchView[]): HTMLElement {
  const state = (w: SwitchView): Child => {
    if (w.refused && w.refused.version === w.version) return el('span', { class: 'rs rs-refused', title: w.refused.error }, `refused: ${w.refused.error}`);
    if (w.appliedVersion === w.version) return el('span', { class: 'rs rs-applied' }, 'applied');
    return el('span', { class: 'rs rs-pending', title: `applied ${w.appliedVersion || 'nothing'}, desired ${w.version}` }, 'pending');
  };
  const why = (w: SwitchView): string => {
    if (w.status === 'stale') return 'no report for three heartbeats';
    if (w.status === 'unknown') return 'never reported';
    const bad = w.checks.find((c) => c.status === 'failed') ?? w.checks.find((c) => c.status !== 'ok');
    return bad ? `${bad.name}: ${bad.reason}` : '';
  };
  return el('section', { class: 'switches', id: 'switches' }, el('h2', {}, 'Switches'),
    table(['switch', 'status', 'why', 'ASN', 'hosts', 'pool ports', 'agent', 'configuration'], list.map((w) => [
      w.name, badge(w.status), why(w), String(w.asn), String(w.routedPorts), String(w.poolPorts),
      w.connected ? el('span', { title: `streams to ${w.replica ?? '?'}` }, 'connected') : el('span', { class: 'tag', title: 'its ToR agent streams to no replica' }, 'not connected'), state(w),
    ]), 'No switches.'));
}

/** Why a host is not ok, in one line: its first check that is not ok. */
function why(h: HostView): { text: string; since: string | null } {
  if (h.status === 'unknown') return { text: 'never reported', since: null };
  if (h.status === 'stale') return { text: h.connected ? 'no report for three heartbeats' : 'not connected, no report for three heartbeats', since: h.lastSeen };
  const bad = h.checks.find((c) => c.status === 'failed') ?? h.checks.find((c) => c.status !== 'ok');
  if (bad) return { text: `${bad.name}: ${bad.reason}`, since: bad.since };
  if (h.rollout === 'refused') return { text: `update refused: ${h.nack?.reason ?? ''}`, since: null };
  return { text: '', since: null };
}

const COLUMNS: readonly [key: string, label: string][] = [
  ['id', 'host'], ['status', 'status'], ['', 'why'], ['', 'since'], ['tenant', 'tenant'], ['subnet', 'subnet'], ['rollout', 'rollout'], ['lastSeen', 'last report'],
];

function hostRow(h: HostView): HTMLElement {
  const w = why(h);
  return el('tr', { 'data-host': h.id, 'data-status': h.status },
    el('td', {}, el('a', { href: hostHref(h.id) }, h.id), h.connected ? null : el('span', { class: 'tag', title: 'no Sync stream open to any replica' }, 'disconnected')),
    el('td', {}, badge(h.status)),
    el('td', { class: 'why', title: w.text }, w.text),
    el('td', {}, w.since ? ago(w.since) : ''),
    el('td', {}, h.tenant), el('td', {}, h.subnet),
    el('td', {}, el('span', { class: `rs rs-${h.rollout}`, title: h.nack ? `${h.nack.reason}: ${h.nack.message}` : `applied ${h.appliedVersion || 'nothing'}, desired ${h.desiredVersion || 'nothing yet'}` }, h.rollout)),
    el('td', {}, ago(h.lastSeen)));
}

function fleetView(hash: string): View {
  let state = listState(hash);
  /** A new list state: into the fragment (no history entry per keystroke) and onto the screen. */
  const go = (next: ListState): Promise<void> => {
    state = next;
    history.replaceState(null, '', listHash(state));
    return refreshList();
  };
  const goNow = (next: ListState): void => void go(next).catch(failed);
  const summary = el('section', { id: 'summary' });
  const switches = el('div', { id: 'switches-slot' });
  const field = (name: keyof ListState, control: HTMLInputElement | HTMLSelectElement): HTMLElement => {
    control.name = name;
    control.value = String(state[name]);
    const changed = (): void => goNow({ ...state, [name]: control.value, page: 1 });
    let timer: number | undefined;
    control.addEventListener('input', () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(changed, control instanceof HTMLInputElement ? 250 : 0);
    });
    return el('label', {}, `${name === 'q' ? 'search' : name} `, control);
  };
  const select = (options: [string, string][]): HTMLSelectElement => el('select', {}, ...options.map(([v, l]) => el('option', { value: v }, l)));
  const text = (placeholder: string): HTMLInputElement => el('input', { type: 'search', placeholder, size: '14' });
  const filters = el('form', { class: 'filters', role: 'search' },
    field('q', text('host, tenant, subnet')),
    field('status', select([['', 'any'], ...STATUS_ORDER.map((s): [string, string] => [s, STATUS_LABEL[s]])])),
    field('tenant', text('tenant id')),
    field('subnet', text('subnet id')),
    field('rollout', select([['', 'any'], ...ROLLOUT.map((x): [string, string] => [x, x])])),
    field('connected', select([['', 'any'], ['true', 'connected'], ['false', 'disconnected']])),
    el('a', { href: '#/', class: 'clear' }, 'clear filters'));
  filters.addEventListener('submit', (e) => e.preventDefault());
  const head = el('tr', {}, ...COLUMNS.map(([key, label]) => {
    if (!key) return el('th', {}, label);
    const th = el('th', { class: 'sortable', 'data-sort': key, tabindex: '0', 'aria-sort': 'none' }, label);
    const sort = (): void => goNow({ ...state, sort: key, order: state.sort === key && state.order === 'asc' ? 'desc' : 'asc', page: 1 });
    th.addEventListener('click', sort);
    th.addEventListener('keydown', (e) => { if (e.key === 'Enter') sort(); });
    return th;
  }));
  const tbody = el('tbody', { id: 'hosts' });
  const count = el('span', { id: 'count' });
  const prev = el('button', { type: 'button', id: 'prev' }, '‹ previous');
  const next = el('button', { type: 'button', id: 'next' }, 'next ›');
  const turn = (by: number): void => goNow({ ...state, page: state.page + by });
  prev.addEventListener('click', () => turn(-1));
  next.addEventListener('click', () => turn(1));
  const root = el('div', { class: 'fleet' }, summary, switches,
    el('section', { class: 'list' }, el('h2', {}, 'Hosts'), filters,
      el('table', { class: 'hosts' }, el('thead', {}, head), tbody), el('div', { class: 'pager' }, prev, ' ', count, ' ', next)));

  function query(): string {
    const p = new URLSearchParams({ sort: state.sort, order: state.order, offset: String((state.page - 1) * PAGE_SIZE), limit: String(PAGE_SIZE) });
    for (const k of ['status', 'tenant', 'subnet', 'q', 'rollout', 'connected'] as const) if (state[k]) p.set(k, state[k]);
    return p.toString();
  }

  let listSeq = 0;
  async function refreshList(): Promise<void> {
    lastList = listHash(state);
    // Only the latest answer is drawn: a slow answer for old filters never overwrites a newer one.
    const seq = ++listSeq;
    const { body, total = 0 } = await api<HostView[]>(`/api/v1/hosts?${query()}`);
    if (seq !== listSeq) return;
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    if (state.page > pages) return go({ ...state, page: pages });
    tbody.replaceChildren(...(body.length ? body.map(hostRow) : [el('tr', {}, el('td', { colspan: String(COLUMNS.length), class: 'muted' }, 'No host matches these filters.'))]));
    const first = total === 0 ? 0 : (state.page - 1) * PAGE_SIZE + 1;
    count.textContent = `${first}–${first + body.length - (total ? 1 : 0)} of ${total}`;
    prev.disabled = state.page <= 1;
    next.disabled = state.page >= pages;
    for (const th of head.querySelectorAll<HTMLElement>('th[data-sort]')) {
      th.setAttribute('aria-sort', th.dataset.sort === state.sort ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none');
    }
    root.dataset.ready = 'true';
  }

  return {
    root,
    async refresh() {
      const [{ body: s }] = await Promise.all([api<FleetSummary>('/api/v1/summary'), refreshList()]);
      summary.replaceChildren(summaryView(s));
      // Switches are operators' business (a tenant's token gets 403 there).
      switches.replaceChildren(...(s.viewer.role === 'operator' ? [switchesView((await api<SwitchView[]>('/api/v1/switches')).body)] : []));
      byId('viewer').textContent = s.viewer.role === 'operator' ? 'operator: the whole fleet' : `tenant admin: ${s.viewer.tenant}`;
    },
    update(h: string) {
      if (!h.startsWith('#/') || h.startsWith('#/hosts/')) return false;
      state = listState(h);
      for (const c of filters.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select')) c.value = String(state[c.name as keyof ListState]);
      void refreshList().catch(failed);
      return true;
    },
  };
}

function table(head: string[], rows: Child[][], empty: string): HTMLElement {
  if (rows.length === 0) return el('p', { class: 'muted' }, empty);
  return el('table', {}, el('thead', {}, el('tr', {}, ...head.map((x) => el('th', {}, x)))), el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))));
}

function hostView(id: string): View {
  const root = el('div', { class: 'host' }, el('p', { class: 'muted' }, 'Loading…'));
  return {
    root,
    async refresh() {
      let h: HostView;
      try {
        h = (await api<HostView>(`/api/v1/hosts/${encodeURIComponent(id)}`)).body;
      } catch (err) {
        if (!(err instanceof NotFound)) throw err;
        root.replaceChildren(el('p', { class: 'error', role: 'alert' }, `Host ${id} is not known (or not one of your tenant's).`), el('a', { href: lastList }, '← fleet'));
        return;
      }
      const rolloutText: Record<RolloutState, string> = { applied: 'the desired version is applied', pending: 'waiting for the agent', refused: 'the agent refused the desired version' };
      fill(root,
        el('a', { href: lastList, id: 'back' }, '← fleet'),
        el('h1', {}, h.id, ' ', badge(h.status)),
        el('dl', { class: 'facts' },
          el('dt', {}, 'tenant'), el('dd', {}, h.tenant),
          el('dt', {}, 'subnet'), el('dd', {}, h.subnet),
          el('dt', {}, 'connected'), el('dd', {}, h.connected ? `yes, to ${h.controller ?? 'a replica'}` : 'no'),
          el('dt', {}, 'last report'), el('dd', {}, ago(h.lastSeen)),
          el('dt', {}, 'agent'), el('dd', {}, h.agentVersion || '—'),
          el('dt', {}, 'desired version'), el('dd', { class: 'version' }, h.desiredVersion || '—'),
          el('dt', {}, 'applied version'), el('dd', { class: 'version' }, h.appliedVersion || '—'),
          el('dt', {}, 'rollout'), el('dd', {}, el('span', { class: `rs rs-${h.rollout}` }, h.rollout), ` — ${rolloutText[h.rollout]}`),
          el('dt', {}, 'repairs'), el('dd', {}, `${h.repairsTotal} since the agent started`)),
        h.nack ? el('section', { class: 'nack', id: 'nack' },
          el('h2', {}, `Refused update ${h.nack.version}`),
          el('p', {}, el('strong', {}, h.nack.reason || 'no reason given')),
          el('pre', {}, h.nack.message)) : null,
        el('h2', {}, 'Checks'),
        table(['check', 'status', 'reason', 'since'], h.checks.map((c) => [c.name, badge(c.status), c.reason, ago(c.since)]), 'No report from this host yet.'),
        el('h2', {}, 'BGP sessions'),
        table(['uplink', 'state', 'ToR AS', 'prefixes received', 'advertised'],
          h.sessions.map((x) => [x.uplink, el('span', { class: x.state === 'Established' ? 'ok' : 'bad' }, x.state), x.remoteAs || '—', x.prefixesReceived, x.advertised.join(', ') || '—']),
          'No sessions reported.'),
        el('h2', {}, 'Recent events'),
        table(['when', 'event', 'detail'], [...h.events].reverse().map((e) => [ago(e.time), e.kind, e.detail]), 'No recent events.'));
      root.dataset.status = h.status;
    },
  };
}

// ---- The router and the poll loop.

let view: View | undefined;
let pollTimer: number | undefined;

function failed(err: unknown): void {
  if (err instanceof SignInNeeded) {
    sessionStorage.removeItem(TOKEN_KEY);
    mount(signInView(err.message ? `The controller refused the token: ${err.message}.` : ''));
    return;
  }
  showProblem(err instanceof Error ? err.message : String(err));
}

function mount(v: View): void {
  view = v;
  const signedIn = sessionStorage.getItem(TOKEN_KEY) !== null;
  byId('sign-out').hidden = !signedIn;
  if (!signedIn) byId('viewer').textContent = '';
  byId('main').replaceChildren(v.root);
}

async function poll(): Promise<void> {
  window.clearTimeout(pollTimer);
  if (!sessionStorage.getItem(TOKEN_KEY)) return;
  const v = view;
  try {
    await v?.refresh();
    if (v === view) fresh();
  } catch (err) {
    if (v === view) failed(err);
  }
  pollTimer = window.setTimeout(() => void poll(), POLL_MS);
}

async function show(fromSignIn = false): Promise<void> {
  const hash = location.hash || '#/';
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    mount(signInView(''));
    return;
  }
  if (!fromSignIn && view?.update?.(hash)) return;
  const host = /^#\/hosts\/(.+)$/.exec(hash);
  mount(host ? hostView(decodeURIComponent(host[1] ?? '')) : fleetView(hash));
  await poll();
}

byId('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  window.clearTimeout(pollTimer);
  mount(signInView('Signed out.'));
});
window.addEventListener('hashchange', () => void show());
void show();
