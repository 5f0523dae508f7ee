// `strata serve` through the official OpenAI client: chat and completions,
// streamed and not, stop strings, seeds, usage, logprobs and errors, with
// greedy outputs checked against `strata run` on the same prompt.
'use strict';
const OpenAI = require('openai');
const h = require('./harness');
const { assert } = h;

const KEY = 'test-key-123';
const MODEL = 'stories260K';

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

async function main() {
  const srv = await h.startServer(['--chat-template', h.chatTemplate, '--ctx', '256'], { STRATA_API_KEY: KEY });
  const client = new OpenAI({ apiKey: KEY, baseURL: `${srv.base}/v1`, maxRetries: 0, timeout: 20000 });
  const raw = (path, init = {}) =>
    fetch(`${srv.base}${path}`, { ...init, headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...(init.headers || {}) } });
  const prompt = 'Once upon a time';
  const ref = h.strataRun([prompt, '-n', '40']);
  const chatConversation = [{ role: 'user', content: 'Tell me a story about a cat.' }];
  // The test template renders "role: content\n" lines then "assistant: ".
  const chatRendered = 'user: Tell me a story about a cat.\nassistant: ';
  const hasRunChat = /--chat\b/.test(h.strataHelp('run'));

  await h.run([
    ['models lists the served model', async () => {
      const list = await client.models.list();
      assert.deepEqual(list.data.map((m) => m.id), [MODEL]);
      assert.equal(list.data[0].object, 'model');
      const one = await client.models.retrieve(MODEL);
      assert.equal(one.id, MODEL);
    }],
    ['completions: greedy text equals strata run, with usage', async () => {
      const r = await client.completions.create({ model: MODEL, prompt, max_tokens: 40, temperature: 0 });
      assert.equal(r.object, 'text_completion');
      assert.match(r.id, /^cmpl-/);
      assert.equal(r.model, MODEL);
      assert.equal(typeof r.created, 'number');
      assert.equal(r.choices.length, 1);
      assert.equal(r.choices[0].text, ref.text);
      assert.equal(r.choices[0].finish_reason, ref.finish_reason);
      assert.equal(r.usage.prompt_tokens, ref.prompt_ids.length);
      assert.equal(r.usage.completion_tokens, ref.output_ids.length);
      assert.equal(r.usage.total_tokens, ref.prompt_ids.length + ref.output_ids.length);
    }],
    ['completions: a token-id prompt equals strata run --prompt-ids', async () => {
      const ids = [1, 403, 407];
      const want = h.strataRun(['--prompt-ids', ids.join(','), '-n', '24']);
      const r = await client.completions.create({ model: MODEL, prompt: ids, max_tokens: 24, temperature: 0 });
      assert.equal(r.choices[0].text, want.text);
      assert.equal(r.usage.prompt_tokens, 3);
    }],
    ['completions: streamed pieces add up to the whole, usage last', async () => {
      const stream = await client.completions.create({
        model: MODEL, prompt, max_tokens: 40, temperature: 0, stream: true, stream_options: { include_usage: true },
      });
      const chunks = await collect(stream);
      const text = chunks.flatMap((c) => c.choices.map((x) => x.text)).join('');
      assert.equal(text, ref.text);
      const last = chunks[chunks.length - 1];
      assert.deepEqual(last.choices, []);
      assert.equal(last.usage.completion_tokens, ref.output_ids.length);
      const fin = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
      assert.equal(fin.length, 1);
      assert.equal(fin[0].choices[0].finish_reason, ref.finish_reason);
      assert.ok(chunks.length > 5, 'streamed in pieces');
    }],
    ['chat: greedy reply equals strata run on the rendered conversation', async () => {
      // The same conversation through the CLI: `run --chat` when it exists,
      // else the template's ids from `strata chat-template --ids` into `run`.
      const want = hasRunChat
        ? h.strataRun(['--chat', chatConversation[0].content, '--chat-template', h.chatTemplate, '-n', '48'])
        : h.strataRun(['--prompt-ids', h.chatTemplateIds(chatConversation).join(','), '-n', '48']);
      assert.equal(h.strataRun([chatRendered, '-n', '48']).text, want.text);  // the template renders these lines
      const r = await client.chat.completions.create({ model: MODEL, messages: chatConversation, max_tokens: 48, temperature: 0 });
      assert.equal(r.object, 'chat.completion');
      assert.match(r.id, /^chatcmpl-/);
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.equal(r.choices[0].message.content, want.text);
      assert.equal(r.choices[0].finish_reason, want.finish_reason);
      assert.equal(r.usage.prompt_tokens, want.prompt_ids.length);
      assert.equal(r.usage.completion_tokens, want.output_ids.length);
      // max_completion_tokens is the same limit.
      const r2 = await client.chat.completions.create({ model: MODEL, messages: chatConversation, max_completion_tokens: 48, temperature: 0 });
      assert.equal(r2.choices[0].message.content, want.text);
    }],
    ['chat: streamed deltas equal the whole reply', async () => {
      const whole = await client.chat.completions.create({ model: MODEL, messages: chatConversation, max_tokens: 32, temperature: 0 });
      const chunks = await collect(await client.chat.completions.create({
        model: MODEL, messages: chatConversation, max_tokens: 32, temperature: 0, stream: true, stream_options: { include_usage: true },
      }));
      assert.equal(chunks[0].object, 'chat.completion.chunk');
      assert.equal(chunks[0].choices[0].delta.role, 'assistant');
      const text = chunks.flatMap((c) => c.choices.map((x) => x.delta.content || '')).join('');
      assert.equal(text, whole.choices[0].message.content);
      assert.ok(chunks.every((c) => c.id === chunks[0].id));
      const last = chunks[chunks.length - 1];
      assert.deepEqual(last.choices, []);
      assert.deepEqual(last.usage, whole.usage);
      assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
      // Without include_usage: no usage chunk, no usage fields.
      const plain = await collect(await client.chat.completions.create({
        model: MODEL, messages: chatConversation, max_tokens: 8, temperature: 0, stream: true,
      }));
      assert.ok(plain.every((c) => c.choices.length === 1 && c.usage === undefined));
    }],
    ['stop strings end the text before them', async () => {
      const full = ref.text;
      const at = full.indexOf(' ', 30);
      assert.ok(at > 0, `no space after 30 chars in ${JSON.stringify(full)}`);
      const stop = full.slice(at, at + 4);
      const want = full.slice(0, full.indexOf(stop));
      const r = await client.completions.create({ model: MODEL, prompt, max_tokens: 40, temperature: 0, stop: [stop, 'zzzz'] });
      assert.equal(r.choices[0].text, want);
      assert.equal(r.choices[0].finish_reason, 'stop');
      const chunks = await collect(await client.completions.create({ model: MODEL, prompt, max_tokens: 40, temperature: 0, stop, stream: true }));
      assert.equal(chunks.flatMap((c) => c.choices.map((x) => x.text)).join(''), want);
      assert.equal(chunks.filter((c) => c.choices[0].finish_reason)[0].choices[0].finish_reason, 'stop');
    }],
    ['seeds: the same seed samples the same text, another seed another', async () => {
      const ask = (seed) => client.completions.create({ model: MODEL, prompt, max_tokens: 32, temperature: 1.0, top_p: 0.95, seed });
      const [a, b, c] = await Promise.all([ask(7), ask(7), ask(8)]);
      assert.equal(a.choices[0].text, b.choices[0].text);
      assert.notEqual(a.choices[0].text, c.choices[0].text);
    }],
    ['logprobs: chat and completions shapes, greedy token on top', async () => {
      const r = await client.chat.completions.create({
        model: MODEL, messages: chatConversation, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3,
      });
      const content = r.choices[0].logprobs.content;
      assert.equal(content.length, r.usage.completion_tokens);
      for (const t of content) {
        assert.equal(typeof t.token, 'string');
        assert.ok(t.logprob <= 0);
        assert.ok(Array.isArray(t.bytes));
        assert.equal(t.top_logprobs.length, 3);
        assert.equal(t.top_logprobs[0].token, t.token);  // greedy: the chosen token is the most likely
        assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-5);
        for (let i = 1; i < 3; i++) assert.ok(t.top_logprobs[i].logprob <= t.top_logprobs[i - 1].logprob);
      }
      const c = await client.completions.create({ model: MODEL, prompt, max_tokens: 6, temperature: 0, logprobs: 2 });
      const lp = c.choices[0].logprobs;
      assert.equal(lp.tokens.length, 6);
      assert.equal(lp.token_logprobs.length, 6);
      assert.equal(lp.text_offset[0], 0);
      assert.ok(lp.top_logprobs.every((m) => Object.keys(m).length >= 1 && Object.keys(m).length <= 2));
      // Streamed chat logprobs arrive with their tokens.
      const chunks = await collect(await client.chat.completions.create({
        model: MODEL, messages: chatConversation, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3, stream: true,
      }));
      const streamed = chunks.flatMap((x) => (x.choices[0].logprobs ? x.choices[0].logprobs.content : []));
      assert.deepEqual(streamed.map((t) => t.token), content.map((t) => t.token));
    }],
    ['errors: keys', async () => {
      const bad = new OpenAI({ apiKey: 'wrong', baseURL: `${srv.base}/v1`, maxRetries: 0 });
      await assert.rejects(bad.completions.create({ model: MODEL, prompt, max_tokens: 2 }), (e) => {
        assert.ok(e instanceof OpenAI.AuthenticationError);
        assert.equal(e.status, 401);
        assert.equal(e.code, 'invalid_api_key');
        return true;
      });
      const none = await fetch(`${srv.base}/v1/models`);
      assert.equal(none.status, 401);
      assert.equal((await none.json()).error.type, 'invalid_request_error');
      // Health and metrics stay open for probes.
      assert.equal((await fetch(`${srv.base}/health`)).status, 200);
    }],
    ['errors: bad fields are 400s naming the field', async () => {
      const cases = [
        [{ model: MODEL, prompt, temperature: 5 }, 'temperature'],
        [{ model: MODEL, prompt, max_tokens: -1 }, 'max_tokens'],
        [{ model: MODEL, prompt, n: 2 }, 'n'],
        [{ model: MODEL, prompt, top_p: 'x' }, 'top_p'],
        [{ model: MODEL, prompt, frobnicate: true }, 'frobnicate'],
        [{ model: MODEL, prompt, max_tokens: 100000 }, 'max_tokens'],
      ];
      for (const [body, param] of cases) {
        await assert.rejects(client.completions.create(body), (e) => {
          assert.ok(e instanceof OpenAI.BadRequestError, `${param}: ${e}`);
          assert.equal(e.status, 400);
          assert.equal(e.param, param);
          return true;
        });
      }
      await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'robot', content: 'x' }] }),
        (e) => e.status === 400 && e.param === 'messages[0].role');
      await assert.rejects(client.chat.completions.create({ model: MODEL, messages: chatConversation, max_tokens: 1000 }),
        (e) => e.status === 400 && e.code === 'context_length_exceeded');
      await assert.rejects(client.chat.completions.create({ model: 'gpt-4', messages: chatConversation }),
        (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
    }],
    ['errors: raw HTTP (bad JSON, oversize body, methods, routes)', async () => {
      let r = await raw('/v1/completions', { method: 'POST', body: '{"prompt": "x",' });
      assert.equal(r.status, 400);
      assert.equal((await r.json()).error.type, 'invalid_request_error');
      r = await raw('/v1/completions', { method: 'POST', body: JSON.stringify({ prompt: 'x'.repeat(5 << 20) }) });
      assert.equal(r.status, 413);
      assert.equal((await r.json()).error.code, 'request_too_large');
      r = await raw('/v1/chat/completions', { method: 'GET' });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get('allow'), 'POST');
      r = await raw('/v1/nothing', { method: 'POST', body: '{}' });
      assert.equal(r.status, 404);
      assert.ok((await r.json()).error.message.includes('/v1/nothing'));
      r = await raw('/v1/models/other');
      assert.equal(r.status, 404);
      assert.equal(r.headers.get('access-control-allow-origin'), null);  // no CORS unless --cors
    }],
    ['metrics: Prometheus counters', async () => {
      const m = await h.metrics(srv.base);
      assert.equal(m.strata_ready, 1);
      assert.ok(m.strata_passes_total > 0);
      assert.ok(m.strata_generated_tokens_total >= ref.output_ids.length);
      assert.ok(m.strata_prompt_tokens_total > 0);
      assert.equal(m.strata_requests_in_flight, 0);
      assert.ok(m['strata_http_requests_total{route="/v1/completions",status="200"}'] >= 3);
      assert.ok(m['strata_http_requests_total{route="/v1/completions",status="400"}'] >= 5);
      assert.ok('strata_kv_pages_total' in m && 'strata_io_wait_seconds_total' in m && 'strata_bytes_read_total' in m);
    }],
    ['log lines carry no prompt text', async () => {
      await client.completions.create({ model: MODEL, prompt: 'A secret prompt about zebras', max_tokens: 2 });
      await h.sleep(50);
      const log = srv.stderr();
      assert.ok(!log.includes('zebras'));
      assert.match(log, /POST \/v1\/completions 200 prompt_tokens=\d+ completion_tokens=\d+ [\d.]+ ms/);
    }],
    ['SIGTERM during a stream: exit 0 within seconds', async () => {
      const stream = await client.chat.completions.create({ model: MODEL, messages: chatConversation, max_tokens: 200, temperature: 1, stream: true });
      const reading = collect(stream).catch(() => 'cut');
      await h.sleep(20);
      const r = await srv.stop();
      assert.equal(r.code, 0, `exit ${r.code} signal ${r.signal}: ${srv.stderr().slice(-2000)}`);
      assert.ok(r.ms < 8000, `took ${r.ms} ms`);
      await reading;
    }],
  ]);
}

main().catch((e) => { console.error(e); process.exit(1); });
