// Helpers shared by the tests that run the example agents and bots beside
// `parley serve` (a child process with collected output) and drive Web
// Chat pages in Chromium.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { waitFor } from './lib.mjs';

/**
 * Starts cmd with exactly env (nothing inherited), collects its output
 * (also to $PARLEY_E2E_LOG) and resolves ready when readyPattern shows.
 */
export function startProcess(name, cmd, args, env, readyPattern) {
  const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d) => { out += d; if (process.env.PARLEY_E2E_LOG) appendFileSync(process.env.PARLEY_E2E_LOG, `[${name}] ${d}`); };
  proc.stdout.on('data', collect);
  proc.stderr.on('data', collect);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const ready = waitFor(`${name} to start`, () => {
    if (proc.exitCode !== null) throw new Error(`${name} exited ${proc.exitCode}: ${out}`);
    return readyPattern.test(out);
  });
  return { proc, ready, output: () => out, async stop() { if (proc.exitCode === null) proc.kill('SIGTERM'); await exited; } };
}

/** Texts of the transcript's activities from the bot that contain text. */
export function botBubbles(page, text) {
  return page.locator('.webchat__basic-transcript__activity').filter({ hasText: text })
    .filter({ hasNot: page.locator('.webchat__stacked-layout--from-user') })
    .evaluateAll((els) => els.map((e) => e.innerText));
}

/** A Direct Line token for a new conversation of the site whose secret is given. */
export async function generateToken(directline, secret, user) {
  const res = await fetch(`${directline}/tokens/generate`, {
    method: 'POST', headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: { id: user } }),
  });
  if (res.status !== 200) throw new Error(`tokens/generate: ${res.status} ${await res.text()}`);
  return res.json();
}
