// systemd's notification protocol through libsystemd (the sd-notify addon):
// READY=1 once the first state is in force, STATUS= lines, WATCHDOG=1 pings,
// STOPPING=1. Outside systemd (no NOTIFY_SOCKET) every call is a no-op, as
// sd_notify(3) itself is.
import { createRequire } from 'node:module';

export interface Notifier {
  ready(): void;
  status(text: string): void;
  watchdog(): void;
  stopping(): void;
  /** WatchdogSec of the unit in milliseconds; 0 when the watchdog is off. */
  watchdogMs(): number;
}

interface SdNotify {
  ready(): void;
  sendStatus(text: string): void;
  watchdog(): void;
  stopping(pid: number): void;
  watchdogInterval(): number;
}

/** The real notifier; falls back to no-ops (with the reason) when the addon cannot be loaded. */
export function systemdNotifier(onUnavailable: (why: string) => void): Notifier {
  let sd: SdNotify;
  try {
    sd = createRequire(import.meta.url)('sd-notify') as SdNotify;
  } catch (err) {
    if (process.env.NOTIFY_SOCKET) onUnavailable(`sd-notify cannot be loaded: ${(err as Error).message}`);
    return silentNotifier;
  }
  return {
    ready: () => sd.ready(),
    status: (text) => sd.sendStatus(text),
    watchdog: () => sd.watchdog(),
    stopping: () => sd.stopping(process.pid),
    watchdogMs: () => Number(sd.watchdogInterval()) || 0,
  };
}

export const silentNotifier: Notifier = {
  ready: () => undefined, status: () => undefined, watchdog: () => undefined, stopping: () => undefined, watchdogMs: () => 0,
};
