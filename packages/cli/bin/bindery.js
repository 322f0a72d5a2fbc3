#!/usr/bin/env node
// Runs the TypeScript CLI in this very process through tsx's loader hooks: no build step, no
// second process, and the exit code main.ts sets is the process's own. Paths are resolved from
// this file (npm links it into node_modules/.bin; Node follows the link), so any cwd works.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../src/main.ts', import.meta.url).href);
