// A bounded load test: 32 concurrent clients send a few hundred requests,
// valid and malformed, some dropping their stream mid-way, some sending
// slowly, some stalling. The server must answer every well-formed request
// (200, or 429 with Retry-After when full), refuse the rest with OpenAI
// errors, stay healthy, and come back near its idle memory.
'use strict';
const net = require('node:net');
const h = require('./harness');
const { assert } = h;

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom went', 'One day, a big'];
const TOTAL = 400;
const CLIENTS = 32;

function rng(seed) {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 4294967296; };
}

// Raw HTTP over a socket: `parts` are written with `delayMs` between them;
// resolves with what the server sent once it closes (or after `timeoutMs`).
function rawHttp(port, parts, { delayMs = 0, timeoutMs = 15000, end = true } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    const t0 = Date.now();
    const timer = setTimeout(() => { sock.destroy(); resolve({ data, closed: false, ms: Date.now() - t0 }); }, timeoutMs);
    sock.on('data', (d) => { data += d.toString(); });
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve({ data, closed: true, ms: Date.now() - t0 }); });
    sock.on('connect', async () => {
      for (const p of parts) {
        if (sock.destroyed) return;
        sock.write(p);
        if (delayMs) await h.sleep(delayMs);
      }
      if (end) sock.end();
    });
  });
}

