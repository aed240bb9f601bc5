// Errors raised while tracing name the op and point at the user's source line, not at the library.

import { fileURLToPath } from 'node:url';

const libraryRoot = fileURLToPath(new URL('..', import.meta.url));
const libraryDirs = ['dsl', 'compiler', 'backends'].map((d) => libraryRoot + d + '/');

/** The first stack frame outside the library (dsl/, compiler/, backends/) and Node internals: "file:line:col". */
export function callerLocation(): string | undefined {
  // V8 keeps only Error.stackTraceLimit (default 10) frames; an op called from user code can be deeper than
  // that inside the library (bind -> lift -> assertLive ...), which lost the location. Capture more frames.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = Math.max(limit, 64);
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^():]+|node:[^():]+):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    if (!m) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (file.startsWith('node:') || file.includes('/node_modules/')) continue;
    if (libraryDirs.some((d) => file.startsWith(d))) continue;
    return `${file}:${m[2]}:${m[3]}`;
  }
  return undefined;
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
