// `bin/portcullis` run from source: what the bin does with dist/, for child-process tests that
// must not depend on a fresh `npm run build`.

import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv);
