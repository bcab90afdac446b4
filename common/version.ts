// The software version every bin prints and the agent reports.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function findVersion(): string {
  // Works from the sources (common/) and from dist/common/.
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(path) as { name?: string; version?: string };
      if (pkg.name === 'hostnet' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0-unknown';
}

export const VERSION = findVersion();
