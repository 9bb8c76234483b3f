// The version Portcullis reports: `portcullis --version`, the startup log line, the metric
// `portcullis_build_info` and every audit event's `portcullis.io/version` annotation. It is
// package.json's, read once: the image ships package.json beside dist/ (see Dockerfile), and a
// release bumps it together with the chart's version and appVersion (CHANGELOG.md).

import { createRequire } from 'node:module';

function packageVersion(): string {
  const pkg: unknown = createRequire(import.meta.url)('../package.json');
  if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') {
    return pkg.version;
  }
  // Unreachable with the shipped package.json; a build that lost it still says so.
  return '0.0.0-unknown';
}

export const VERSION: string = packageVersion();
