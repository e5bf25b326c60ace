/** The version the command line reports: package.json's, found from this file in src/ and in dist/src/ alike. */
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  // src/cli/version.ts and dist/src/cli/version.js sit two and three levels below the package root.
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'switchboard' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}
