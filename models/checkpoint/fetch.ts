// Loading a checkpoint over HTTP (a page's `fetch`): a checkpoint directory as `twinflow train` writes it
// (checkpoint.json and one safetensors file per part; only the parts the template asks for are fetched),
// or a one-file checkpoint (…safetensors, as the page downloads it). The checks and messages are codec.ts's,
// the same as when Node reads the files.

import { CheckpointError, checkpointFromBytes, MANIFEST_FILE, PART_FILES, partFromBytes, PARTS, readManifest, type StateParts } from './codec.ts';

async function fetchBytes(url: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new CheckpointError(`${url}: could not be fetched (${(e as Error).message})`);
  }
  if (!res.ok) throw new CheckpointError(`${url}: ${res.status} ${res.statusText || 'error'}${res.status === 404 ? ': not found, no checkpoint there' : ''}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * The parts `like` asks for, from `url`: a checkpoint directory (ending in '/') or a one-file checkpoint
 * (ending in '.safetensors'), with its step and config. Throws CheckpointError naming the URL and the reason.
 */
export async function loadCheckpoint<L extends StateParts>(url: string, like: L): Promise<L & { step: number; config: unknown }> {
  if (url.endsWith('.safetensors')) return checkpointFromBytes(await fetchBytes(url), like, url);
  if (!url.endsWith('/')) throw new CheckpointError(`${url}: expected a checkpoint directory ending in '/' or a file ending in '.safetensors'`);
  const manifestUrl = url + MANIFEST_FILE;
  let manifest: unknown;
  try {
    manifest = JSON.parse(new TextDecoder().decode(await fetchBytes(manifestUrl)));
  } catch (e) {
    throw e instanceof CheckpointError ? e : new CheckpointError(`${manifestUrl}: unreadable (${(e as Error).message}): the file is corrupt`);
  }
  const { step, config } = readManifest(manifest, manifestUrl);
  const out: Record<string, unknown> = { step, config };
  for (const part of PARTS) {
    if (like[part] === undefined) continue;
    const fileUrl = url + PART_FILES[part];
    out[part] = await partFromBytes(await fetchBytes(fileUrl), like[part], part, step, fileUrl, MANIFEST_FILE);
  }
  return out as L & { step: number; config: unknown };
}
