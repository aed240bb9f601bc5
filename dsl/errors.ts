// Errors raised while tracing name the op and point at the user's source line, not at the library.

// Frames are file paths or file:// URLs in Node, http(s) URLs in a page served by a dev server; the library's
// own directories are recognised in either form (no node:url, so this module loads in a browser).

/** A file:// URL as a path (POSIX, or Windows with a drive letter); other URLs unchanged, without ?query or #hash. */
function framePath(url: string): string {
  if (!url.startsWith('file://')) return url.replace(/[?#].*$/, '');
  const p = decodeURIComponent(new URL(url).pathname);
  return /^\/[A-Za-z]:\//.test(p) ? p.slice(1) : p;
}

// In an IIFE bundle import.meta.url is undefined: library and user frames share one file there anyway.
const here = import.meta.url as string | undefined;
const libraryRoot = here ? framePath(new URL('..', here).href) : undefined;

/**
 * The first frame of `stack` outside the library under `root` (its dsl/, compiler/, backends/), node_modules
 * and Node internals, as "file:line:col" (a path for file frames, the URL without query for http(s) frames).
 */
export function userFrame(stack: string, root: string | undefined): string | undefined {
  const libraryDirs = root === undefined ? [] : ['dsl', 'compiler', 'backends'].map((d) => root + d + '/');
  for (const line of stack.split('\n').slice(1)) {
    const m = /(?:^|[\s(@])((?:file|https?):\/\/[^()\s]+?|\/[^()]+?|node:[^()\s]+?):(\d+):(\d+)\)?$/.exec(line.trim());
    if (!m) continue;
    const file = framePath(m[1]!);
    if (file.startsWith('node:') || file.includes('/node_modules/')) continue;
    if (libraryDirs.some((d) => file.startsWith(d))) continue;
    return `${file}:${m[2]}:${m[3]}`;
  }
  return undefined;
}

/** Where the library was called from in user code: "file:line:col". */
export function callerLocation(): string | undefined {
  // V8 keeps only Error.stackTraceLimit (default 10) frames; an op called from user code can be deeper than
  // that inside the library (bind -> lift -> assertLive ...), which lost the location. Capture more frames.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = Math.max(limit, 64);
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return userFrame(stack, libraryRoot);
}

export class TwinflowError extends Error {
  /** Where the failing call was made in user code, when it could be found. */
  readonly location: string | undefined;
  /** The message without the location, for quoting inside another message. */
  readonly detail: string;
  constructor(message: string) {
    const location = callerLocation();
    super(location ? `${message} (at ${location})` : message);
    this.name = new.target.name;
    this.location = location;
    this.detail = message;
  }
}
/** Incompatible shapes, bad axes, wrong ranks. */
export class ShapeError extends TwinflowError {}
/** Wrong or mismatched dtypes. */
export class DTypeError extends TwinflowError {}
/** Misuse of a transform (grad of a non-scalar, leaked tracer, bad pytree). */
export class TransformError extends TwinflowError {}
