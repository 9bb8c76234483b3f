// The audit log reader on the shapes the API server writes: JSON lines from the log backend, its
// rotated and gzipped backups, EventList batches from the webhook backend, and what goes wrong on
// disk (a line still being written, a corrupt gzip, a line without end).

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { formatPosition, readAuditLogs, type LogRecord } from '../../src/audit/log-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-log-reader-'));
const file = (name: string, content: string | Buffer): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

const event = (auditID: string, extra: Record<string, unknown> = {}) => ({
  kind: 'Event',
  apiVersion: 'audit.k8s.io/v1',
  level: 'Request',
  auditID,
  stage: 'ResponseComplete',
  verb: 'create',
  user: { username: 'alice', groups: ['dev'] },
  objectRef: { resource: 'pods', namespace: 'shop', name: auditID, apiVersion: 'v1' },
  ...extra,
});
const lines = (...values: unknown[]): string =>
  values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join('\n') + '\n';

/** Every record, as `position id` for events and `position kind: message` for the rest. */
async function read(inputs: string[], options: { stdin?: string | Buffer; maxLineBytes?: number } = {}) {
  const out: string[] = [];
  const stdin = Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]);
  const records: LogRecord[] = [];
  for await (const record of readAuditLogs(inputs, {
    stdin,
    ...(options.maxLineBytes === undefined ? {} : { maxLineBytes: options.maxLineBytes }),
  })) {
    records.push(record);
    out.push(
      record.ok
        ? `${formatPosition(record.at)} ${record.event.auditID}`
        : `${formatPosition(record.at)} ${record.kind}: ${record.message}`,
    );
  }
  return { out, records };
}

t.test('JSON lines, blank lines and CRLF, in order, with their line numbers', async (t) => {
  const path = file('audit.log', lines(event('a'), '', event('b')) + JSON.stringify(event('c')) + '\r\n');
  t.same((await read([path])).out, [`${path}:1 a`, `${path}:3 b`, `${path}:4 c`]);
});

t.test('rotated backups, gzipped or not, read in the order given, each with its own lines', async (t) => {
  const oldest = file('audit-2026-12-01T07-00-00.000.log.gz', gzipSync(lines(event('1'), event('2'))));
  const older = file('audit-2026-12-01T08-00-00.000.log', lines(event('3')));
  const current = file('audit.log.current', lines(event('4'), event('5')));
  t.same((await read([oldest, older, current])).out, [
    `${oldest}:1 1`,
    `${oldest}:2 2`,
    `${older}:1 3`,
    `${current}:1 4`,
    `${current}:2 5`,
  ]);
});

t.test('gzip is recognised by its bytes, not its name: a piped .gz and a misnamed file', async (t) => {
  t.same((await read(['-'], { stdin: gzipSync(lines(event('piped'))) })).out, ['<stdin>:1 piped']);
  const misnamed = file('rotated.log', gzipSync(lines(event('z'))));
  t.same((await read([misnamed])).out, [`${misnamed}:1 z`]);
  // Two gzip members back to back (`cat a.gz b.gz`) are one stream.
  const cat = file('cat.gz', Buffer.concat([gzipSync(lines(event('m1'))), gzipSync(lines(event('m2')))]));
  t.same((await read([cat])).out, [`${cat}:1 m1`, `${cat}:2 m2`]);
});

t.test('EventList batches: one per line, or one pretty-printed document per file', async (t) => {
  const batch = (...ids: string[]) => ({
    kind: 'EventList',
    apiVersion: 'audit.k8s.io/v1',
    metadata: {},
    items: ids.map((id) => event(id)),
  });
  const oneLine = file('batches.jsonl', lines(batch('a', 'b'), event('c'), batch()));
  t.same((await read([oneLine])).out, [
    `${oneLine}:1 items[0] a`,
    `${oneLine}:1 items[1] b`,
    `${oneLine}:2 c`,
  ]);
  const pretty = file('batch.json', JSON.stringify(batch('x', 'y'), null, 2));
  t.same((await read([pretty])).out, [`${pretty}:1 items[0] x`, `${pretty}:1 items[1] y`]);
  const prettyEvent = file('event.json', JSON.stringify(event('single'), null, 2) + '\n');
  t.same((await read([prettyEvent])).out, [`${prettyEvent}:1 single`]);
  const broken = file(
    'broken-batch.jsonl',
    lines({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [event('ok'), { kind: 'Event' }] }),
  );
  t.same((await read([broken])).out, [
    `${broken}:1 items[0] ok`,
    `${broken}:1 items[1] unreadable: not an audit.k8s.io/v1 Event or EventList (kind Event): apiVersion is required`,
  ]);
});

