// Request bodies: JSON only, never nested deeper and never holding more objects and arrays than
// any Kubernetes object does. JSON.parse itself copes with deep nesting, but whatever walks the
// result afterwards recurses, and it builds every object before anything can count them; cheap
// scans of the raw text refuse `[[[[…` and `[{},{},…` before anything is built from it.

/** Deeper than any AdmissionReview: a pod's managedFields, the deepest part, stays under 30. */
export const MAX_JSON_DEPTH = 256;
/**
 * Objects and arrays in one body. JSON.parse builds every one of them before anything can look at
 * the result, and what the API server sends has a few thousand (a pod with 256 containers and
 * its managedFields, some tens of thousands): a million empty containers in 3 MiB was 2 GiB of
 * process and seconds of event loop. Counted on the raw text, as the depth is.
 */
export const MAX_JSON_NODES = 300_000;

export class RequestError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** Whether arrays and objects nest deeper than `limit` anywhere in the text (brackets in strings do not count). */
export function nestsDeeperThan(text: string, limit: number): boolean {
  // Nesting is never deeper than the number of opening brackets, and counting those is a native
  // indexOf per bracket (~1 µs for the 5 KB bench review) where the exact scan below walks every
  // character outside strings in JavaScript (~7 µs). Brackets inside strings are counted too, which
  // only sends more bodies to the exact scan: the answer is the same either way.
  if (!opensMoreThan(text, limit)) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // indexOf runs natively: strings are most of a Kubernetes object, so skip them whole.
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && escaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) return false; // unterminated: JSON.parse reports it
      i = end;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/** Whether more than `limit` objects and arrays open in the text (brackets in strings do not count). */
export function opensOutsideStringsMoreThan(text: string, limit: number): boolean {
  // The native count first, as above: an ordinary body has far fewer brackets, strings and all.
  if (!opensMoreThan(text, limit)) return false;
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && escaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) return false;
      i = end;
    } else if ((c === OPEN_BRACE || c === OPEN_BRACKET) && ++count > limit) {
      return true;
    }
  }
  return false;
}

/** Whether `{` and `[` together occur more than `limit` times in `text`, in strings or not. */
function opensMoreThan(text: string, limit: number): boolean {
  let count = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++count > limit) return true;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++count > limit) return true;
  return false;
}

/** Whether the quote at `at` is escaped: an odd run of backslashes before it. */
function escaped(text: string, at: number): boolean {
  let run = 0;
  for (let j = at - 1; j >= 0 && text.charCodeAt(j) === BACKSLASH; j--) run++;
  return run % 2 === 1;
}

export function parseJsonBody(text: string): unknown {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new RequestError(
      400,
      'PORTCULLIS_ERR_JSON_TOO_DEEP',
      `body nests deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  // Every object or array takes two characters at least, so a shorter text cannot hold too many
  // (and every review the API server sends is far shorter): no second count.
  if (text.length > 2 * MAX_JSON_NODES && opensOutsideStringsMoreThan(text, MAX_JSON_NODES)) {
    throw new RequestError(
      400,
      'PORTCULLIS_ERR_JSON_TOO_LARGE',
      `body holds more than ${MAX_JSON_NODES} JSON objects and arrays: no object the API server sends has that many`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new RequestError(400, 'PORTCULLIS_ERR_MALFORMED_JSON', `body is not valid JSON: ${reason}`);
  }
}
