// Benchmark of `strata serve` with N concurrent streaming clients: aggregate
// tokens/s and per-client time per token for each N, plus passes, rows per
// pass and bytes read from /metrics. One server for all N.
//
//   node bench/serve_clients.js build/strata /tmp/llama3-8b --max-memory 2GiB --clients 1,4,16,64 --tokens 8
'use strict';
const { spawn } = require('node:child_process');

const [bin, model, ...rest] = process.argv.slice(2);
const opt = { '--max-memory': '2GiB', '--clients': '1,4,16,64', '--tokens': '8', '--ctx': '256' };
for (let i = 0; i < rest.length; i += 2) opt[rest[i]] = rest[i + 1];
const clients = opt['--clients'].split(',').map(Number);
const tokens = Number(opt['--tokens']);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function metrics(base) {
  const out = {};
  for (const line of (await (await fetch(`${base}/metrics`)).text()).split('\n'))
    if (line && !line.startsWith('#')) { const [k, v] = line.split(' '); out[k] = Number(v); }
  return out;
}

async function stream(base, prompt) {
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    // logprobs: every token is an event, even without a tokenizer (no text).
    body: JSON.stringify({ prompt, max_tokens: tokens, temperature: 0, stream: true, logprobs: 0 }),
  });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  const times = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of r.body) {
    buf += dec.decode(chunk, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (ev.startsWith('data: {') && JSON.parse(ev.slice(6)).choices[0]?.finish_reason == null) times.push(performance.now());
    }
  }
  return { t0, times };
}

async function main() {
  const args = ['serve', model, '--port', '0', '--max-memory', opt['--max-memory'], '--ctx', opt['--ctx'],
    '--max-batch', String(Math.max(...clients)), '--max-queue', '0'];
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  process.on('exit', () => proc.kill('SIGKILL'));
  let port;
  while (!(port = (err.match(/listening on http:\/\/[^:]+:(\d+)/) || [])[1])) {
    if (proc.exitCode !== null) throw new Error(err);
    await sleep(50);
  }
  const base = `http://127.0.0.1:${port}`;
  while ((await fetch(`${base}/health`).catch(() => ({ status: 0 }))).status !== 200) await sleep(200);
  console.error(err.split('\n').filter((l) => /plan|chat/.test(l)).join('\n'));
  console.log('| clients | tokens | wall s | aggregate tokens/s | per-client s per token | passes | rows per pass | GiB read | I/O wait s |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  let base1 = 0;
  for (const n of clients) {
    const before = await metrics(base);
    const t0 = performance.now();
    // Distinct prompts of 4 token ids (the synthetic model has no tokenizer).
    const runs = await Promise.all(Array.from({ length: n }, (_, i) => stream(base, [128000, 1000 + i, 2000 + 7 * i, 3000 + i])));
    const wall = (performance.now() - t0) / 1e3;
    const after = await metrics(base);
    const total = runs.reduce((s, r) => s + r.times.length, 0);
    const perTok = runs.map((r) => (r.times[r.times.length - 1] - r.times[0]) / 1e3 / Math.max(1, r.times.length - 1));
    const agg = total / wall;
    if (n === clients[0]) base1 = agg;
    const passes = after.strata_passes_total - before.strata_passes_total;
    const rows = after.strata_pass_rows_total - before.strata_pass_rows_total;
    console.log(`| ${n} | ${total} | ${wall.toFixed(1)} | ${agg.toFixed(2)} (${(agg / base1).toFixed(1)}x) | ` +
      `${(perTok.reduce((a, b) => a + b, 0) / n).toFixed(2)} | ${passes} | ${(rows / passes).toFixed(1)} | ` +
      `${((after.strata_bytes_read_total - before.strata_bytes_read_total) / 2 ** 30).toFixed(1)} | ` +
      `${(after.strata_io_wait_seconds_total - before.strata_io_wait_seconds_total).toFixed(1)} |`);
  }
  proc.kill('SIGTERM');
}

main().catch((e) => { console.error(e); process.exit(1); });
