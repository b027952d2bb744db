// Helpers for the end-to-end tests: build and run the real parley binary.
import { spawn, execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

let built;
/** Path of a parley binary: $PARLEY_BIN, or one built now. */
export function parleyBinary() {
  if (process.env.PARLEY_BIN) return process.env.PARLEY_BIN;
  if (!built) {
    built = join(mkdtempSync(join(tmpdir(), 'parley-bin-')), 'parley');
    execFileSync('go', ['build', '-o', built, './cmd/parley'], { cwd: root, stdio: 'inherit' });
  }
  return built;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'parley-e2e-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Starts `parley demo --json` (its logs also go to $PARLEY_E2E_LOG when set) and resolves with {info, proc, stop(signal)}.
 * info is the JSON object the demo prints.
 */
export async function startDemo({ listen, data, args = [], env = {} }) {
  const proc = spawn(parleyBinary(), ['demo', '--json', '--listen', listen, '--data', data, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; if (process.env.PARLEY_E2E_LOG) appendFileSync(process.env.PARLEY_E2E_LOG, d); });
  const rl = createInterface({ input: proc.stdout });
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('demo did not start: ' + stderr)), 30000);
    rl.once('line', (line) => { clearTimeout(timer); resolve(JSON.parse(line)); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`demo exited ${code}: ${stderr}`)); });
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  return {
    info,
    proc,
    logs: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal);
      await exited;
    },
  };
}

/** Polls cond every 50 ms until it returns a truthy value. */
export async function waitFor(what, cond, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}
