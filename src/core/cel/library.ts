// The parts of Kubernetes' CEL environment that cel-js lacks, written to the Kubernetes
// definitions (k8s.io/apiserver/pkg/cel/library and cel-go's ext package): the strings extension's
// missing functions, lists, sets, RE2 regular expressions (matches, find, findAll), url,
// quantity, ip and cidr, named formats, and the two-variable comprehensions. Each function that
// reads a whole string or list charges the cost meter for it (cost.ts).

import { Optional, type Environment } from '@marcbachmann/cel-js';
import ipaddr from 'ipaddr.js';
import { RE2JS } from 're2js';
import { sizeCost, spendCost } from './cost.js';

/** cel-js' `matches` is a JS RegExp (backtracking, another syntax): calls are renamed to this RE2 one. */
export const RE2_MATCHES = 'matchesRe2';

type Value = unknown;

class CelRuntimeError extends Error {}

function fail(message: string): never {
  throw new CelRuntimeError(message);
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map);
}

/**
 * The entries of a CEL map, or undefined for any other value. A map is a Map (JSON from the
 * request, values.ts) or a plain object (cel-js' own map literals and results).
 */
function mapEntries(v: unknown): [unknown, unknown][] | undefined {
  if (v instanceof Map) return [...v.entries()];
  if (isPlainMap(v)) return Object.entries(v);
  return undefined;
}

// ---------------------------------------------------------------- regular expressions (RE2)

// Patterns are nearly always literals: a bounded cache keeps their compiled form.
const patterns = new Map<string, RE2JS>();
const PATTERN_CACHE_SIZE = 256;

