// Speculative decoding behind the server (strata serve --lookup 3): a
// copy-heavy prompt gives the same greedy text as `strata run` without
// drafts, in fewer passes; usage reports accepted and rejected drafts in
// OpenAI's predicted-output fields; requests can turn drafting off or ask
// for prompt lookup themselves, within what the server planned.
'use strict';
const OpenAI = require('openai');
const h = require('./harness');
const { assert } = h;

async function main() {
  // A story, then BOS and its first words: the model retells it.
  const start = [1, 403, 407, 261, 378];
  const story = h.strataRun(['--prompt-ids', start.join(','), '-n', '120']);
  const prompt = [...start, ...story.output_ids, ...start];
  const N = 60;
  const solo = h.strataRun(['--prompt-ids', prompt.join(','), '-n', String(N)]);
  const srv = await h.startServer(['--lookup', '3', '--draft-tokens', '4', '--ctx', '512']);
  const client = new OpenAI({ apiKey: 'none', baseURL: `${srv.base}/v1`, maxRetries: 0, timeout: 60000 });
  const complete = (extra = {}) => client.completions.create({ prompt, max_tokens: N, temperature: 0, ...extra });

  await h.run([
    ['prompt lookup keeps the greedy text and accepts drafts', async () => {
      const before = await h.metrics(srv.base);
      const r = await complete();
      const after = await h.metrics(srv.base);
      assert.equal(r.choices[0].text, solo.text);
      const d = r.usage.completion_tokens_details;
      assert.ok(d && d.accepted_prediction_tokens > 0, JSON.stringify(r.usage));
      assert.ok(d.rejected_prediction_tokens >= 0);
      const passes = after.strata_passes_total - before.strata_passes_total;
      assert.ok(passes < N, `${passes} passes for ${N} tokens`);
      assert.ok(after.strata_accepted_tokens_total - before.strata_accepted_tokens_total === d.accepted_prediction_tokens);
    }],
    ['streamed, with usage', async () => {
      const stream = await complete({ stream: true, stream_options: { include_usage: true } });
      let text = '', usage = null;
      for await (const c of stream) {
        text += c.choices.map((x) => x.text).join('');
        if (c.usage) usage = c.usage;
      }
      assert.equal(text, solo.text);
      assert.ok(usage.completion_tokens_details.accepted_prediction_tokens > 0);
    }],
    ['a request turns drafting off or chooses its n-gram', async () => {
      const off = await complete({ draft_tokens: 0 });
      assert.equal(off.choices[0].text, solo.text);
      assert.equal(off.usage.completion_tokens_details, undefined);
      const two = await complete({ prompt_lookup: 2, draft_tokens: 2 });
      assert.equal(two.choices[0].text, solo.text);
    }],
    ['more drafted tokens than the server planned is a 400 naming the field', async () => {
      try {
        await complete({ draft_tokens: 9 });
        assert.fail('accepted');
      } catch (e) {
        assert.equal(e.status, 400);
        assert.equal(e.param, 'draft_tokens');
      }
    }],
  ]);
}

main().catch((e) => { console.error(e); process.exit(1); });
