// 16 clients stream at once from a model whose layers are streamed from
// disk (the budget keeps only some resident): every output equals its solo
// `strata run`, and the server ran far fewer forward passes than it
// generated tokens, because concurrent requests share each pass.
'use strict';
const OpenAI = require('openai');
const h = require('./harness');
const { assert } = h;

const PROMPTS = [
  'Once upon a time', 'The little dog', 'Lily and Tom went', 'One day, a big', 'There was a girl named',
  'The sun was', 'Tim had a red', 'In the park,', 'Mom said', 'The cat saw a', 'Sam wanted to', 'A bird flew',
  'It was a sunny day', 'The boy and his', 'Sue found a', 'At night, the',
];
const N = 40;

async function main() {
  const solo = PROMPTS.map((p) => h.strataRun([p, '-n', String(N)]));
  const srv = await h.startServer(['--max-memory', '4800KiB', '--ctx', '128', '--max-batch', '16']);
  const client = new OpenAI({ apiKey: 'none', baseURL: `${srv.base}/v1`, maxRetries: 0, timeout: 60000 });

  await h.run([
    ['the budget streams layers', async () => {
      const m = srv.stderr().match(/(\d+) of (\d+) units resident/);
      assert.ok(m, srv.stderr());
      assert.ok(Number(m[1]) < Number(m[2]), `all units resident: ${m[0]}; lower the budget`);
    }],
    ['16 concurrent streams equal their solo runs and share passes', async () => {
      const before = await h.metrics(srv.base);
      const t0 = Date.now();
      const texts = await Promise.all(PROMPTS.map(async (prompt) => {
        const stream = await client.completions.create({ prompt, max_tokens: N, temperature: 0, stream: true });
        let text = '';
        for await (const c of stream) text += c.choices.map((x) => x.text).join('');
        return text;
      }));
      const ms = Date.now() - t0;
      for (let i = 0; i < PROMPTS.length; i++) assert.equal(texts[i], solo[i].text, `prompt ${JSON.stringify(PROMPTS[i])}`);
      const after = await h.metrics(srv.base);
      const passes = after.strata_passes_total - before.strata_passes_total;
      const tokens = after.strata_generated_tokens_total - before.strata_generated_tokens_total;
      const expected = solo.reduce((n, r) => n + r.output_ids.length, 0);
      assert.equal(tokens, expected);
      const read = after.strata_bytes_read_total - before.strata_bytes_read_total;
      console.log(`  ${tokens} tokens in ${passes} passes (${(tokens / passes).toFixed(1)} tokens per pass), ${(read / 1048576).toFixed(1)} MiB read, ${ms} ms`);
      assert.ok(passes * 3 < tokens, `${passes} passes for ${tokens} tokens`);
      assert.ok(read > 0, "no layer was read: the budget must force streaming");
    }],
  ]);
}

main().catch((e) => { console.error(e); process.exit(1); });