export function compileRe2(pattern: string): RE2JS {
  let compiled = patterns.get(pattern);
  if (compiled === undefined) {
    sizeCost(pattern.length);
    try {
      compiled = RE2JS.compile(pattern);
    } catch (err) {
      fail(
        `invalid regular expression ${JSON.stringify(pattern)}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (patterns.size >= PATTERN_CACHE_SIZE) patterns.clear();
    patterns.set(pattern, compiled);
  }
  return compiled;
}

/** Why `pattern` is not RE2 syntax, or undefined: literal patterns are vetted when the RuleSet loads. */
export function re2SyntaxError(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

function findAll(s: string, pattern: string, limit: number): string[] {
  sizeCost(s.length);
  const matcher = compileRe2(pattern).matcher(s);
  const found: string[] = [];
  while ((limit < 0 || found.length < limit) && matcher.find()) found.push(matcher.group() ?? '');
  return found;
}

// ---------------------------------------------------------------- strings

function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (ch === '\x07') out += '\\a';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function replaceN(s: string, from: string, to: string, n: bigint): string {
  sizeCost(s.length);
  if (n < 0n) return s.split(from).join(to);
  let out = '';
  let rest = s;
  for (let i = 0n; i < n; i++) {
    const at = rest.indexOf(from);
    if (at === -1) break;
    out += rest.slice(0, at) + to;
    // An empty `from` matches between every character, as Go's strings.Replace does.
    const step = from === '' ? (rest.length === 0 ? 0 : 1) : at + from.length;
    if (from === '') out += rest.slice(0, step);
    rest = rest.slice(step);
    if (from === '' && rest.length === 0) break;
  }
  return out + rest;
}

function formatValue(value: Value): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (typeof value === 'number')
    return Number.isInteger(value) ? value.toFixed(1).replace(/\.0$/, '') : String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(formatValue).join(', ')}]`;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  const entries = mapEntries(value);
  if (entries !== undefined)
    return `{${entries.map(([k, v]) => `${formatValue(k)}: ${formatValue(v)}`).join(', ')}}`;
  if (value instanceof KubeIP || value instanceof KubeCIDR) return value.toString();
  return `<${typeName(value)}>`;
}

/** cel-go's string.format: %s %d %f %e %b %o %x %X and %%, with an optional precision (%.2f). */
function format(template: string, args: readonly Value[]): string {
  sizeCost(template.length);
  let out = '';
  let next = 0;
  for (let i = 0; i < template.length; i++) {
    const ch = template.charAt(i);
    if (ch !== '%') {
      out += ch;
      continue;
    }
    let j = i + 1;
    let precision: number | undefined;
    if (template[j] === '.') {
      let digits = '';
      j++;
      while (j < template.length && /[0-9]/.test(template[j] ?? '')) digits += template.charAt(j++);
      precision = Number(digits);
    }
    const verb = template[j];
    if (verb === undefined) fail('could not parse formatting clause: unterminated clause');
    i = j;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (next >= args.length) fail(`index ${next} out of range`);
    const arg = args[next++];
    switch (verb) {
      case 's':
        out += formatValue(arg);
        break;
      case 'd':
        if (typeof arg !== 'bigint')
          fail('error during formatting: decimal clause can only be used on integers');
        out += arg.toString();
        break;
      case 'f':
      case 'e': {
        const n =
          typeof arg === 'bigint'
            ? Number(arg)
            : typeof arg === 'number'
              ? arg
              : fail('error during formatting: fixed-point clause can only be used on doubles');
        out +=
          verb === 'f'
            ? n.toFixed(precision ?? 6)
            : n.toExponential(precision ?? 6).replace(/e([+-])(\d)$/, 'e$10$2');
        break;
      }
      case 'b':
      case 'o':
      case 'x':
      case 'X': {
        const base = verb === 'b' ? 2 : verb === 'o' ? 8 : 16;
        let text: string;
        if (typeof arg === 'bigint') text = arg.toString(base);
        else if (typeof arg === 'string' && base === 16)
          text = [...new TextEncoder().encode(arg)].map((b) => b.toString(16).padStart(2, '0')).join('');
        else if (arg instanceof Uint8Array && base === 16)
          text = [...arg].map((b) => b.toString(16).padStart(2, '0')).join('');
        else if (typeof arg === 'boolean' && base === 2) text = arg ? '1' : '0';
        else
          fail(
            `error during formatting: only integers${base === 16 ? ', strings and bytes' : ''} can be used with %${verb}`,
          );
        out += verb === 'X' ? text.toUpperCase() : text;
        break;
      }
      default:
        fail(`could not parse formatting clause: unrecognized formatting clause "${verb}"`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- lists

function compareValues(a: Value, b: Value): number {
  if ((typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number')) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (a instanceof Quantity && b instanceof Quantity) return a.compareTo(b);
  return fail(`no such overload: values of type ${typeName(a)} and ${typeName(b)} are not comparable`);
}

function typeName(v: Value): string {
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'double';
  if (v === null) return 'null_type';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'map';
  return typeof v;
}

function celEquals(a: Value, b: Value): boolean {
  if (a === b) return true;
  if ((typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number')) {
    // CEL compares numbers across int and double by value.
    return a == b;
  }
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => celEquals(x, b[i]));
  const entriesA = mapEntries(a);
  const entriesB = mapEntries(b);
  if (entriesA !== undefined && entriesB !== undefined) {
    const byKey = new Map(entriesB);
    return (
      entriesA.length === byKey.size && entriesA.every(([k, v]) => byKey.has(k) && celEquals(v, byKey.get(k)))
    );
  }
  return false;
}

function asList(v: Value): readonly Value[] {
  return Array.isArray(v) ? v : fail(`no such overload: expected a list, got ${typeName(v)}`);
}

function sum(list: readonly Value[]): Value {
  sizeCost(list.length);
  if (list.length === 0) return 0n;
  if (list.every((x) => typeof x === 'bigint')) return list.reduce<bigint>((a, b) => a + b, 0n);
  if (list.every((x) => typeof x === 'number' || typeof x === 'bigint'))
    return list.reduce<number>((a, b) => a + Number(b), 0);
  if (list.every((x) => x instanceof Quantity))
    return list.reduce<Quantity>((a, b) => a.add(b), Quantity.zero());
  return fail('no such overload: sum() takes a list of int, double or quantity');
}

function extreme(list: readonly Value[], sign: 1 | -1, name: string): Value {
  sizeCost(list.length);
  if (list.length === 0) fail(`${name}() of an empty list`);
  return list.reduce((best, x) => (compareValues(x, best) * sign > 0 ? x : best));
}

// ---------------------------------------------------------------- quantity

const BINARY_SUFFIXES: Record<string, bigint> = {
  Ki: 2n ** 10n,
  Mi: 2n ** 20n,
  Gi: 2n ** 30n,
  Ti: 2n ** 40n,
  Pi: 2n ** 50n,
  Ei: 2n ** 60n,
};
const DECIMAL_EXPONENTS: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const QUANTITY_PATTERN =
  /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** A Kubernetes resource.Quantity, kept exact as numerator / denominator. */
export class Quantity {
  constructor(
    readonly numerator: bigint,
    readonly denominator: bigint,
  ) {}

  static zero(): Quantity {
    return new Quantity(0n, 1n);
  }

  static parse(text: string): Quantity | undefined {
    const match = QUANTITY_PATTERN.exec(text);
    if (match === null) return undefined;
    const [, number = '', suffix = ''] = match;
    const negative = number.startsWith('-');
    const digits = number.replace(/^[+-]/, '');
    const [whole = '', fraction = ''] = digits.split('.');
    let numerator = BigInt((whole === '' ? '0' : whole) + fraction);
    let denominator = 10n ** BigInt(fraction.length);
    if (suffix in BINARY_SUFFIXES) {
      numerator *= BINARY_SUFFIXES[suffix] ?? 1n;
    } else {
      const exponent = /^[eE]/.test(suffix) ? Number(suffix.slice(1)) : (DECIMAL_EXPONENTS[suffix] ?? 0);
      // The API server refuses quantities beyond this range; so do we, before 10**exponent grows.
      if (Math.abs(exponent) > 100) return undefined;
      if (exponent >= 0) numerator *= 10n ** BigInt(exponent);
      else denominator *= 10n ** BigInt(-exponent);
    }
    return new Quantity(negative ? -numerator : numerator, denominator);
  }

  compareTo(other: Quantity): number {
    const a = this.numerator * other.denominator;
    const b = other.numerator * this.denominator;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  add(other: Quantity): Quantity {
    return new Quantity(
      this.numerator * other.denominator + other.numerator * this.denominator,
      this.denominator * other.denominator,
    );
  }

  negate(): Quantity {
    return new Quantity(-this.numerator, this.denominator);
  }

  isInteger(): boolean {
    return this.numerator % this.denominator === 0n;
  }

  asInteger(): bigint {
    if (!this.isInteger()) fail('cannot convert value to integer');
    const value = this.numerator / this.denominator;
    if (value > INT64_MAX || value < INT64_MIN) fail('cannot convert value to integer');
    return value;
  }

  asApproximateFloat(): number {
    return Number(this.numerator) / Number(this.denominator);
  }

  sign(): bigint {
    return this.numerator > 0n ? 1n : this.numerator < 0n ? -1n : 0n;
  }
}

function quantity(text: string): Quantity {
  return (
    Quantity.parse(text) ??
    fail(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`)
  );
}

// ---------------------------------------------------------------- url

/** A URL as Go's url.ParseRequestURI splits it (Kubernetes' url() is built on it). */
export class KubeURL {
  constructor(
    readonly scheme: string,
    readonly host: string,
    readonly path: string,
    readonly query: string,
  ) {}
}

const URL_PATTERN = /^(?:([a-zA-Z][a-zA-Z0-9+.-]*):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?$/;

function parseUrl(text: string): KubeURL | undefined {
  if (text.includes('#') || /\s/.test(text)) return undefined;
  const match = URL_PATTERN.exec(text);
  if (match === null) return undefined;
  const [, scheme = '', authority, path = '', query = ''] = match;
  // A request URI is absolute: a scheme, or a path from the root.
  if (scheme === '' && !path.startsWith('/')) return undefined;
  if (scheme === '' && authority !== undefined) return undefined;
  const host = (authority ?? '').replace(/^[^@]*@/, '');
  if (/[[\]]/.test(host) && !/^\[[0-9a-fA-F:.]+\](:[0-9]*)?$/.test(host)) return undefined;
  return new KubeURL(scheme, host, path, query);
}

function hostnameOf(url: KubeURL): string {
  const bracketed = /^\[([^\]]*)\]/.exec(url.host);
  if (bracketed !== null) return bracketed[1] ?? '';
  const colon = url.host.lastIndexOf(':');
  return colon === -1 ? url.host : url.host.slice(0, colon);
}

function portOf(url: KubeURL): string {
  const bracketEnd = url.host.lastIndexOf(']');
  const colon = url.host.lastIndexOf(':');
  return colon > bracketEnd ? url.host.slice(colon + 1) : '';
}

function queryOf(url: KubeURL): Map<string, string[]> {
  const result = new Map<string, string[]>();
  if (url.query === '') return result;
  for (const part of url.query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const decode = (s: string): string => {
      try {
        return decodeURIComponent(s.replaceAll('+', ' '));
      } catch {
        return s;
      }
    };
    const key = decode(eq === -1 ? part : part.slice(0, eq));
    const value = eq === -1 ? '' : decode(part.slice(eq + 1));
    const values = result.get(key) ?? [];
    values.push(value);
    result.set(key, values);
  }
  return result;
}

// ---------------------------------------------------------------- ip and cidr

export class KubeIP {
  constructor(readonly address: ipaddr.IPv4 | ipaddr.IPv6) {}
  toString(): string {
    return this.address.kind() === 'ipv6' && this.address instanceof ipaddr.IPv6
      ? this.address.toRFC5952String()
      : this.address.toString();
  }
}

export class KubeCIDR {
  constructor(
    readonly address: ipaddr.IPv4 | ipaddr.IPv6,
    readonly prefix: number,
  ) {}
  toString(): string {
    return `${new KubeIP(this.address).toString()}/${this.prefix}`;
  }
}

/** As Kubernetes' ip(): IPv4 dotted decimal or IPv6, no zone, no IPv4-mapped IPv6. */
function parseIp(text: string): KubeIP | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    if (text.split('.').some((octet) => octet.length > 1 && octet.startsWith('0'))) return undefined;
    return new KubeIP(ipaddr.IPv4.parse(text));
  }
  if (text.includes(':') && !text.includes('%') && ipaddr.IPv6.isValid(text)) {
    const address = ipaddr.IPv6.parse(text);
    return address.isIPv4MappedAddress() ? undefined : new KubeIP(address);
  }
  return undefined;
}

function parseCidr(text: string): KubeCIDR | undefined {
  const slash = text.indexOf('/');
  if (slash === -1) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (ip === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (ip.address.kind() === 'ipv4' ? 32 : 128)) return undefined;
  return new KubeCIDR(ip.address, prefix);
}

function ipRange(ip: KubeIP): string {
  return ip.address.range();
}

function containsIp(cidr: KubeCIDR, ip: KubeIP): boolean {
  return cidr.address.kind() === ip.address.kind() && ip.address.match([cidr.address, cidr.prefix]);
}

function maskedCidr(cidr: KubeCIDR): KubeCIDR {
  const bytes = cidr.address.toByteArray();
  bytes.forEach((byte, i) => {
    const bits = Math.max(0, Math.min(8, cidr.prefix - i * 8));
    bytes[i] = byte & ((0xff << (8 - bits)) & 0xff);
  });
  return new KubeCIDR(ipaddr.fromByteArray(bytes), cidr.prefix);
}

// ---------------------------------------------------------------- named formats

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A named format: validate(s) is none when `s` is valid, else the reasons (Kubernetes' messages). */
export class NamedFormat {
  constructor(
    readonly name: string,
    readonly errors: (s: string) => string[],
  ) {}
}

function dns1123Label(s: string): string[] {
  const errors: string[] = [];
  if (s.length > 63) errors.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(s))
    errors.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
  return errors;
}

function dns1123Subdomain(s: string): string[] {
  const errors: string[] = [];
  if (s.length > 253) errors.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(s))
    errors.push(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
  return errors;
}

function dns1035Label(s: string): string[] {
  const errors: string[] = [];
  if (s.length > 63) errors.push('must be no more than 63 characters');
  if (!DNS1035_LABEL.test(s))
    errors.push(
      "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    );
  return errors;
}

function qualifiedName(s: string): string[] {
  const parts = s.split('/');
  let name = s;
  const errors: string[] = [];
  if (parts.length === 2) {
    const [prefix = '', rest = ''] = parts;
    name = rest;
    if (prefix === '') errors.push('prefix part must be non-empty');
    else errors.push(...dns1123Subdomain(prefix).map((e) => `prefix part ${e}`));
  } else if (parts.length > 2) {
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (name === '') errors.push('name part must be non-empty');
  else if (name.length > 63) errors.push('name part must be no more than 63 characters');
  if (name !== '' && !QUALIFIED_NAME_PART.test(name))
    errors.push(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
  return errors;
}

function labelValue(s: string): string[] {
  const errors: string[] = [];
  if (s.length > 63) errors.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(s))
    errors.push(
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    );
  return errors;
}

const FORMATS: ReadonlyMap<string, NamedFormat> = new Map(
  (
    [
      ['dns1123Label', dns1123Label],
      ['dns1123Subdomain', dns1123Subdomain],
      ['dns1035Label', dns1035Label],
      ['qualifiedName', qualifiedName],
      ['dns1123LabelPrefix', (s: string) => dns1123Label(s.endsWith('-') ? `${s.slice(0, -1)}a` : s)],
      [
        'dns1123SubdomainPrefix',
        (s: string) => dns1123Subdomain(s.endsWith('-') || s.endsWith('.') ? `${s.slice(0, -1)}a` : s),
      ],
      ['dns1035LabelPrefix', (s: string) => dns1035Label(s.endsWith('-') ? `${s.slice(0, -1)}a` : s)],
      ['labelValue', labelValue],
      ['uri', (s: string) => (parseUrl(s) === undefined ? ['invalid URI'] : [])],
      ['uuid', (s: string) => (UUID.test(s) ? [] : ['does not match the UUID format'])],
      [
        'byte',
        (s: string) =>
          /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)
            ? []
            : ['invalid base64'],
      ],
      ['date', (s: string) => (/^\d{4}-\d{2}-\d{2}$/.test(s) ? [] : ['invalid date'])],
      [
        'datetime',
        (s: string) =>
          /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s)
            ? []
            : ['invalid datetime'],
      ],
    ] as const
  ).map(([name, errors]) => [name, new NamedFormat(name, errors)]),
);

// ---------------------------------------------------------------- two-variable comprehensions

// The shapes of cel-js' macro hooks that Portcullis uses (not part of its published types).
interface MacroType {
  kind: string;
  keyType?: MacroType;
  valueType?: MacroType;
}
interface MacroCheckContext {
  forkWithVariable(name: string, type: MacroType): MacroIterContext;
}
interface MacroIterContext extends MacroCheckContext {
  reuse(parent: unknown): MacroIterContext;
  setIterValue(value: unknown, evaluator: unknown): MacroIterContext;
}
interface MacroChecker {
  check(node: unknown, ctx: unknown): MacroType;
  getType(name: string): MacroType;
  dynType: MacroType;
  createError(code: string, message: string, node: unknown): Error;
  registry: { getListType(t: MacroType): MacroType; getMapType(k: MacroType, v: MacroType): MacroType };
}
interface MacroEvaluator {
  run(node: unknown, ctx: unknown): unknown;
}
interface MacroNode {
  op: string;
  args: unknown;
}
interface MacroCall {
  args: readonly MacroNode[];
  receiver: MacroNode;
}

type TwoVarKind = 'all' | 'exists' | 'existsOne' | 'transformList' | 'transformMap';

interface TwoVarMacro {
  kind: TwoVarKind;
  receiver: MacroNode;
  first: string;
  second: string;
  filter: MacroNode | undefined;
  body: MacroNode;
  firstCtx: MacroIterContext | undefined;
  secondCtx: MacroIterContext | undefined;
  typeCheck(checker: MacroChecker, macro: TwoVarMacro, ctx: MacroCheckContext): MacroType;
  evaluate(evaluator: MacroEvaluator, macro: TwoVarMacro, ctx: unknown): unknown;
}

function identifier(node: MacroNode | undefined, name: string): string {
  if (node?.op === 'id' && typeof node.args === 'string') return node.args;
  throw new Error(`${name}() variable names must be simple identifiers`);
}

function entriesOf(collection: unknown): [unknown, unknown][] {
  if (Array.isArray(collection)) return collection.map((v, i) => [BigInt(i), v]);
  const entries = mapEntries(collection);
  if (entries !== undefined) return entries;
  return fail(`comprehension range must be a list or a map, got ${typeName(collection)}`);
}

function twoVarMacro(kind: TwoVarKind, withFilter: boolean) {
  return ({ args, receiver }: MacroCall): TwoVarMacro => ({
    kind,
    receiver,
    first: identifier(args[0], kind),
    second: identifier(args[1], kind),
    filter: withFilter ? args[2] : undefined,
    body: withFilter ? (args[3] ?? receiver) : (args[2] ?? receiver),
    firstCtx: undefined,
    secondCtx: undefined,
    typeCheck(checker, macro, ctx) {
      const range = checker.check(macro.receiver, ctx);
      const dyn = checker.dynType;
      const [firstType, secondType] =
        range.kind === 'list'
          ? [checker.getType('int'), range.valueType ?? dyn]
          : range.kind === 'map'
            ? [range.keyType ?? dyn, range.valueType ?? dyn]
            : range.kind === 'dyn'
              ? [dyn, dyn]
              : fail(`${macro.kind}() range must be a list or a map`);
      macro.firstCtx = ctx.forkWithVariable(macro.first, firstType);
      macro.secondCtx = macro.firstCtx.forkWithVariable(macro.second, secondType);
      if (macro.filter !== undefined) checker.check(macro.filter, macro.secondCtx);
      const bodyType = checker.check(macro.body, macro.secondCtx);
      if (macro.kind === 'transformList') return checker.registry.getListType(bodyType);
      if (macro.kind === 'transformMap') return checker.registry.getMapType(firstType, bodyType);
      return checker.getType('bool');
    },
    evaluate(evaluator, macro, ctx) {
      const { firstCtx, secondCtx } = macro;
      if (firstCtx === undefined || secondCtx === undefined)
        return fail(`${macro.kind}() was not type-checked`);
      const entries = entriesOf(evaluator.run(macro.receiver, ctx));
      const results: unknown[] = [];
      const mapped = new Map<unknown, unknown>();
      let count = 0;
      for (const [key, value] of entries) {
        spendCost(2);
        const inner = secondCtx
          .reuse(firstCtx.reuse(ctx).setIterValue(key, evaluator))
          .setIterValue(value, evaluator);
        if (macro.filter !== undefined && evaluator.run(macro.filter, inner) !== true) continue;
        const result = evaluator.run(macro.body, inner);
        if (macro.kind === 'all' && result !== true) return false;
        if (macro.kind === 'exists' && result === true) return true;
        if (macro.kind === 'existsOne' && result === true) count++;
        if (macro.kind === 'transformList') results.push(result);
        if (macro.kind === 'transformMap') mapped.set(key, result);
      }
      switch (macro.kind) {
        case 'all':
          return true;
        case 'exists':
          return false;
        case 'existsOne':
          return count === 1;
        case 'transformList':
          return results;
        case 'transformMap':
          return Object.fromEntries([...mapped].map(([k, v]) => [String(k), v]));
      }
    },
  });
}

// ---------------------------------------------------------------- registration

// The receivers of namespaced functions (strings.quote, sets.contains, format.dns1123Label, ip.isCanonical).
class Namespace {
  constructor(readonly name: string) {}
}
class StringsNamespace extends Namespace {}
class SetsNamespace extends Namespace {}
class FormatNamespace extends Namespace {}
class IpNamespace extends Namespace {}

/** Adds the Kubernetes libraries to `env` (whose variables are registered by the caller). */
export function registerKubernetesLibraries(env: Environment): void {
  const fn = (signature: string, handler: (...args: never[]) => unknown): void => {
    env.registerFunction(signature, handler);
  };

  // strings (cel-go ext.Strings v2: what cel-js lacks)
  fn('string.charAt(int): string', (s: string, i: bigint) => {
    const chars = Array.from(s);
    if (i < 0n || i > BigInt(chars.length)) fail(`index out of range: ${i}`);
    return chars[Number(i)] ?? '';
  });
  fn('string.replace(string, string): string', (s: string, a: string, b: string) => replaceN(s, a, b, -1n));
  fn('string.replace(string, string, int): string', (s: string, a: string, b: string, n: bigint) =>
    replaceN(s, a, b, n),
  );
  fn('string.reverse(): string', (s: string) => Array.from(s).reverse().join(''));
  fn('string.format(list): string', (s: string, args: readonly Value[]) => format(s, args));
  env.registerType('StringsNamespace', StringsNamespace);
  env.registerConstant('strings', 'StringsNamespace', new StringsNamespace('strings'));
  fn('StringsNamespace.quote(string): string', (_: StringsNamespace, s: string) => quote(s));

  // regex (RE2, as the API server's)
  fn(`string.${RE2_MATCHES}(string): bool`, (s: string, p: string) => {
    sizeCost(s.length);
    return compileRe2(p).matcher(s).find();
  });
  fn(`${RE2_MATCHES}(string, string): bool`, (s: string, p: string) => {
    sizeCost(s.length);
    return compileRe2(p).matcher(s).find();
  });
  fn('string.find(string): string', (s: string, p: string) => findAll(s, p, 1)[0] ?? '');
  fn('string.findAll(string): list<string>', (s: string, p: string) => findAll(s, p, -1));
  fn('string.findAll(string, int): list<string>', (s: string, p: string, n: bigint) =>
    findAll(s, p, Number(n)),
  );

  // lists
  fn('list.isSorted(): bool', (l: readonly Value[]) => {
    sizeCost(l.length);
    return l.every((x, i) => i === 0 || compareValues(l[i - 1], x) <= 0);
  });
  fn('list.sum(): dyn', (l: readonly Value[]) => sum(l));
  fn('list.min(): dyn', (l: readonly Value[]) => extreme(l, -1, 'min'));
  fn('list.max(): dyn', (l: readonly Value[]) => extreme(l, 1, 'max'));
  fn('list.indexOf(dyn): int', (l: readonly Value[], x: Value) => {
    sizeCost(l.length);
    return BigInt(l.findIndex((y) => celEquals(x, y)));
  });
  fn('list.lastIndexOf(dyn): int', (l: readonly Value[], x: Value) => {
    sizeCost(l.length);
    return BigInt(l.findLastIndex((y) => celEquals(x, y)));
  });

  // sets (cel-go ext.Sets)
  env.registerType('SetsNamespace', SetsNamespace);
  env.registerConstant('sets', 'SetsNamespace', new SetsNamespace('sets'));
  const setOp = (name: string, op: (a: readonly Value[], b: readonly Value[]) => boolean): void => {
    fn(`SetsNamespace.${name}(list, list): bool`, (_: SetsNamespace, a: Value, b: Value) => {
      const [x, y] = [asList(a), asList(b)];
      spendCost(1 + Math.ceil((x.length * y.length) / 10));
      return op(x, y);
    });
  };
  setOp('contains', (a, b) => b.every((y) => a.some((x) => celEquals(x, y))));
  setOp(
    'equivalent',
    (a, b) =>
      b.every((y) => a.some((x) => celEquals(x, y))) && a.every((x) => b.some((y) => celEquals(x, y))),
  );
  setOp('intersects', (a, b) => a.some((x) => b.some((y) => celEquals(x, y))));

  // url
  env.registerType('kubernetes.URL', KubeURL);
  fn(
    'url(string): kubernetes.URL',
    (s: string) => parseUrl(s) ?? fail(`URL parse error during conversion from string: ${s}`),
  );
  fn('isURL(string): bool', (s: string) => parseUrl(s) !== undefined);
  fn('kubernetes.URL.getScheme(): string', (u: KubeURL) => u.scheme);
  fn('kubernetes.URL.getHost(): string', (u: KubeURL) => u.host);
  fn('kubernetes.URL.getHostname(): string', (u: KubeURL) => hostnameOf(u));
  fn('kubernetes.URL.getPort(): string', (u: KubeURL) => portOf(u));
  fn('kubernetes.URL.getEscapedPath(): string', (u: KubeURL) => u.path);
  fn('kubernetes.URL.getQuery(): map<string, list<string>>', (u: KubeURL) => Object.fromEntries(queryOf(u)));

  // quantity
  env.registerType('kubernetes.Quantity', Quantity);
  const Q = 'kubernetes.Quantity';
  fn(`quantity(string): ${Q}`, quantity);
  fn('isQuantity(string): bool', (s: string) => Quantity.parse(s) !== undefined);
  fn(`${Q}.isInteger(): bool`, (q: Quantity) => q.isInteger());
  fn(`${Q}.asInteger(): int`, (q: Quantity) => q.asInteger());
  fn(`${Q}.asApproximateFloat(): double`, (q: Quantity) => q.asApproximateFloat());
  fn(`${Q}.sign(): int`, (q: Quantity) => q.sign());
  fn(`${Q}.add(${Q}): ${Q}`, (q: Quantity, r: Quantity) => q.add(r));
  fn(`${Q}.add(int): ${Q}`, (q: Quantity, n: bigint) => q.add(new Quantity(n, 1n)));
  fn(`${Q}.sub(${Q}): ${Q}`, (q: Quantity, r: Quantity) => q.add(r.negate()));
  fn(`${Q}.sub(int): ${Q}`, (q: Quantity, n: bigint) => q.add(new Quantity(-n, 1n)));
  fn(`${Q}.isGreaterThan(${Q}): bool`, (q: Quantity, r: Quantity) => q.compareTo(r) > 0);
  fn(`${Q}.isLessThan(${Q}): bool`, (q: Quantity, r: Quantity) => q.compareTo(r) < 0);
  fn(`${Q}.compareTo(${Q}): int`, (q: Quantity, r: Quantity) => BigInt(q.compareTo(r)));

  // ip and cidr
  env.registerType('net.IP', KubeIP);
  env.registerType('net.CIDR', KubeCIDR);
  env.registerType('IpNamespace', IpNamespace);
  env.registerConstant('ip', 'IpNamespace', new IpNamespace('ip'));
  const ipOf = (s: string): KubeIP =>
    parseIp(s) ??
    fail(
      `IP Address ${JSON.stringify(s)} parse error during conversion from string: ParseAddr(${JSON.stringify(s)}): unable to parse IP`,
    );
  const cidrOf = (s: string): KubeCIDR =>
    parseCidr(s) ??
    fail(
      `network address parse error during conversion from string: network address ${JSON.stringify(s)} is not a valid CIDR`,
    );
  fn('ip(string): net.IP', ipOf);
  fn('isIP(string): bool', (s: string) => parseIp(s) !== undefined);
  fn('IpNamespace.isCanonical(string): bool', (_: IpNamespace, s: string) => ipOf(s).toString() === s);
  fn('string(net.IP): string', (ip: KubeIP) => ip.toString());
  fn('net.IP.family(): int', (ip: KubeIP) => (ip.address.kind() === 'ipv4' ? 4n : 6n));
  fn('net.IP.isUnspecified(): bool', (ip: KubeIP) => ipRange(ip) === 'unspecified');
  fn('net.IP.isLoopback(): bool', (ip: KubeIP) => ipRange(ip) === 'loopback');
  fn('net.IP.isLinkLocalMulticast(): bool', (ip: KubeIP) =>
    ip.address.kind() === 'ipv4'
      ? ip.address.match(ipaddr.IPv4.parse('224.0.0.0'), 24)
      : ip.address.match(ipaddr.IPv6.parse('ff02::'), 16),
  );
  fn('net.IP.isLinkLocalUnicast(): bool', (ip: KubeIP) => ipRange(ip) === 'linkLocal');
  fn('net.IP.isGlobalUnicast(): bool', (ip: KubeIP) => {
    const range = ipRange(ip);
    return !['unspecified', 'loopback', 'multicast', 'linkLocal', 'broadcast'].includes(range);
  });
  fn('cidr(string): net.CIDR', cidrOf);
  fn('isCIDR(string): bool', (s: string) => parseCidr(s) !== undefined);
  fn('string(net.CIDR): string', (c: KubeCIDR) => c.toString());
  fn('net.CIDR.containsIP(string): bool', (c: KubeCIDR, s: string) => containsIp(c, ipOf(s)));
  fn('net.CIDR.containsIP(net.IP): bool', (c: KubeCIDR, ip: KubeIP) => containsIp(c, ip));
  const containsCidr = (c: KubeCIDR, other: KubeCIDR): boolean =>
    other.prefix >= c.prefix && containsIp(c, new KubeIP(other.address));
  fn('net.CIDR.containsCIDR(string): bool', (c: KubeCIDR, s: string) => containsCidr(c, cidrOf(s)));
  fn('net.CIDR.containsCIDR(net.CIDR): bool', (c: KubeCIDR, other: KubeCIDR) => containsCidr(c, other));
  fn('net.CIDR.ip(): net.IP', (c: KubeCIDR) => new KubeIP(c.address));
  fn('net.CIDR.masked(): net.CIDR', (c: KubeCIDR) => maskedCidr(c));
  fn('net.CIDR.prefixLength(): int', (c: KubeCIDR) => BigInt(c.prefix));

  // named formats
  env.registerType('FormatNamespace', FormatNamespace);
  env.registerType('kubernetes.NamedFormat', NamedFormat);
  env.registerConstant('format', 'FormatNamespace', new FormatNamespace('format'));
  for (const [name, named] of FORMATS) fn(`FormatNamespace.${name}(): kubernetes.NamedFormat`, () => named);
  fn(
    'FormatNamespace.named(string): optional<kubernetes.NamedFormat>',
    (_: FormatNamespace, name: string) => {
      const named = FORMATS.get(name);
      return named === undefined ? optionalNone() : optionalOf(named);
    },
  );
  fn('kubernetes.NamedFormat.validate(string): optional<list<string>>', (f: NamedFormat, s: string) => {
    sizeCost(s.length);
    const errors = f.errors(s);
    return errors.length === 0 ? optionalNone() : optionalOf(errors);
  });

  // two-variable comprehensions (cel-go ext.TwoVarComprehensions, Kubernetes 1.33+)
  const macro = (signature: string, kind: TwoVarKind, withFilter: boolean): void => {
    env.registerFunction(signature, twoVarMacro(kind, withFilter));
  };
  macro('list.all(ast, ast, ast): bool', 'all', false);
  macro('list.exists(ast, ast, ast): bool', 'exists', false);
  macro('list.existsOne(ast, ast, ast): bool', 'existsOne', false);
  macro('list.transformList(ast, ast, ast): list<dyn>', 'transformList', false);
  macro('list.transformList(ast, ast, ast, ast): list<dyn>', 'transformList', true);
  macro('list.transformMap(ast, ast, ast): map<dyn, dyn>', 'transformMap', false);
  macro('list.transformMap(ast, ast, ast, ast): map<dyn, dyn>', 'transformMap', true);
}

const optionalOf = (v: unknown): Optional => Optional.of(v);
const optionalNone = (): Optional => Optional.none();

export { CelRuntimeError };
