// FNV-1a (32-bit) of a string: kernel entry and dump-file names, deterministic test seeds. Not for security.

export function fnv1a(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The hash as 8 hex digits. */
export const fnv1aHex = (s: string): string => fnv1a(s).toString(16).padStart(8, '0');
