// The routing service: validates an intent, brings the loopbacks to it, then
// FRR's start options and configuration (loopbacks first, so FRR never
// installs routes whose source address does not exist yet). Re-applying the
// same intent touches nothing. Repairs bring traffic back, not only state: a
// restored loopback address gets the routes that use it as source installed
// again; a hand edit of FRR (seen as it happens in FRR's command log, and by a
// periodic check) is put back and said in words; a dead FRR daemon is named
// as such, not taken for a hand edit.
import { readFile } from 'node:fs/promises';
import type { RoutingIntent } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { type FibReader, type RouteProblem, routeProblems } from './fib.js';
import { type FrrConfigurer, type ReloadDiff, isEmptyDiff } from './frr-apply.js';
import { FrrCommandLog } from './frr-commands.js';
import { type FrrProcessState, type FrrProcesses, bgpdOptions, listenPortOf, writeBgpdOptions } from './frr-daemons.js';
import { describeChange, describeDrift, putBackCommands, runningChange } from './frr-drift.js';
import { type ValidIntent, validateIntent } from './intent.js';
import { type LoopbackChanges, type LoopbackEvent, type LoopbackSpec, Loopbacks } from './loopbacks.js';
import { type Forwarding, renderFrr } from './render-frr.js';
import type { RtLinks } from './rtnl.js';
import { ipv6Disabled, uplinkDiagnosis } from './uplinks.js';

export interface RoutingEvent {
  /** "loopback-restored", "routes-reinstalled", "frr-drift-repaired", "frr-repair-failed", "frr-daemon-down", "bgpd-restarted". */
  readonly kind: string;
  readonly detail: string;
  readonly time: Date;
}

export interface RoutingApplyResult {
  readonly version: string;
  readonly frr: ReloadDiff;
  readonly loopbacks: LoopbackChanges;
  readonly ms: number;
}

export interface RoutingDeps {
  readonly rt: RtLinks;
  readonly frr: FrrConfigurer;
  readonly loopbackKind: 'dummy' | 'bridge';
  readonly onEvent?: (e: RoutingEvent) => void;
  /** The kernel's forwarding switches (default: read from /proc/sys). */
  readonly forwarding?: () => Promise<Forwarding>;
  /** FRR's daemons as processes (liveness, bgpd's listen port, restart). */
  readonly processes?: FrrProcesses;
  /** Zebra's and the kernel's BGP routes, for the check that traffic has its routes. */
  readonly fib?: FibReader;
  /** FRR's start options file (/etc/frr/daemons), of which the agent writes bgpd's. */
  readonly daemonsFile?: string;
  /** The file FRR logs commands into (rendered as `log file` + `log commands`), followed for hand edits. */
  readonly commandLog?: string;
  /** net.ipv6.conf.IF.disable_ipv6 (default: read from /proc/sys). */
  readonly ipv6Disabled?: (ifname: string) => Promise<boolean | undefined>;
  /** How long a route problem must last to be reported (default 500 ms). */
  readonly routesSettleMs?: number;
  /** The waits of a bgpd restart for a new listen port (unit tests shorten them). */
  readonly bgpdRestart?: Partial<BgpdRestartTimings>;
}

/** What the health checks need to know about routing beyond BGP's own view. */
export interface RoutingDiagnosis {
  /** FRR's daemons, when they can be seen. */
  readonly processes: FrrProcessState | undefined;
  /** Per uplink of the intent: the named cause of its trouble, if any. */
  readonly uplinks: ReadonlyMap<string, string | undefined>;
  /** Routes from the ToRs missing in the kernel or with the wrong source; undefined when not checked. */
  readonly routes: readonly string[] | undefined;
  /** How many routes from the ToRs were checked. */
  readonly routesChecked: number;
  /** bgpd listens on another port than the intent's (it needs a restart nobody made). */
  readonly listenMismatch: string | undefined;
}

/** Reads net.ipv4.ip_forward and net.ipv6.conf.all.forwarding. */
export async function kernelForwarding(): Promise<Forwarding> {
  const on = async (path: string) => (await readFile(path, 'utf8').catch(() => '0')).trim() === '1';
  return { ipv4: await on('/proc/sys/net/ipv4/ip_forward'), ipv6: await on('/proc/sys/net/ipv6/conf/all/forwarding') };
}

