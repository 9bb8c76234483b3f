// Typed reads of untrusted JSON. This is the one place that turns `unknown` into shapes: every
// reader checks the type of exactly the field it returns and reports a wrong type with its path,
// so a malformed object fails closed instead of being half-read.

import type { FieldPath } from './types.js';

export type JsonObject = Readonly<Record<string, unknown>>;

export interface Malformed {
  path: FieldPath;
  message: string;
}

/** Thrown inside a reader, caught at its boundary (`readObject`) and returned as a value. */
class MalformedInput extends Error {
  constructor(readonly malformed: Malformed) {
    super(malformed.message);
  }
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function fail(path: FieldPath, expected: string, value: unknown): never {
  const message =
    value === undefined ? `is missing (must be ${expected})` : `must be ${expected}, not ${describe(value)}`;
  throw new MalformedInput({ path, message });
}

/** An object beyond a reader's bounds (a list too long): refused like a malformed one, with `message`. */
export function overLimit(path: FieldPath, message: string): never {
  throw new MalformedInput({ path, message });
}

/** Reads with `read`, turning the first malformed field into a returned value. */
export function readObject<T>(read: () => T): { ok: true; value: T } | { ok: false; error: Malformed } {
  try {
    return { ok: true, value: read() };
  } catch (err) {
    if (err instanceof MalformedInput) return { ok: false, error: err.malformed };
    throw err;
  }
}

/**
 * Raises, inside a reader, a malformed field another reader already found (a check that runs other
 * checks passes their failure on): the request still fails closed with that field.
 */
export function raiseMalformed(malformed: Malformed): never {
  throw new MalformedInput(malformed);
}

// `null` counts as absent: that is how Kubernetes' own JSON decoding treats it.

export function optObject(parent: JsonObject, key: string, path: FieldPath): JsonObject | undefined {
  const value = parent[key];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) fail([...path, key], 'an object', value);
  return value;
}

export function optList(parent: JsonObject, key: string, path: FieldPath): readonly unknown[] {
  const value = parent[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail([...path, key], 'a list', value);
  return value;
}

export function optString(parent: JsonObject, key: string, path: FieldPath): string | undefined {
  const value = parent[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') fail([...path, key], 'a string', value);
  return value;
}

export function optBoolean(parent: JsonObject, key: string, path: FieldPath): boolean | undefined {
  const value = parent[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') fail([...path, key], 'a boolean', value);
  return value;
}

export function reqString(parent: JsonObject, key: string, path: FieldPath): string {
  const value = optString(parent, key, path);
  if (value === undefined) fail([...path, key], 'a string', parent[key]);
  return value;
}

export function asObject(value: unknown, path: FieldPath): JsonObject {
  if (!isObject(value)) fail(path, 'an object', value);
  return value;
}

export function reqObject(parent: JsonObject, key: string, path: FieldPath): JsonObject {
  const value = optObject(parent, key, path);
  if (value === undefined) fail([...path, key], 'an object', parent[key]);
  return value;
}

export function optInteger(parent: JsonObject, key: string, path: FieldPath): number | undefined {
  const value = parent[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) fail([...path, key], 'an integer', value);
  return value;
}

/** A list of strings (capability names, …): a wrong type anywhere in it fails closed at that item. */
export function optStringList(parent: JsonObject, key: string, path: FieldPath): readonly string[] {
  return optList(parent, key, path).map((item, index) => {
    if (typeof item !== 'string') fail([...path, key, index], 'a string', item);
    return item;
  });
}
