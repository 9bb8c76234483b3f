/*
 * Check: trustedRegistries
 *
 * An image from a registry nobody vetted runs whatever its publisher pushed last.
 *
 * Fields read: spec.{initContainers,containers,ephemeralContainers}[*].image
 * Allowed: an image whose reference parses (image.ts, the runtime's own grammar) and whose
 * normalised repository (`nginx` → `docker.io/library/nginx`) equals a `registries` entry or continues
 * it right after a `/`: `ghcr.io/acme` trusts `ghcr.io/acme/app`, not `ghcr.io/acmecorp/app` nor
 * `ghcr.io.evil.com/acme/app`. Registry hosts compare case-insensitively; a port is part of the host
 * (`ghcr.io:443` is not `ghcr.io`). A missing or unparsable image is denied.
 * Versions: v1.0.
 * Params: registries: ["host[:port][/path]", …] (at least one).
 */

import { BoundedCache } from '../cache.js';
import { defineCheck, type Finding, type ParamIssue } from '../check.js';
import { DOMAIN_RE, normaliseDomain, parseImageReference, PATH_RE, repositoryOf } from '../image.js';
import { containerLabel, POD_TARGET, type PodView } from '../pod.js';

interface Params {
  registries: string[];
}

/** What an image reference comes to under one rule: not a reference, or a repository and whether it is trusted. */
type ImageVerdict = { ok: false; error: string } | { ok: true; repository: string; trusted: boolean };

const VERDICT_CACHE_SIZE = 1024;
/** Longer than any valid reference (a 255-character repository, a 128-character tag, a digest, a host). */
const MAX_CACHED_IMAGE_LENGTH = 1024;

/** Validates one `registries` entry and returns its normalised form, or why it is not one. */
export function normaliseRegistryEntry(
  entry: string,
): { ok: true; value: string } | { ok: false; error: string } {
  if (entry.includes('*')) {
    return { ok: false, error: 'must not contain "*": an entry already trusts every repository below it' };
  }
  const trimmed = entry.endsWith('/') ? entry.slice(0, -1) : entry;
  const slash = trimmed.indexOf('/');
  const domain = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const path = slash === -1 ? '' : trimmed.slice(slash + 1);
  if (!DOMAIN_RE.test(domain) || !(/[.:]/.test(domain) || domain === 'localhost')) {
    // The hint must name what the runtime pulls: `nginx` is `docker.io/library/nginx`, while
    // `docker.io/nginx` as an entry would trust the Docker Hub namespace "nginx" instead.
    const hub = trimmed.includes('/') ? `docker.io/${trimmed}` : `docker.io/library/${trimmed}`;
    return {
      ok: false,
      error: `must start with a registry host (with a "." or a port, or "localhost"), e.g. "${hub}"`,
    };
  }
  if (path !== '' && !PATH_RE.test(path))
    return { ok: false, error: `has an invalid repository path "${path}"` };
  return { ok: true, value: path === '' ? normaliseDomain(domain) : `${normaliseDomain(domain)}/${path}` };
}

export const trustedRegistries = defineCheck<Params, PodView>({
  id: 'trustedRegistries',
  target: POD_TARGET,
  summary: 'Images must come from a trusted registry or repository prefix.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['registries'],
    properties: {
      registries: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    },
  },
  validate: (params) => {
    const issues: ParamIssue[] = [];
    params.registries.forEach((entry, i) => {
      const result = normaliseRegistryEntry(entry);
      if (!result.ok) issues.push({ path: ['registries', i], message: `"${entry}" ${result.error}` });
    });
    return issues;
  },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const trusted = params.registries.flatMap((entry) => {
          const result = normaliseRegistryEntry(entry);
          return result.ok ? [{ repository: result.value, below: `${result.value}/` }] : [];
        });
        const isTrusted = (repository: string): boolean =>
          trusted.some((entry) => repository === entry.repository || repository.startsWith(entry.below));
        // Verdicts by image string, for this compiled rule only (a reloaded RuleSet starts afresh). A
        // cluster runs few distinct images, each in many pods, and parsing a reference is several
        // regular expressions (~1 µs); a lookup is a hash probe. Bounded (cache.ts), so a stream of
        // distinct or huge names cannot grow it.
        const verdicts = new BoundedCache<ImageVerdict>(VERDICT_CACHE_SIZE, MAX_CACHED_IMAGE_LENGTH);
        const judgeImage = (image: string): ImageVerdict => {
          const parsed = parseImageReference(image);
          if (!parsed.ok) return { ok: false, error: parsed.error };
          const repository = repositoryOf(parsed.ref);
          return { ok: true, repository, trusted: isTrusted(repository) };
        };
        const verdictOf = (image: string): ImageVerdict => verdicts.get(image, judgeImage);
        return (pod) => {
          const findings: Finding[] = [];
          for (const c of pod.containers) {
            if (c.image === undefined) {
              findings.push({
                path: [...c.path, 'image'],
                message: `${containerLabel(c)}: image is required`,
              });
              continue;
            }
            const verdict = verdictOf(c.image);
            if (!verdict.ok) {
              findings.push({
                path: [...c.path, 'image'],
                message: `${containerLabel(c)}: image "${c.image}" is not a valid image reference: ${verdict.error}`,
              });
              continue;
            }
            if (!verdict.trusted) {
              const { repository } = verdict;
              const shown = c.image.startsWith(repository) ? '' : ` (${repository})`;
              findings.push({
                path: [...c.path, 'image'],
                message: `${containerLabel(c)}: image "${c.image}"${shown} is not from a trusted registry`,
              });
            }
          }
          return findings;
        };
      },
    },
  ],
});
