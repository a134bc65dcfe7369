// The official openai npm client against `medgemma serve` on the tiny
// multimodal checkpoint, on loopback. scripts/test.sh builds the binary and
// runs `npm ci && node --test` here; MEDGEMMA_BIN names the binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import OpenAI from 'openai';

const root = resolve(import.meta.dirname, '..', '..');
const bin = process.env.MEDGEMMA_BIN ?? join(root, '.cache', 'bin', 'medgemma');
const tokenizer = join(root, '.cache', 'tokenizer', 'tokenizer.json');
const model = join(root, 'testdata', 'models', 'tiny-medgemma');
const png = readFileSync(join(root, 'imageproc', 'testdata', 'images', 'tiny_rgb_20x30.png'));
const imageURI = 'data:image/png;base64,' + png.toString('base64');

let server, client, baseURL;
let serverLog = '';

before(async () => {
  server = spawn(bin, ['serve', '-m', model, '--tokenizer', tokenizer, '--port', '0',
    '--served-model-name', 'medgemma-tiny', '--api-key', 'test-key'], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr.on('data', (d) => { serverLog += d; });
  baseURL = await new Promise((resolveURL, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('serve did not get ready in 60 s')), 60000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/ready on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolveURL(m[1] + '/v1'); }
    });
    server.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${serverLog}`)));
  });
  client = new OpenAI({ baseURL, apiKey: 'test-key', maxRetries: 0, timeout: 60000 });
});

after(async () => {
  const exited = new Promise((r) => server.on('exit', (code) => r(code)));
  server.kill('SIGTERM');
  assert.equal(await exited, 0, `serve exits 0 on SIGTERM; its log:\n${serverLog}`);
});

const messages = [
  { role: 'system', content: 'You are an expert radiologist.' },
  { role: 'user', content: 'Describe a normal chest X-ray.' },
];

test('greedy chat equals `medgemma run --temperature 0` (ids and logprobs)', async () => {
  const res = await client.chat.completions.create({
    model: 'medgemma-tiny', messages, temperature: 0, max_tokens: 6, logprobs: true, top_logprobs: 3,
    return_tokens_as_token_ids: true,
  });
  const dir = mkdtempSync(join(tmpdir(), 'medgemma-'));
  writeFileSync(join(dir, 'm.json'), JSON.stringify(messages));
  const run = JSON.parse(execFileSync(bin, ['run', '-m', model, '--tokenizer', tokenizer, '--temperature', '0',
    '--max-tokens', '6', '--json', '--top-logprobs', '3', '--quiet', '--messages', join(dir, 'm.json')]));
  const choice = res.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, run.text);
  assert.equal(choice.finish_reason, run.finish_reason);
  const ids = choice.logprobs.content.map((c) => Number(c.token.replace('token_id:', '')));
  assert.deepEqual(ids, run.tokens);
  choice.logprobs.content.forEach((c, i) => {
    assert.ok(Math.abs(c.logprob - run.logprobs[i].logprob) < 1e-5, `step ${i}: ${c.logprob} vs ${run.logprobs[i].logprob}`);
    assert.equal(c.top_logprobs.length, 3);
  });
  assert.equal(res.usage.prompt_tokens, run.prompt_tokens);
  assert.equal(res.usage.completion_tokens, run.tokens.length);
  assert.equal(res.model, 'medgemma-tiny');
  assert.match(res.id, /^chatcmpl-/);
});

test('streamed chat equals the whole answer', async () => {
  const whole = await client.chat.completions.create({ model: 'medgemma-tiny', messages, temperature: 0, max_tokens: 10 });
  const stream = await client.chat.completions.create({
    model: 'medgemma-tiny', messages, temperature: 0, max_tokens: 10, stream: true, stream_options: { include_usage: true },
  });
  let text = '', role = '', finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 3);
  assert.equal(role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});

test('an image as a data URI', async () => {
  const res = await client.chat.completions.create({
    model: 'medgemma-tiny', temperature: 0, max_tokens: 4,
    messages: [{ role: 'user', content: [
      { type: 'text', text: 'Describe this image' },
      { type: 'image_url', image_url: { url: imageURI } },
    ] }],
  });
  const text = await client.chat.completions.create({
    model: 'medgemma-tiny', temperature: 0, max_tokens: 4, messages: [{ role: 'user', content: 'Describe this image' }],
  });
  // The image's soft tokens are in the prompt (16 per image for the tiny model, plus its markers).
  assert.ok(res.usage.prompt_tokens >= text.usage.prompt_tokens + 16, `${res.usage.prompt_tokens} vs ${text.usage.prompt_tokens}`);
  assert.equal(res.choices[0].message.role, 'assistant');
});

test('stop strings end the answer before them', async () => {
  const whole = await client.chat.completions.create({ model: 'medgemma-tiny', messages, temperature: 0, max_tokens: 12 });
  const text = whole.choices[0].message.content;
  const stop = text.slice(3, 6);
  const res = await client.chat.completions.create({ model: 'medgemma-tiny', messages, temperature: 0, max_tokens: 12, stop: [stop] });
  assert.equal(res.choices[0].message.content, text.slice(0, text.indexOf(stop)));
  assert.equal(res.choices[0].finish_reason, 'stop');
});

test('seeded sampling is reproducible', async () => {
  const ask = (seed) => client.chat.completions.create({ model: 'medgemma-tiny', messages, temperature: 1, max_tokens: 12, seed });
  const [a, b, c] = [await ask(7), await ask(7), await ask(8)];
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
});

test('n choices, streamed, accumulate into the whole answer', async () => {
  const body = { model: 'medgemma-tiny', messages, temperature: 1, seed: 21, max_tokens: 10, n: 3 };
  const whole = await client.chat.completions.create(body);
  assert.deepEqual(whole.choices.map((c) => c.index), [0, 1, 2]);
  const final = await client.chat.completions.stream(body).finalChatCompletion();
  assert.deepEqual(final.choices.map((c) => c.message.content), whole.choices.map((c) => c.message.content));
  assert.deepEqual(final.choices.map((c) => c.finish_reason), whole.choices.map((c) => c.finish_reason));
});

test('concurrent requests, batched, answer as each alone', async () => {
  const ask = (i) => client.chat.completions.create({ model: 'medgemma-tiny', temperature: 0, max_tokens: 8 + i,
    messages: [{ role: 'user', content: `Question ${i}: what does a chest X-ray show?` }] });
  const alone = [];
  for (let i = 0; i < 6; i++) alone.push((await ask(i)).choices[0].message.content);
  const together = await Promise.all([0, 1, 2, 3, 4, 5].map(ask));
  assert.deepEqual(together.map((r) => r.choices[0].message.content), alone);
});

test('completions with echo score the prompt', async () => {
  const res = await client.completions.create({ model: 'medgemma-tiny', prompt: 'The lungs are clear', max_tokens: 1, temperature: 0, echo: true, logprobs: 1 });
  const lp = res.choices[0].logprobs;
  assert.equal(lp.tokens[0], '<bos>');
  assert.equal(lp.token_logprobs[0], null);
  assert.equal(lp.top_logprobs[0], null);
  assert.equal(lp.tokens.length, res.usage.prompt_tokens + 1);
  for (let i = 1; i < lp.tokens.length; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    assert.equal(lp.top_logprobs[i][lp.tokens[i]], lp.token_logprobs[i], `token ${i} is among its top logprobs`);
  }
  assert.ok(res.choices[0].text.startsWith('The lungs are clear'));
});

test('errors come in OpenAI\'s shape', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model: 'medgemma-tiny', messages, max_tokens: 0 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'max_tokens');
  const wrong = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['medgemma-tiny']);
});

// Structured output: a JSON Schema through response_format, as OpenAI's
// structured outputs take it; the tiny model's free answers are gibberish.
const triage = {
  type: 'object',
  properties: {
    finding: { enum: ['normal', 'pneumonia', 'effusion'] },
    severity: { type: 'integer', minimum: 0, maximum: 5 },
    urgent: { type: 'boolean' },
  },
  required: ['finding', 'severity', 'urgent'],
  additionalProperties: false,
};
const triageFormat = { type: 'json_schema', json_schema: { name: 'triage', strict: true, schema: triage } };

function checkTriage(text) {
  const v = JSON.parse(text);
  assert.deepEqual(Object.keys(v), ['finding', 'severity', 'urgent']);
  assert.ok(triage.properties.finding.enum.includes(v.finding), `finding ${v.finding}`);
  assert.ok(Number.isInteger(v.severity) && v.severity >= 0 && v.severity <= 5, `severity ${v.severity}`);
  assert.equal(typeof v.urgent, 'boolean');
}

test('response_format json_schema: the answer validates', async () => {
  for (const temperature of [0, 1]) {
    const res = await client.chat.completions.create({
      model: 'medgemma-tiny', messages, temperature, seed: 7, max_tokens: 120, response_format: triageFormat,
    });
    assert.equal(res.choices[0].finish_reason, 'stop');
    checkTriage(res.choices[0].message.content);
  }
});

test('response_format json_schema, streamed: the chunks make an answer that validates', async () => {
  const stream = await client.chat.completions.create({
    model: 'medgemma-tiny', messages, temperature: 1, seed: 8, max_tokens: 120, response_format: triageFormat, stream: true,
  });
  let text = '', finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (c?.delta?.content) text += c.delta.content;
    if (c?.finish_reason) finish = c.finish_reason;
  }
  assert.equal(finish, 'stop');
  checkTriage(text);
});

test('response_format with an unsupported keyword is a 400 naming it', async () => {
  const bad = { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'array', uniqueItems: true } } };
  await assert.rejects(
    client.chat.completions.create({ model: 'medgemma-tiny', messages, max_tokens: 4, response_format: bad }),
    (err) => err.status === 400 && err.param === 'response_format' && /uniqueItems/.test(err.message),
  );
});