export const loopbackSpecs = (intent: ValidIntent): LoopbackSpec[] =>
  intent.networks.map((n) => ({ name: n.loopback, addresses: [...n.v4, ...n.v6] }));

/** How the agent restarts bgpd for a new listen port (RoutingDeps.bgpdRestart). */
export interface BgpdRestartTimings {
  /** How long the agent looks for a restart command of watchfrr's already under way before starting bgpd itself. */
  readonly watchfrrReactsMs: number;
  /** How long a restart of watchfrr's, once seen (or a bgpd found down), gets to bring bgpd back. */
  readonly waitMs: number;
  /** How long bgpd gets to run after the agent started it. */
  readonly startMs: number;
  readonly pollMs: number;
}
const BGPD_RESTART: BgpdRestartTimings = { watchfrrReactsMs: 700, waitMs: 5000, startMs: 15_000, pollMs: 100 };

/** Polls until bgpd runs with another pid than `old`, for up to `timeoutMs`. */
async function bgpdBack(processes: FrrProcesses, old: number | undefined, timeoutMs: number, pollMs: number): Promise<FrrProcessState | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await processes.state().catch(() => undefined);
    if (now?.bgpd.running && now.bgpd.pid !== old) return now;
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
/** Re-binding the source route-maps at most this often. */
const REINSTALL_MIN_MS = 3000;
/** How long a route problem must last to be reported (zebra installs a route within milliseconds). */
const ROUTES_SETTLE_MS = 500;
/** How long zebra gets to act on a re-bind before the routes are looked at again (one still without its source is fixed in the kernel). */
const SOURCE_SETTLE_MS = 500;
/** FRR (re)started this recently when first seen: its configuration is compared at once. */
const START_GRACE_MS = 30_000;
/** A command-log burst is checked this long after its last line (frr-reload sends many). */
const HAND_EDIT_SETTLE_MS = 50;

export class Routing {
  private applied: { intent: ValidIntent; text: string } | undefined;
  private readonly loopbacks: Loopbacks;
  private commandLog: FrrCommandLog | undefined;
  /** While the agent itself changes FRR: its own commands in the log are not hand edits. */
  private applying = 0;
  private ownUntil = 0;
  private handEditTimer: NodeJS.Timeout | undefined;
  private drift: Promise<ReloadDiff> | undefined;
  private daemonDown = '';
  private lastReinstall = 0;
  private lastStartOptions = 0;
  private restartingBgpd: Promise<void> | undefined;
  private reinstallBackoff = REINSTALL_MIN_MS;
  /** FRR's running configuration as printed right after our last apply or repair. */
  private good: string | undefined;
  /** The daemons' pids last seen, to notice FRR (re)starting; when it last did. */
  private pids = '';
  private startedAt = 0;
  /** FRR drift repairs since start. */
  frrRepairs = 0;

  constructor(private readonly deps: RoutingDeps) {
    this.loopbacks = new Loopbacks(deps.rt, deps.loopbackKind, (e: LoopbackEvent) => {
      deps.onEvent?.(e);
      void this.reinstallRoutes();
    });
  }

  get version(): string | undefined {
    return this.applied?.intent.version;
  }

  get loopbackRepairs(): number {
    return this.loopbacks.repairs;
  }

  /** The frr.conf an intent renders to, validated against this host's interfaces. Throws IntentError. */
  async render(intent: RoutingIntent): Promise<string> {
    return this.text(await this.validate(intent));
  }

  private async text(valid: ValidIntent): Promise<string> {
    return renderFrr(valid, { forwarding: await this.forwarding(), ...(this.deps.commandLog ? { commandLog: this.deps.commandLog } : {}) });
  }

  /** Validates an intent against this host's interfaces without rendering or applying it. Throws IntentError. */
  async validate(intent: RoutingIntent): Promise<ValidIntent> {
    return validateIntent(intent, await this.interfaceNames());
  }

  private forwarding(): Promise<Forwarding> {
    return (this.deps.forwarding ?? kernelForwarding)();
  }

  private async interfaceNames(): Promise<Set<string>> {
    return new Set((await this.deps.rt.links()).map((l) => l.name));
  }

  /** Runs one change of FRR of the agent's own, so that its commands in FRR's log are not taken for hand edits. */
  private async own<T>(fn: () => Promise<T>): Promise<T> {
    this.applying++;
    try {
      return await fn();
    } finally {
      this.applying--;
      this.ownUntil = Date.now() + 500;
    }
  }

