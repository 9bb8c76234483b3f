// Kubernetes minor versions, as pod-security-admission names the behaviour of a check: `v1.25`.
// A rule (or `podSecurity`'s `version`) picks the behaviour in force at that version; `latest` is the
// newest Portcullis knows.

export type KubeVersion = `v1.${number}`;

/** The newest version any check's behaviour is pinned to (the pod-security-admission fixtures' newest). */
export const LATEST: KubeVersion = 'v1.37';

const VERSION_RE = /^v1\.(0|[1-9][0-9]{0,2})$/;

/** `v1.N` or `latest`, else undefined. */
export function parseKubeVersion(text: string): KubeVersion | undefined {
  if (text === 'latest') return LATEST;
  const match = VERSION_RE.exec(text);
  if (match === null) return undefined;
  return `v1.${Number(match[1])}`;
}

function minor(version: KubeVersion): number {
  return Number(version.slice('v1.'.length));
}

export function compareKubeVersions(a: KubeVersion, b: KubeVersion): number {
  return minor(a) - minor(b);
}
