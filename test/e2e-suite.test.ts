// `npm test` never runs the end-to-end suite (a real kube-apiserver and etcd: test/e2e/, run by
// `npm run test:e2e`); this says so in its output, and why it would not run here if asked.

import t from 'tap';
import { findBinaries } from './e2e/harness.js';

const found = findBinaries();
const reason =
  'binaries' in found
    ? 'binaries built; it runs with `npm run test:e2e`, not `npm test`'
    : `${found.missing}; \`npm run test:e2e\` builds them (about 8 minutes the first time) and runs it`;
t.test('the end-to-end suite on a real kube-apiserver', { skip: reason }, () => undefined);