  /**
   * Validates, then converges loopbacks, FRR's start options and FRR. Throws
   * IntentError (nothing touched), a netlink error, or FrrApplyError (FRR
   * back on its previous configuration).
   */
  async apply(intent: RoutingIntent): Promise<RoutingApplyResult> {
    const started = performance.now();
    const valid = await this.validate(intent);
    const text = await this.text(valid);
    const loopbacks = await this.loopbacks.ensure(loopbackSpecs(valid));
    let optionsChanged = false;
    const frr = await this.own(async () => {
      if (this.deps.daemonsFile) optionsChanged = await writeBgpdOptions(this.deps.daemonsFile, bgpdOptions(valid));
      // The same text as last applied: FRR runs it already (hand edits are checkFrrDrift's business).
      if (text === this.applied?.text) return { add: [], remove: [] };
      const changed = await this.deps.frr.apply(text, this.applied?.text);
      this.good = await this.deps.frr.running().catch(() => undefined);
      return changed;
    });
    this.applied = { intent: valid, text };
    // After the configuration (frr.conf is the new one): a bgpd on another port is restarted in the background,
    // and reads it as it starts. The apply never waits for FRR's restart.
    this.restartingBgpd ??= this.restartBgpd(valid, optionsChanged).finally(() => { this.restartingBgpd = undefined; });
    return { version: valid.version, frr, loopbacks, ms: performance.now() - started };
  }

  /**
   * A bgpd that listens on another port than the intent's is killed (no
   * NOTIFICATION: the ToRs keep its routes under graceful restart) and
   * started again with the new start options (by the agent, or by watchfrr when
   * its restart was already under way); where nothing supervises FRR, the health check says
   * a restart is needed. `optionsChanged`: the agent just wrote a new port into the daemons file.
   * Says what happened in a bgpd-restarted event once bgpd is back, not when the start script ends. Never throws.
   */
  private async restartBgpd(valid: ValidIntent, optionsChanged: boolean): Promise<void> {
    const processes = this.deps.processes;
    if (!this.deps.daemonsFile || !processes) return;
    const t = { ...BGPD_RESTART, ...this.deps.bgpdRestart };
    let p = await processes.state().catch(() => undefined);
    if (!p?.supervised) return;
    const want = valid.listenPort;
    if (!p.bgpd.running) {
      // bgpd is down as its options change (watchfrr restarting it, say): whoever starts it reads the new file.
      // Once it is back it is looked at; if it never comes back, the health check says so (frr-daemon-down).
      p = await bgpdBack(processes, undefined, t.waitMs, t.pollMs);
      if (!p?.bgpd.running) return;
      if (listenPortOf(p.bgpd.args) === want) {
        if (optionsChanged) this.emit('bgpd-restarted', `bgpd came back (started by watchfrr, which was restarting it) with the new start options: it listens on port ${want || 'none'}`);
        return;
      }
    }
    const old = p.bgpd;
    if (old.pid === undefined || listenPortOf(old.args) === want) return;
    processes.kill(old.pid);
    // watchfrr restarts a dead daemon at its next status poll (every 5 s), or a minute or more later when it
    // restarted it recently (the interval doubles with each restart); it leaves alone a daemon that is back by
    // then. So bgpd is started here the way watchfrr would, unless watchfrr's restart command is already
    // running: that command would stop ours (its restart is stop, then start), so once seen it is waited for.
    const started = Date.now();
    let back: FrrProcessState | undefined;
    let watchfrrOnIt = false;
    while (!back && Date.now() - started < (watchfrrOnIt ? t.waitMs : t.watchfrrReactsMs)) {
      await new Promise((r) => setTimeout(r, t.pollMs));
      back = await bgpdBack(processes, old.pid, 0, t.pollMs);
      watchfrrOnIt ||= await processes.restarting('bgpd').catch(() => false);
    }
    let by = 'by watchfrr';
    let trouble = '';
    if (!back) {
      by = 'by the agent, before watchfrr\'s next poll';
      // Losing a race with watchfrr's own start is harmless: the second bgpd finds the pid file locked and exits.
      // The script goes on loading bgpd's configuration once the daemon runs; bgpd being back is what is waited for.
      const script: { done: boolean; failed?: string } = { done: false };
      const ran = processes.start('bgpd').then(
        () => { script.done = true; },
        (err: Error) => { script.done = true; script.failed = err.message; },
      );
      back = await bgpdBack(processes, old.pid, t.startMs, t.pollMs);
      if (script.failed !== undefined) trouble = `; the start script failed: ${script.failed}`;
      else if (!script.done) void ran.then(() => { if (script.failed !== undefined) this.emit('bgpd-restarted', `bgpd's start script failed after bgpd was back: ${script.failed}`); });
    }
    const port = back ? listenPortOf(back.bgpd.args) : undefined;
    if (!back) trouble += `; bgpd is not back after ${Math.round((Date.now() - started) / 1000)} s (the health check says so until it is)`;
    else if (port !== want) trouble += `; it listens on port ${port ?? 'none'}, not the intent's (the health check says so, and the agent restarts it again)`;
    this.emit('bgpd-restarted', `bgpd restarted to listen on port ${want || 'none'} instead of ${listenPortOf(old.args)} (${by}, with the new start options)${trouble}`);
  }

