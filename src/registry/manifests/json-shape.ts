/**
 * A bound on what JSON.parse of a manifest may build. The body is at most
 * 4 MiB, but parsed it can be far larger: 4 MiB of `[[[[…` is two million
 * nested arrays, of `{},{},…` a million objects, each tens of bytes of heap
 * (a few such requests grew a serving process by hundreds of MiB). Real
 * manifests nest a handful of levels and hold thousands of values, so one
 * linear pass over the bytes refuses the rest before anything is built.
 */

/** Deepest nesting of arrays and objects accepted (OCI indexes use about five). */
export const MAX_JSON_DEPTH = 64;
/** Most JSON values (objects, arrays, strings, keys included, numbers, literals) accepted. */
export const MAX_JSON_VALUES = 200_000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Why `body` is too deep or too large to parse, or undefined when it is
 * within bounds. Malformed JSON is left to JSON.parse to describe.
 */
export function jsonShapeProblem(body: Uint8Array, maxDepth = MAX_JSON_DEPTH, maxValues = MAX_JSON_VALUES): string | undefined {
  let depth = 0;
  let values = 0;
  // True while inside a number or literal (true, false, null): counted once, at its first byte.
  let inScalar = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (b === QUOTE) {
      inScalar = false;
      values++;
      // Skip the string, escapes included.
      for (i++; i < body.length; i++) {
        const s = body[i]!;
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (b === 0x5b || b === 0x7b) {
      // [ or {
      inScalar = false;
      values++;
      if (++depth > maxDepth) return `manifest JSON nests deeper than ${maxDepth} levels`;
    } else if (b === 0x5d || b === 0x7d) {
      inScalar = false;
      depth--;
    } else if (b === 0x2c || b === 0x3a || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) {
      // , : and whitespace end a number or literal
      inScalar = false;
    } else if (!inScalar) {
      inScalar = true;
      values++;
    }
    if (values > maxValues) return `manifest JSON holds more than ${maxValues} values`;
  }
  return undefined;
}
