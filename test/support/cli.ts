// Runs the twinflow CLI as a user would: a child process, its output and exit code.

import { spawn } from 'node:child_process';
import path from 'node:path';

export const BIN = path.resolve('scripts/cli/bin.mjs');

export interface Result { code: number | null; stdout: string; stderr: string }

/** Runs the CLI; `onStderr` sees stderr as it arrives (with the child, to signal it). */
export function cli(args: string[], onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
