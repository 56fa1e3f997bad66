/**
 * The event reader of a streamed reply, against the byte splits a real server and TCP make.
 */
import assert from "node:assert/strict";
import { readEvents } from "../src/llm/sse.ts";

/** A body that sends `text` as bytes cut at `cuts`; `cancelled` tells whether it was cancelled. */
function body(text: string, cuts: number[]) {
  const bytes = new TextEncoder().encode(text);
  const bounds = [0, ...cuts, bytes.length];
  let i = 0;
  const state = { cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i + 1 < bounds.length) c.enqueue(bytes.slice(bounds[i], bounds[++i]));
      else c.close();
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

async function events(text: string, cuts: number[] = []) {
  const got: [string, string | undefined][] = [];
  const b = body(text, cuts);
  await readEvents(b.stream, (data, event) => void got.push([data, event]));
  return { got, cancelled: b.state.cancelled };
}

Deno.test("events are read whole wherever the bytes are cut, also inside a character", async () => {
  const text =
    'data: {"a":"日本"}\n\n: a comment\n\nevent: error\ndata: {"b":1}\n\r\ndata: x\r\ndata: y\r\n\r\n';
  const whole = await events(text);
  assert.deepEqual(whole.got, [['{"a":"日本"}', undefined], ['{"b":1}', "error"], [
    "x\ny",
    undefined,
  ]]);
  const length = new TextEncoder().encode(text).length;
  for (let cut = 1; cut < length; cut++) {
    assert.deepEqual((await events(text, [cut])).got, whole.got, `cut at byte ${cut}`);
  }
  assert.deepEqual(
    (await events(text, Array.from({ length: length - 1 }, (_, i) => i + 1))).got,
    whole.got,
  );
});

Deno.test("[DONE] ends the reading and cancels the body; a last event without its blank line counts", async () => {
  // Lines after [DONE] in chunks of their own: the body is still open when it comes.
  const done = await events("data: 1\n\ndata: [DONE]\n\ndata: 2\n\ndata: 3\n\n", [3, 12, 25, 30]);
  assert.deepEqual(done.got, [["1", undefined]]);
  assert.equal(done.cancelled, true);
  assert.deepEqual((await events("data: 1\n\ndata: 2")).got, [["1", undefined], ["2", undefined]]);
  assert.deepEqual((await events("data:no-space\n\nid: 3\nretry: 5\n\n")).got, [[
    "no-space",
    undefined,
  ]]);
});

Deno.test("what the handler throws stops the reading and cancels the body", async () => {
  const b = body("data: 1\n\ndata: 2\n\n", [9]);
  let seen = 0;
  await assert.rejects(
    readEvents(b.stream, () => {
      seen++;
      throw new SyntaxError("bad");
    }),
    SyntaxError,
  );
  assert.equal(seen, 1);
  assert.equal(b.state.cancelled, true);
});
