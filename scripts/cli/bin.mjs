#!/usr/bin/env node
// The `twinflow` executable: loads tsx's TypeScript hooks into this process (not a child process, so Ctrl-C
// reaches the training loop directly), then runs the CLI and exits with its code.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exit(await main(process.argv.slice(2)));
