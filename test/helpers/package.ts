// package.json's version, read here on its own rather than from src/version.ts, so the tests of
// `--version`, `portcullis_build_info` and the audit events' annotation compare against the source.

import { readFileSync } from 'node:fs';
import { isRecord } from './webhooks.js';

const packageJson: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
export const PACKAGE_VERSION = isRecord(packageJson) ? String(packageJson['version']) : 'no package.json';
