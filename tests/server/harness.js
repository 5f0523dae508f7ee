// Shared helpers for the end-to-end tests of `strata serve`: start a real
// server on an ephemeral port, run the strata CLI for reference outputs,
// and a tiny test runner. Usage: node X.test.js STRATA_BIN TESTDATA_DIR [--sanitized]
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const assert = require('node:assert/strict');

const [strataBin, testdata] = process.argv.slice(2, 4);
const sanitized = process.argv.includes('--sanitized');
if (!strataBin || !testdata) {
  console.error('usage: node X.test.js STRATA_BIN TESTDATA_DIR [--sanitized]');
  process.exit(2);
}
const model = path.join(testdata, 'stories260K');
const chatTemplate = path.join(__dirname, 'chat_template.jinja');

// Starts `strata serve MODEL --port 0 ...`; resolves when /health says ok.
async function startServer(args = [], env = {}) {
  const proc = spawn(strataBin, ['serve', model, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  // Never leave a server behind, whatever happens to the test.
  process.on('exit', () => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d.toString(); });
  proc.stdout.on('data', () => {});
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 30000;
  let port = null;
  while (port === null) {
    const m = stderr.match(/listening on http:\/\/[^:]+:(\d+)/);
    if (m) port = Number(m[1]);
    else if (proc.exitCode !== null) throw new Error(`strata serve exited: ${stderr}`);
    else if (Date.now() > deadline) throw new Error(`strata serve did not start: ${stderr}`);
    else await sleep(20);
  }
  const base = `http://127.0.0.1:${port}`;
  while (true) {
    try {
      const r = await fetch(`${base}/health`);
      if (r.status === 200) break;
    } catch (e) { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`strata serve never became ready: ${stderr}`);
    await sleep(20);
  }
  return {
    proc, port, base, exited,
    stderr: () => stderr,
    // SIGTERM, then the exit status; fails if it takes more than `ms`.
    async stop(ms = 10000) {
      const t0 = Date.now();
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
      const r = await exited;
      clearTimeout(timer);
      return { ...r, ms: Date.now() - t0 };
    },
  };
}

// `strata run MODEL ... --format json` (greedy), parsed.
function strataRun(args) {
  const out = execFileSync(strataBin, ['run', model, ...args, '--format', 'json'], { encoding: 'utf8' });
  return JSON.parse(out);
}

// Token ids of a conversation under the test chat template, from the CLI.
function chatTemplateIds(messages) {
  const file = path.join(require('node:os').tmpdir(), `strata-e2e-${process.pid}-messages.json`);
  fs.writeFileSync(file, JSON.stringify(messages));
  try {
    const out = execFileSync(strataBin, ['chat-template', model, '--chat-template', chatTemplate, '--messages', file, '--ids'],
      { encoding: 'utf8' });
    return JSON.parse(out);
  } finally {
    fs.unlinkSync(file);
  }
}

function strataHelp(cmd) {
  return execFileSync(strataBin, [cmd, '--help'], { encoding: 'utf8' });
}

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+)/)[1]);
}

async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const values = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [k, v] = line.split(/\s+/);
    values[k] = Number(v);
  }
  return values;
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// Runs the named async tests in order; exits 1 if any failed.
async function run(tests) {
  let failed = 0;
  for (const [name, fn] of tests) {
    const t0 = Date.now();
    try {
      await fn();
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    }
  }
  console.log(failed ? `${failed} of ${tests.length} failed` : `all ${tests.length} passed`);
  process.exit(failed ? 1 : 0);
}

module.exports = { assert, startServer, strataRun, strataHelp, chatTemplateIds, rssKiB, metrics, sleep, run, model, chatTemplate, sanitized };
