import type { FieldPath } from './types.js';

/** `['spec', 'containers', 0, 'image']` → `spec.containers[0].image`, the form kubectl explain uses. */
export function formatFieldPath(path: FieldPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

/** `/spec/containers/0` as RFC 6901 pointer: `~` and `/` in keys are escaped. */
export function toJsonPointer(path: FieldPath): string {
  return path.map((s) => '/' + String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}