  /**
   * Gives bgpd its listen port again when it runs on another one (a restart
   * raced with watchfrr's, say). At most every 10 s; a no-op where nothing
   * supervises FRR (the check says so instead).
   */
  async ensureStartOptions(): Promise<void> {
    const applied = this.applied;
    if (!applied || this.restartingBgpd || Date.now() - this.lastStartOptions < 10_000) return;
    this.lastStartOptions = Date.now();
    this.restartingBgpd = this.restartBgpd(applied.intent, false).finally(() => { this.restartingBgpd = undefined; });
    await this.restartingBgpd;
  }

  /** The intent in force (validated), if any. */
  get intent(): ValidIntent | undefined {
    return this.applied?.intent;
  }

  /** Differences between the loopbacks as applied and as they are now (empty: correct). */
  loopbackProblems(): Promise<string[]> {
    return this.loopbacks.problems();
  }

  /** Keeps the loopbacks as applied from now on, and follows FRR's command log for hand edits. */
  async watch(): Promise<void> {
    this.loopbacks.watch();
    if (!this.deps.commandLog) return;
    this.commandLog = new FrrCommandLog(this.deps.commandLog, () => this.onCommands());
    await this.commandLog.start();
  }

  private onCommands(): void {
    if (this.applying > 0 || Date.now() < this.ownUntil || !this.applied) return;
    if (this.handEditTimer) clearTimeout(this.handEditTimer);
    this.handEditTimer = setTimeout(() => {
      this.handEditTimer = undefined;
      void this.checkFrrDrift('commands').catch(() => undefined);
    }, HAND_EDIT_SETTLE_MS);
  }

  /**
   * Makes zebra install again the BGP routes the kernel refused because their
   * source address was missing when they came (zebra does not retry), or that
   * it installed before the source route-maps took effect (FRR starting):
   * re-binding the source route-maps makes zebra re-evaluate every route.
   * Routes still without their source after that get it in the kernel.
   * Does nothing when every route is right; when a repair does not help, the
   * next one waits twice as long (up to a minute).
   */
  async reinstallRoutes(): Promise<void> {
    if (!this.applied || Date.now() - this.lastReinstall < this.reinstallBackoff) return;
    const before = this.deps.fib ? await this.routeProblems().catch(() => undefined) : undefined;
    if (before && before.problems.length === 0) {
      this.reinstallBackoff = REINSTALL_MIN_MS;
      return;
    }
    this.lastReinstall = Date.now();
    const lines = this.applied.text.split('\n').filter((l) => /^ipv?6? ?protocol bgp route-map /.test(l));
    await this.own(() => this.deps.frr.rebind(lines)).catch(() => undefined);
    let after: Awaited<ReturnType<Routing['routeProblems']>> | undefined;
    let kernelFixed = 0;
    if (this.deps.fib) {
      await new Promise((r) => setTimeout(r, SOURCE_SETTLE_MS));
      after = await this.routeProblems().catch(() => undefined);
      // FRR 10 keeps a route's next-hop group when only the source differs (a route it took over
      // from the kernel at start, with -K, keeps no source however often it re-evaluates): the
      // kernel route gets its source directly, everything else of it as zebra installed it.
      for (const f of after?.problems.flatMap((p) => (p.fix ? [p.fix] : [])) ?? []) {
        await this.deps.fib.setSource(f.route, f.src).then(() => { kernelFixed++; }, () => undefined);
      }
      if (kernelFixed > 0) after = await this.routeProblems().catch(() => undefined);
    }
    if (before && after && after.problems.length >= before.problems.length) {
      this.reinstallBackoff = Math.min(this.reinstallBackoff * 2, 60_000);
      return;
    }
    this.reinstallBackoff = REINSTALL_MIN_MS;
    this.emit('routes-reinstalled', `${before ? `${before.problems.length} ` : ''}routes from the ToRs the kernel lacked, or had without their source address, are installed again with it`
      + `${kernelFixed > 0 ? ` (${kernelFixed} given their source in the kernel: zebra kept their next-hop group without it)` : ''}`
      + `${after && after.problems.length > 0 ? `; still wrong: ${after.problems.slice(0, 3).map((x) => x.prefix).join(', ')}` : ''}`);
  }