t.test('lines that are not events are named with file and line; reading goes on', async (t) => {
  const path = file(
    'mixed.log',
    lines(
      'not json',
      { kind: 'Status', apiVersion: 'v1' },
      event('ok'),
      { ...event('x'), auditID: undefined },
      { ...event('y'), user: 'alice' },
      { ...event('z'), responseStatus: { code: '403' } },
      [1, 2],
      { kind: 'EventList', apiVersion: 'audit.k8s.io/v1' },
    ),
  );
  t.same((await read([path])).out, [
    `${path}:1 unreadable: not JSON (Unexpected token 'o', "not json" is not valid JSON)`,
    `${path}:2 unreadable: not an audit.k8s.io/v1 Event or EventList (kind Status)`,
    `${path}:3 ok`,
    `${path}:4 unreadable: not an audit.k8s.io/v1 Event or EventList (kind Event): auditID is required`,
    `${path}:5 unreadable: not an audit.k8s.io/v1 Event or EventList (kind Event): user must be object`,
    `${path}:6 unreadable: not an audit.k8s.io/v1 Event or EventList (kind Event): responseStatus.code must be integer`,
    `${path}:7 unreadable: not an audit.k8s.io/v1 Event or EventList: event must be object`,
    `${path}:8 unreadable: EventList has no items list`,
  ]);
});

t.test('a last line without newline: an event if complete, `truncated` if still being written', async (t) => {
  const complete = file('complete.log', lines(event('a')) + JSON.stringify(event('b')));
  t.same((await read([complete])).out, [`${complete}:1 a`, `${complete}:2 b`]);
  const partial = file('partial.log', lines(event('a')) + JSON.stringify(event('b')).slice(0, 40));
  t.same((await read([partial])).out, [
    `${partial}:1 a`,
    `${partial}:2 truncated: last line is incomplete (still being written?), skipped`,
  ]);
  // The same bytes followed by a newline are a broken line, not an unfinished one.
  const broken = file('broken.log', lines(event('a')) + JSON.stringify(event('b')).slice(0, 40) + '\n');
  const { out } = await read([broken]);
  t.match(out[1], new RegExp(`^${broken}:2 unreadable: not JSON \\(`));
});

t.test('line length is bounded: an over-long line is skipped and reading resynchronises', async (t) => {
  const long = JSON.stringify(event('long', { requestObject: { data: 'x'.repeat(5000) } }));
  const path = file('long.log', lines(event('a'), long, event('c')) + 'y'.repeat(5000));
  t.same((await read([path], { maxLineBytes: 2000 })).out, [
    `${path}:1 a`,
    `${path}:2 unreadable: line longer than 2000 bytes, skipped`,
    `${path}:3 c`,
    `${path}:4 unreadable: line longer than 2000 bytes, skipped`,
  ]);
  // Through gzip, whose output arrives in small chunks, the bound holds the same way.
  const gz = file('long.log.gz', gzipSync(lines(event('a'), long, event('c'))));
  t.same((await read([gz], { maxLineBytes: 2000 })).out, [
    `${gz}:1 a`,
    `${gz}:2 unreadable: line longer than 2000 bytes, skipped`,
    `${gz}:3 c`,
  ]);
  const pretty = file(
    'big.json',
    JSON.stringify(
      {
        kind: 'EventList',
        apiVersion: 'audit.k8s.io/v1',
        items: [event('p', { requestObject: { data: 'x'.repeat(3000) } })],
      },
      null,
      2,
    ),
  );
  t.same((await read([pretty], { maxLineBytes: 2000 })).out, [
    `${pretty}:1 unreadable: document longer than 2000 bytes, skipped`,
  ]);
});

t.test(
  'files that cannot be read: missing, a directory, a corrupt gzip; the next input is still read',
  async (t) => {
    const good = file('good.log', lines(event('g')));
    const missing = join(dir, 'missing.log');
    const gz = gzipSync(lines(event('a'), event('b'), event('c')));
    const cut = file('cut.log.gz', gz.subarray(0, gz.length - 12));
    const { out } = await read([missing, dir, cut, good]);
    t.equal(
      out[0],
      `${missing}:1 unreadable: cannot read (ENOENT: no such file or directory, open '${missing}')`,
    );
    t.equal(out[1], `${dir}:1 unreadable: cannot read (EISDIR: illegal operation on a directory, read)`);
    t.match(
      out.slice(2, -1).at(-1),
      new RegExp(`^${cut}:\\d+ unreadable: cannot read \\(Z_BUF_ERROR: unexpected end of file\\)$`),
    );
    t.equal(out.at(-1), `${good}:1 g`);
  },
);
