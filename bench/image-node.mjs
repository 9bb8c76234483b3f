// How the image runs Portcullis, read from the Dockerfile so the benches measure what ships: the
// Node.js major of its base image and the node flags of its ENTRYPOINT (between node and the
// script). Both the Portcullis server and the bare baseline run this way, so a ratio prices code only.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `{ path, version, flags }` of the node the image runs; fetched through npx when this one differs. */
export function imageNode(root) {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const flags = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)[1])
    .slice(1)
    .filter((arg) => arg.startsWith('-'));
  const major = /^FROM\s+node:(\d+)/m.exec(dockerfile)?.[1];
  if (major === undefined || process.versions.node.split('.')[0] === major)
    return { path: process.execPath, version: process.version, flags };
  // The npm registry's `node` package, as .ci/run runs the unit suite on Node 24; cached after the
  // first fetch.
  const [path, version] = execFileSync(
    'npx',
    ['-y', '-p', `node@${major}`, 'node', '-p', 'process.execPath + "\\n" + process.version'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  )
    .trim()
    .split('\n')
    .slice(-2);
  return { path, version, flags };
}