  private async routeProblems(): Promise<{ problems: RouteProblem[]; checked: number }> {
    const intent = this.applied?.intent;
    const fib = this.deps.fib;
    if (!intent || !fib) return { problems: [], checked: 0 };
    const families = intent.networks.some((n) => n.v6.length > 0 || n.acceptV6.length > 0) ? [4, 6] as const : [4] as const;
    const problems: RouteProblem[] = [];
    let checked = 0;
    for (const f of families) {
      const { zebra, kernel } = await fib.routes(f);
      checked += zebra.filter((z) => z.selected).length;
      problems.push(...routeProblems(intent, zebra, kernel));
    }
    return { problems, checked };
  }

  /**
   * Route problems that are still there a moment later. zebra's table and the kernel's are read
   * one after the other: a route that zebra selected while the kernel had not installed it yet
   * (or that the kernel had dropped while zebra still listed it) is a change in flight, not a
   * problem; reported, it would turn a host degraded whenever a neighbour's route comes or goes.
   */
  private async settledRouteProblems(): Promise<{ problems: RouteProblem[]; checked: number }> {
    const first = await this.routeProblems();
    if (first.problems.length === 0) return first;
    await new Promise((resolve) => setTimeout(resolve, this.deps.routesSettleMs ?? ROUTES_SETTLE_MS));
    const second = await this.routeProblems();
    const seen = new Set(first.problems.map((p) => `${p.kind} ${p.prefix}`));
    return { problems: second.problems.filter((p) => seen.has(`${p.kind} ${p.prefix}`)), checked: second.checked };
  }

  /** What the health checks need beyond BGP's own view: daemons, uplinks, routes, bgpd's listen port. */
  async diagnose(): Promise<RoutingDiagnosis> {
    const intent = this.applied?.intent;
    const processes = await this.deps.processes?.state().catch(() => undefined);
    const uplinks = new Map<string, string | undefined>();
    if (intent) {
      const [links, addresses] = await Promise.all([this.deps.rt.links(), this.deps.rt.addresses()]);
      for (const name of intent.networks.flatMap((n) => n.uplinks)) {
        const link = links.find((l) => l.name === name);
        uplinks.set(name, uplinkDiagnosis({ name, link, addresses, ipv6Disabled: await (this.deps.ipv6Disabled ?? ipv6Disabled)(name) }));
      }
    }
    this.noticeStart(processes);
    const daemonsUp = processes === undefined || (processes.zebra.running && processes.bgpd.running);
    const routes = intent && daemonsUp && this.deps.fib ? await this.settledRouteProblems().catch(() => undefined) : undefined;
    const port = processes?.bgpd.running ? listenPortOf(processes.bgpd.args) : undefined;
    const listenMismatch = intent && port !== undefined && this.deps.daemonsFile && port !== intent.listenPort
      ? `bgpd listens on port ${port}, the intent says ${intent.listenPort || 'none'}: FRR needs a restart to take its new start options${processes?.supervised ? '' : ' (nothing supervises FRR here: restart it)'}`
      : undefined;
    return { processes, uplinks, routes: routes?.problems.map((p) => p.text), routesChecked: routes?.checked ?? 0, listenMismatch };
  }

