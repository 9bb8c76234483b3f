// Container image references, parsed and normalised the way the container runtime does it
// (github.com/distribution/reference, ParseNormalizedNamed): `nginx` is
// `docker.io/library/nginx:latest`, `index.docker.io/x/y` is `docker.io/x/y`, the first component is
// a registry only if it has a `.` or a `:` or is `localhost`. A string that the runtime would refuse is
// refused here too, so nothing reaches the trust decision half-parsed.

export interface ImageReference {
  /** Registry host, lower-cased, with its port if one was given: `docker.io`, `localhost:5000`. */
  domain: string;
  /** Repository path inside the registry: `library/nginx`. */
  path: string;
  tag: string | undefined;
  digest: string | undefined;
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_LENGTH_MAX = 255;

// The grammar of distribution/reference/regexp.go, written out once.
const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[_.]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

export const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
export const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);
const ANCHORED_ID_RE = /^[a-f0-9]{64}$/;

export type ParseResult = { ok: true; ref: ImageReference } | { ok: false; error: string };

/** No valid reference comes near this; a longer string is refused before any pattern runs on it. */
const REFERENCE_LENGTH_MAX = 1024;

export function parseImageReference(input: string): ParseResult {
  if (input === '') return { ok: false, error: 'is empty' };
  if (input.length > REFERENCE_LENGTH_MAX) {
    return { ok: false, error: `is longer than ${REFERENCE_LENGTH_MAX} characters` };
  }
  if (ANCHORED_ID_RE.test(input)) {
    return { ok: false, error: 'is a bare image ID, not a repository reference' };
  }

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) return { ok: false, error: `has an invalid digest "${digest}"` };
  }

  // A tag follows the last ':' that comes after the last '/'; an earlier ':' is a registry port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) return { ok: false, error: `has an invalid tag "${tag}"` };
  }

  if (rest === '') return { ok: false, error: 'has no repository name' };

  const split = splitDomain(rest);
  if (!DOMAIN_RE.test(split.domain)) return { ok: false, error: `has an invalid registry "${split.domain}"` };
  if (split.path !== split.path.toLowerCase())
    return { ok: false, error: 'repository name must be lowercase' };
  if (!PATH_RE.test(split.path))
    return { ok: false, error: `has an invalid repository path "${split.path}"` };
  // The runtime limits the repository path after normalisation (`library/` included), not the host.
  if (split.path.length > NAME_TOTAL_LENGTH_MAX) {
    return { ok: false, error: `repository name is longer than ${NAME_TOTAL_LENGTH_MAX} characters` };
  }
  return { ok: true, ref: { domain: split.domain, path: split.path, tag, digest } };
}

/** `docker.io/library/nginx`: the registry and repository, without tag or digest. */
export function repositoryOf(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Lower-cases a registry host and maps the legacy Docker Hub name to the current one. */
export function normaliseDomain(domain: string): string {
  const lower = domain.toLowerCase();
  return lower === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : lower;
}

function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  // Docker's rule: the first component is a registry only if it looks like a host.
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    return { domain: DEFAULT_DOMAIN, path: slash === -1 ? OFFICIAL_REPO_PREFIX + name : name };
  }
  // Host names are case-insensitive: compare them lower-cased, or `GHCR.io` would slip past `ghcr.io`.
  const domain = normaliseDomain(first);
  let path = name.slice(slash + 1);
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  return { domain, path };
}
