// Image references, normalised as the container runtime does (github.com/distribution/reference,
// ParseNormalizedNamed). Every row is what the runtime would pull, or why it would refuse the string.

import t from 'tap';
import { parseImageReference, repositoryOf } from '../../src/core/index.js';

const SHA = 'sha256:' + 'ab'.repeat(32);
const ID = 'f'.repeat(64);
const a = (n: number) => 'a'.repeat(n);

type Expected = { repository: string; tag?: string; digest?: string } | { reason: string };

const cases: [input: string, expected: Expected][] = [
  // Docker Hub's familiar names.
  ['nginx', { repository: 'docker.io/library/nginx' }],
  ['nginx:1.25', { repository: 'docker.io/library/nginx', tag: '1.25' }],
  ['library/nginx', { repository: 'docker.io/library/nginx' }],
  ['docker.io/nginx', { repository: 'docker.io/library/nginx' }],
  ['docker.io/library/nginx:latest', { repository: 'docker.io/library/nginx', tag: 'latest' }],
  ['index.docker.io/nginx', { repository: 'docker.io/library/nginx' }],
  ['index.docker.io/x/y', { repository: 'docker.io/x/y' }],
  ['bitnami/redis', { repository: 'docker.io/bitnami/redis' }],
  ['docker.io/bitnami/redis', { repository: 'docker.io/bitnami/redis' }],
  // A first component is a registry only with a "." or a ":", or when it is "localhost".
  ['ghcr.io/acme/app', { repository: 'ghcr.io/acme/app' }],
  ['ghcr.io/acme/team/app:v1.2.3', { repository: 'ghcr.io/acme/team/app', tag: 'v1.2.3' }],
  ['localhost:5000/a', { repository: 'localhost:5000/a' }],
  ['localhost:5000/a:1.0', { repository: 'localhost:5000/a', tag: '1.0' }],
  ['localhost/a', { repository: 'localhost/a' }],
  ['localhost', { repository: 'docker.io/library/localhost' }],
  ['localhost:5000', { repository: 'docker.io/library/localhost', tag: '5000' }],
  ['registry:5000/team/app', { repository: 'registry:5000/team/app' }],
  ['127.0.0.1:5000/a/b:t', { repository: '127.0.0.1:5000/a/b', tag: 't' }],
  ['[::1]:5000/a', { repository: '[::1]:5000/a' }],
  ['[2001:db8::1]/a:2', { repository: '[2001:db8::1]/a', tag: '2' }],
  // Registry hosts are case-insensitive: compared lower-cased.
  ['GHCR.IO/acme/app', { repository: 'ghcr.io/acme/app' }],
  ['INDEX.DOCKER.IO/nginx', { repository: 'docker.io/library/nginx' }],
  // Tags and digests.
  [`nginx@${SHA}`, { repository: 'docker.io/library/nginx', digest: SHA }],
  [`nginx:1.25@${SHA}`, { repository: 'docker.io/library/nginx', tag: '1.25', digest: SHA }],
  [`localhost:5000/a:1@${SHA}`, { repository: 'localhost:5000/a', tag: '1', digest: SHA }],
  [`ghcr.io/acme/app:${a(128)}`, { repository: 'ghcr.io/acme/app', tag: a(128) }],
  // Refused, as the runtime refuses them.
  ['', { reason: 'is empty' }],
  [ID, { reason: 'is a bare image ID, not a repository reference' }],
  ['ghcr.io/Acme/app', { reason: 'repository name must be lowercase' }],
  ['Nginx', { reason: 'repository name must be lowercase' }],
  ['ghcr.io/acme/../evil', { reason: 'has an invalid repository path "acme/../evil"' }],
  ['ghcr.io//acme', { reason: 'has an invalid repository path "/acme"' }],
  ['ghcr.io/acme/app/', { reason: 'has an invalid repository path "acme/app/"' }],
  [':latest', { reason: 'has no repository name' }],
  [`@${SHA}`, { reason: 'has no repository name' }],
  ['nginx:', { reason: 'has an invalid tag ""' }],
  ['nginx:-1', { reason: 'has an invalid tag "-1"' }],
  [`ghcr.io/acme/app:${a(129)}`, { reason: `has an invalid tag "${a(129)}"` }],
  ['nginx@sha256:abc', { reason: 'has an invalid digest "sha256:abc"' }],
  ['nginx@', { reason: 'has an invalid digest ""' }],
  ['ghcr.io:https/acme', { reason: 'has an invalid registry "ghcr.io:https"' }],
  ['-ghcr.io/acme', { reason: 'has an invalid registry "-ghcr.io"' }],
  ['ghcr.io/acme app', { reason: 'has an invalid repository path "acme app"' }],
  // The runtime limits the repository path (after normalisation) to 255 characters; the host is not counted.
  [`ghcr.io/${a(255)}`, { repository: `ghcr.io/${a(255)}` }],
  [`ghcr.io/${a(256)}`, { reason: 'repository name is longer than 255 characters' }],
  [`ghcr.io/${a(127)}/${a(127)}`, { repository: `ghcr.io/${a(127)}/${a(127)}` }],
  [a(247), { repository: `docker.io/library/${a(247)}` }],
  [a(248), { reason: 'repository name is longer than 255 characters' }],
];

for (const [input, expected] of cases) {
  t.test(
    input.length > 60 ? `${input.slice(0, 40)}… (${input.length} chars)` : JSON.stringify(input),
    async (t) => {
      const parsed = parseImageReference(input);
      if ('reason' in expected) {
        t.same(parsed, { ok: false, error: expected.reason });
        return;
      }
      if (!parsed.ok) {
        t.fail(`refused: ${parsed.error}`);
        return;
      }
      t.same(
        { repository: repositoryOf(parsed.ref), tag: parsed.ref.tag, digest: parsed.ref.digest },
        { tag: undefined, digest: undefined, ...expected },
      );
    },
  );
}