function httpRequest(body, path = '/v1/completions') {
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

async function main() {
  const srv = await h.startServer(['--ctx', '128', '--max-batch', '8', '--max-queue', '16', '--timeout', '2']);
  const url = `${srv.base}/v1/completions`;
  const post = (body, init = {}) => fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body, ...init });
  const valid = (p, stream, n = 24) => JSON.stringify({ prompt: p, max_tokens: n, temperature: 0, stream });
  const refs = {};
  for (const p of PROMPTS) refs[p] = (await (await post(valid(p, false))).json()).choices[0].text;
  for (let i = 0; i < 20; i++) await (await post(valid(PROMPTS[i % 4], i % 2 === 0))).text();
  await h.sleep(300);
  const idleKiB = h.rssKiB(srv.proc.pid);
  const counts = {};
  const bump = (k) => { counts[k] = (counts[k] || 0) + 1; };

  async function oneRequest(rand) {
    const kind = Math.floor(rand() * 100);
    const p = PROMPTS[Math.floor(rand() * PROMPTS.length)];
    if (kind < 30) {  // a whole stream, checked against the solo reference
      const r = await post(valid(p, true));
      if (r.status === 429) { assert.equal(r.headers.get('retry-after'), '1'); await r.text(); return bump('429'); }
      assert.equal(r.status, 200);
      const text = (await r.text()).split('\n\n').filter((l) => l.startsWith('data: {'))
        .map((l) => JSON.parse(l.slice(6))).map((c) => (c.choices[0] ? c.choices[0].text : '')).join('');
      assert.equal(text, refs[p]);
      return bump('stream');
    }
    if (kind < 45) {  // a stream dropped mid-way
      const ac = new AbortController();
      const r = await post(valid(p, true, 100), { signal: ac.signal });
      if (r.status === 429) { await r.text(); return bump('429'); }
      const reader = r.body.getReader();
      const stopAfter = 1 + Math.floor(rand() * 5);
      for (let i = 0; i < stopAfter; i++) if ((await reader.read()).done) break;
      ac.abort();
      await reader.cancel().catch(() => {});
      return bump('dropped');
    }
    if (kind < 60) {  // whole response
      const r = await post(valid(p, false));
      if (r.status === 429) { await r.text(); return bump('429'); }
      assert.equal(r.status, 200);
      assert.equal((await r.json()).choices[0].text, refs[p]);
      return bump('whole');
    }
    if (kind < 72) {  // malformed JSON or fields
      const bodies = ['{', '[]', '{"prompt": 5}', '{"prompt": "x", "temperature": "hot"}', '{"prompt": [1, -1]}',
        '\u0000\u0001', '{"prompt": "x", "max_tokens": 1e99}', `{"prompt": ${'['.repeat(5000)}}`, '{"messages": []}'];
      const r = await post(bodies[Math.floor(rand() * bodies.length)]);
      assert.equal(r.status, 400);
      const j = await r.json();
      assert.equal(typeof j.error.message, 'string');
      return bump('400');
    }
    if (kind < 76) {  // oversize
      const r = await post(JSON.stringify({ prompt: 'y'.repeat(5 << 20) })).catch(() => null);
      if (r) { assert.equal(r.status, 413); await r.text(); }
      return bump('413');
    }
    if (kind < 82) {  // not HTTP at all, or a broken request line
      const junk = [Buffer.from([0, 255, 13, 10, 13, 10]), 'GET\r\n\r\n', 'POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n',
        `GET /${'a'.repeat(20000)} HTTP/1.1\r\n\r\n`, `GET /health HTTP/1.1\r\nX: ${'b'.repeat(20000)}\r\n\r\n`];
      const r = await rawHttp(srv.port, [junk[Math.floor(rand() * junk.length)]]);
      assert.ok(r.closed);
      assert.ok(!/^HTTP\/1\.1 (5\d\d|200)/.test(r.data), r.data.slice(0, 200));
      return bump('junk');
    }
    if (kind < 88) {  // a slow sender: the request trickles in
      const req = httpRequest(valid(p, false, 8));
      const parts = [];
      for (let i = 0; i < req.length; i += 16) parts.push(req.slice(i, i + 16));
      // No half-close: httplib treats a peer that shut down its side as gone.
      const r = await rawHttp(srv.port, parts, { delayMs: 5, end: false });
      if (/^HTTP\/1\.1 429/.test(r.data)) return bump('429');
      assert.match(r.data, /^HTTP\/1\.1 200/, `closed ${r.closed} after ${r.ms} ms`);
      return bump('slow');
    }
    if (kind < 91) {  // stalls after half the headers: dropped after --timeout
      const r = await rawHttp(srv.port, ['POST /v1/completions HTTP/1.1\r\nHost: x\r\n'], { end: false, timeoutMs: 8000 });
      assert.ok(r.closed, 'a stalled client was not dropped');
      return bump('stalled');
    }
    const r = await fetch(`${srv.base}${rand() < 0.5 ? '/health' : '/metrics'}`);
    assert.equal(r.status, 200);
    await r.text();
    return bump('probe');
  }

  await h.run([
    [`${TOTAL} requests from ${CLIENTS} clients`, async () => {
      let next = 0;
      const failures = [];
      await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
        const rand = rng(1000 + c);
        while (next < TOTAL) {
          next++;
          try { await oneRequest(rand); } catch (e) { failures.push(String(e && e.stack ? e.stack : e)); }
        }
      }));
      console.log('  ', JSON.stringify(counts));
      assert.deepEqual(failures.slice(0, 3), []);
      assert.ok(counts.stream > 0 && counts.dropped > 0 && counts['400'] > 0 && counts.slow > 0);
    }],
    ['the server is healthy afterwards, its memory back near idle', async () => {
      assert.equal(srv.proc.exitCode, null, 'the server died');
      let m;
      for (let i = 0; i < 100; i++) {
        m = await h.metrics(srv.base);
        if (m.strata_requests_in_flight === 0 && m.strata_sequences_running === 0 && m.strata_sequences_queued === 0) break;
        await h.sleep(50);
      }
      assert.equal(m.strata_requests_in_flight, 0);
      assert.equal((await fetch(`${srv.base}/health`)).status, 200);
      const r = await post(valid(PROMPTS[0], false));
      assert.equal((await r.json()).choices[0].text, refs[PROMPTS[0]]);
      await h.sleep(300);
      const rss = h.rssKiB(srv.proc.pid);
      console.log(`   RSS idle ${idleKiB} KiB, after ${rss} KiB`);
      if (!h.sanitized) assert.ok(rss < idleKiB * 1.5 + 16384, `RSS ${rss} KiB vs idle ${idleKiB} KiB`);
      const count5xx = Object.entries(m).filter(([k, v]) => /status="5\d\d"/.test(k) && v > 0);
      assert.deepEqual(count5xx, []);
    }],
    ['SIGTERM: exit 0', async () => {
      if (process.env.SHOW_LOG) console.log(srv.stderr().split('\n').filter((l) => !/ 200 | 400 | 413 /.test(l)).join('\n'));
      const r = await srv.stop();
      assert.equal(r.code, 0);
    }],
  ]);
}

main().catch((e) => { console.error(e); process.exit(1); });
