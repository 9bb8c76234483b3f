// test/manifests/webhooks.test.ts's assertions, on the Helm chart's render: renderManifests and
// renderInScratchTree render charts/portcullis with the values equivalent to each kustomize
// directory (test/helpers/chart.ts). Skipped, saying why, when helm is not built.

import t from 'tap';
import { findHelm, skipWithout, useChartRenders } from '../../helpers/chart.js';

const skip = skipWithout(findHelm());
if (skip.skip === undefined) {
  useChartRenders();
  await import('../webhooks.test.js');
} else {
  t.test('webhooks.test.ts on the Helm render', skip, () => undefined);
}