  /**
   * FRR (re)started since last seen: zebra reads frr.conf before it knows the
   * loopback addresses and drops `set src` lines it cannot check yet, so the
   * configuration is compared (and put back) right away.
   */
  private noticeStart(p: FrrProcessState | undefined): boolean {
    if (!p?.zebra.running || !p.bgpd.running) return false;
    const pids = `${p.zebra.pid ?? ''}/${p.bgpd.pid ?? ''}`;
    if (pids === this.pids) return false;
    this.pids = pids;
    this.startedAt = Math.max(p.zebra.startedAt, p.bgpd.startedAt);
    const fresh = Date.now() - this.startedAt < START_GRACE_MS;
    if (this.applied && fresh) void this.checkFrrDrift('start').catch(() => undefined);
    return fresh;
  }

  /**
   * Compares FRR's running configuration with the last applied one and
   * re-applies on any difference, saying in words what was changed. A dead
   * daemon is reported as such (its configuration is not a hand edit).
   * Returns the difference found. Concurrent calls share one check.
   */
  checkFrrDrift(after: 'start' | 'commands' | 'check' = 'check'): Promise<ReloadDiff> {
    this.drift ??= this.driftOnce(after).finally(() => { this.drift = undefined; });
    return this.drift;
  }

  /** `after`: what made us look; a difference right after FRR started is its start, not a hand edit. */
  private async driftOnce(after: 'start' | 'commands' | 'check'): Promise<ReloadDiff> {
    const applied = this.applied;
    if (!applied) return { add: [], remove: [] };
    const p = await this.deps.processes?.state().catch(() => undefined);
    const dead = p ? [p.zebra, p.bgpd].filter((d) => !d.running).map((d) => d.name) : [];
    if (dead.length > 0) {
      const down = dead.join(' and ');
      if (this.daemonDown !== down) this.emit('frr-daemon-down', `FRR's ${down} ${dead.length > 1 ? 'are' : 'is'} not running${p?.supervised ? '; watchfrr restarts it' : '; nothing supervises FRR here'}`);
      this.daemonDown = down;
      return { add: [], remove: [] };
    }
    this.daemonDown = '';
    const started = this.noticeStart(p);
    // Cheap first: FRR prints exactly what it printed after our last apply: nothing changed. What it prints
    // differently is a change (its printing is deterministic), described from the two texts; only without a
    // text to compare with does frr-reload --test decide.
    const now = await this.deps.frr.running().catch(() => undefined);
    if (now !== undefined && now === this.good) return { add: [], remove: [] };
    const change = this.good !== undefined && now !== undefined ? runningChange(this.good, now) : undefined;
    const d = change
      ? { add: change.removed.map((c) => c.line), remove: change.added.map((c) => c.line) }
      : await this.deps.frr.diff(applied.text);
    if (isEmptyDiff(d)) {
      this.good = now;
      return d;
    }
    const atStart = after === 'start' || started;
    const verbs = { added: 'added by hand and taken out again', removed: atStart ? 'missing and put back' : 'removed by hand and put back' };
    const what = change ? describeChange(change.added, change.removed, verbs) : describeDrift(d).replace('removed by hand and put back', verbs.removed);
    const cause = atStart ? 'FRR started without part of its configuration (zebra drops what it cannot check yet)' : 'FRR\'s configuration was changed by hand';
    try {
      await this.own(async () => {
        // Lines only removed (the common hand edit): put back with one vtysh call; anything else, or when
        // that does not give back what FRR printed before, frr-reload.
        const good = this.good;
        if (change && good !== undefined) {
          const quick = putBackCommands(change, good);
          if (quick && await this.deps.frr.putBack(applied.text, quick, good)) return;
        }
        await this.deps.frr.apply(applied.text, undefined, { known: d, ...(good !== undefined ? { expect: good } : {}) });
        this.good = await this.deps.frr.running().catch(() => undefined);
      });
      this.frrRepairs++;
      this.emit(atStart ? 'frr-config-restored' : 'frr-drift-repaired', `${cause}; ${what}`);
    } catch (err) {
      this.emit('frr-repair-failed', `${cause} (${what}) and could not be put back: ${(err as Error).message}`);
    }
    return d;
  }

  private emit(kind: string, detail: string): void {
    this.deps.onEvent?.({ kind, detail, time: new Date() });
  }

  close(): void {
    if (this.handEditTimer) clearTimeout(this.handEditTimer);
    this.commandLog?.close();
    this.loopbacks.close();
  }
}
