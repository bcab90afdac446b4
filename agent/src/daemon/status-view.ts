// What /status serves and `hostnet-agent status` prints. formatStatus is pure.
import type { BgpSession } from '../routing/bgp-state.js';
import type { Level } from './health.js';

export interface StatusView {
  readonly hostId: string;
  readonly agentVersion: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly ready: string;
  readonly status: Level;
  readonly firewall: { readonly version: string; readonly repairs: number; readonly warnings: readonly string[] };
  readonly routing: { readonly version: string; readonly frrRepairs: number; readonly loopbackRepairs: number; readonly error: string | null };
  readonly controller: {
    readonly state: string; readonly detail: string; readonly since: string;
    readonly updatesApplied: number; readonly updatesRefused: number; readonly refused: string | null;
    readonly lastReport: string | null; readonly lastReportError: string | null;
    /** This host's client certificate: its serial, when it expires and when it is renewed (null: none yet). */
    readonly certificate: { readonly serial: string; readonly notAfter: string; readonly renewAt: string; readonly renewals: number } | null;
  };
  readonly checks: readonly { readonly name: string; readonly status: Level; readonly reason: string; readonly since: string }[];
  readonly sessions: readonly BgpSession[] | { readonly error: string };
  readonly events: readonly { readonly kind: string; readonly detail: string; readonly time: string }[];
}

const pad = (s: string, n: number): string => (s.length >= n ? `${s} ` : s.padEnd(n));

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

/** The human-readable status. Pure. */
export function formatStatus(v: StatusView): string {
  const lines = [
    `host ${v.hostId}: ${v.status.toUpperCase()}   (agent ${v.agentVersion}, pid ${v.pid}, up since ${v.startedAt}; ready: ${v.ready})`,
    `firewall   ${v.firewall.version || 'none'}   ${v.firewall.repairs} drift repairs`,
    `routing    ${v.routing.version || 'none'}   ${v.routing.frrRepairs} FRR repairs, ${v.routing.loopbackRepairs} loopback repairs${v.routing.error ? `; NOT APPLIED: ${v.routing.error}` : ''}`,
    `controller ${v.controller.state} ${v.controller.detail} (since ${v.controller.since}); updates applied ${v.controller.updatesApplied}, refused ${v.controller.updatesRefused}`
      + `${v.controller.refused ? `; last refused ${v.controller.refused}` : ''}`,
    `identity   ${v.controller.certificate ? `certificate ${v.controller.certificate.serial}, expires ${v.controller.certificate.notAfter}, renewed at ${v.controller.certificate.renewAt}`
      : 'no client certificate yet (enrolling)'}`,
    '',
    'checks:',
    ...v.checks.map((c) => `  ${pad(c.status, 9)}${pad(c.name, 22)}${c.reason}`),
    '',
    'sessions:',
  ];
  if ('error' in v.sessions) lines.push(`  FRR does not answer: ${v.sessions.error}`);
  else if (v.sessions.length === 0) lines.push('  none');
  else {
    for (const s of v.sessions) {
      lines.push(`  ${pad(s.peer, 10)}${pad(s.state, 13)}AS ${pad(String(s.remoteAs), 8)}up ${pad(duration(s.uptimeMs), 6)}sent ${s.prefixesSent}, received ${s.prefixesReceived}`);
    }
  }
  if (v.events.length > 0) {
    lines.push('', 'recent events:', ...v.events.map((e) => `  ${e.time}  ${e.kind}: ${e.detail}`));
  }
  return `${lines.join('\n')}\n`;
}
