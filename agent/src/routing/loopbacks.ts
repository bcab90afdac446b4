// The loopbacks (vni0, vni1) as intended: present, up, carrying exactly
// their addresses. ensure() converges them; watch() re-runs it on every
// rtnetlink notification, so an address deleted by hand is back in
// milliseconds. Our own changes cause notifications too, but ensure() then
// finds nothing to do, so there is no loop.
import { parseCanonical } from '../../../common/prefix.js';
import type { AddrInfo, RtLinks } from './rtnl.js';

export interface LoopbackSpec {
  readonly name: string;
  /** Canonical /32 and /128 addresses. */
  readonly addresses: readonly string[];
}

export interface LoopbackChanges {
  readonly created: string[];
  readonly broughtUp: string[];
  readonly added: string[];
  readonly removed: string[];
}

export interface LoopbackEvent {
  readonly kind: 'loopback-restored';
  readonly detail: string;
  readonly time: Date;
}

const SCOPE_LINK = 253;
const REPAIR_DEBOUNCE_MS = 10;

const nothing = (c: LoopbackChanges): boolean =>
  c.created.length + c.broughtUp.length + c.added.length + c.removed.length === 0;

/**
 * The addresses to add to and remove from link `index` for it to carry
 * exactly `spec`'s (link-local addresses are the kernel's and left out). Pure.
 */
function addressDiff(spec: LoopbackSpec, index: number, addrs: readonly AddrInfo[]): { add: string[]; remove: string[] } {
  const have = new Set(addrs.filter((a) => a.index === index && a.scope !== SCOPE_LINK).map((a) => a.address));
  const want = new Set(spec.addresses.map((a) => parseCanonical(a).text));
  return { add: [...want].filter((a) => !have.has(a)), remove: [...have].filter((a) => !want.has(a)) };
}

export class Loopbacks {
  private desired: readonly LoopbackSpec[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  /** Repairs since start. */
  repairs = 0;

  constructor(
    private readonly rt: RtLinks,
    private readonly kind: 'dummy' | 'bridge',
    private readonly onEvent: (e: LoopbackEvent) => void = () => undefined,
  ) {}

  /**
   * Makes each loopback exist, be up and carry exactly its addresses
   * (link-local addresses are the kernel's and are left alone). Idempotent.
   * Throws the netlink error of the first step that fails.
   */
  ensure(specs: readonly LoopbackSpec[]): Promise<LoopbackChanges> {
    this.desired = specs;
    const next = this.running.then(() => this.converge(specs), () => this.converge(specs));
    this.running = next.catch(() => undefined);
    return next;
  }

  private async converge(specs: readonly LoopbackSpec[]): Promise<LoopbackChanges> {
    const changes: LoopbackChanges = { created: [], broughtUp: [], added: [], removed: [] };
    let links = await this.rt.links();
    for (const spec of specs) {
      if (!links.some((l) => l.name === spec.name)) {
        await this.rt.createLink(spec.name, this.kind);
        changes.created.push(spec.name);
        links = await this.rt.links();
      }
    }
    const addrs = await this.rt.addresses();
    for (const spec of specs) {
      const link = links.find((l) => l.name === spec.name);
      if (!link) throw new Error(`loopback ${spec.name} could not be created`);
      if (!link.up) {
        await this.rt.setUp(link.index);
        changes.broughtUp.push(spec.name);
      }
      const d = addressDiff(spec, link.index, addrs);
      for (const a of d.remove) {
        await this.rt.delAddress(link.index, a);
        changes.removed.push(`${spec.name} ${a}`);
      }
      for (const a of d.add) {
        await this.rt.addAddress(link.index, a);
        changes.added.push(`${spec.name} ${a}`);
      }
    }
    return changes;
  }

  /**
   * What differs between the loopbacks as intended and as they are, one
   * sentence per difference; empty when they are correct. Changes nothing.
   */
  async problems(): Promise<string[]> {
    const out: string[] = [];
    const [links, addrs] = await Promise.all([this.rt.links(), this.rt.addresses()]);
    for (const spec of this.desired) {
      const link = links.find((l) => l.name === spec.name);
      if (!link) {
        out.push(`${spec.name} is missing`);
        continue;
      }
      if (!link.up) out.push(`${spec.name} is down`);
      const d = addressDiff(spec, link.index, addrs);
      for (const a of d.add) out.push(`${spec.name} lacks ${a}`);
      for (const a of d.remove) out.push(`${spec.name} carries ${a}, which is not intended`);
    }
    return out;
  }

  /** Starts restoring the loopbacks on every link or address change. */
  watch(): void {
    this.rt.watch(() => {
      if (this.timer || this.desired.length === 0) return;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.ensure(this.desired).then((c) => {
          if (nothing(c)) return;
          this.repairs++;
          const what = [...c.created.map((x) => `created ${x}`), ...c.broughtUp.map((x) => `brought up ${x}`),
            ...c.added.map((x) => `restored ${x}`), ...c.removed.map((x) => `removed ${x}`)].join(', ');
          this.onEvent({ kind: 'loopback-restored', detail: what, time: new Date() });
        }, () => undefined);
      }, REPAIR_DEBOUNCE_MS);
    });
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.rt.close();
  }
}
