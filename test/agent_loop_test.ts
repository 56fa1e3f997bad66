import assert from "node:assert/strict";
import { capResult, type RoundOutcome, runToolLoop } from "../src/agent/loop.ts";
import { argsSchema } from "../src/tools/args.ts";
import type { Tool } from "../src/tools/tool.ts";
import type { Message, ToolCall } from "../src/types.ts";
import { testSession } from "./helpers.ts";

const echo: Tool = {
  spec: {
    name: "echo",
    description: "Echo text",
    parameters: argsSchema({ text: { type: "string", description: "what" } }, ["text"]),
  },
  kind: "read",
  subject: (a) => String(a.text),
  run: (_agent, a) => Promise.resolve({ content: `echo: ${a.text}`, summary: "echoed" }),
};

const call = (id: string, name: string, args: string): ToolCall => ({ id, name, arguments: args });

/** A round function that answers from a script and records what it was sent. */
function scripted(...replies: RoundOutcome[]) {
  const sent: Message[][] = [];
  return {
    sent,
    round(messages: Message[]) {
      sent.push(messages);
      const next = replies.shift();
      if (!next) throw new Error("no more scripted rounds");
      return Promise.resolve(next);
    },
  };
}

const ctx = {
  approve: () => Promise.resolve("yes" as const),
  write: () => Promise.resolve(),
};

Deno.test("the loop runs calls in order and sends every result back until a reply without calls", async () => {
  const s = await testSession();
  try {
    const rounds = scripted(
      {
        text: "Let me look.",
        result: {
          promptTokens: 1,
          replyTokens: 1,
          elapsedMs: 1,
          tokensPerSec: 1,
          toolCalls: [
            call("a", "echo", '{"text":"one"}'),
            call("b", "nope", "{}"),
            call("c", "echo", '{"text": '),
          ],
        },
      },
      { text: "Done.", result: { promptTokens: 1, replyTokens: 1, elapsedMs: 1, tokensPerSec: 1 } },
    );
    const ended: string[] = [];
    const r = await runToolLoop(s.agent, [{ role: "user", content: "go" }], {
      tools: [echo],
      hooks: { round: rounds.round, callEnded: (c, o) => ended.push(`${c.id}:${o.summary}`) },
      context: ctx,
      resultRoom: () => 4000,
      maxCalls: 25,
    });
    assert.equal(r.stopped, undefined);
    assert.equal(r.calls, 3);
    assert.deepEqual(ended, ["a:echoed", "b:unknown tool", "c:invalid arguments"]);
    assert.deepEqual(r.messages.map((m) => [m.role, m.toolCallId ?? ""]), [
      ["assistant", ""],
      ["tool", "a"],
      ["tool", "b"],
      ["tool", "c"],
      ["assistant", ""],
    ]);
    assert.equal(r.messages[1].content, "echo: one");
    assert.match(r.messages[2].content, /There is no tool named "nope"; the tools are: echo/);
    assert.match(r.messages[3].content, /not valid JSON/);
    // The second request carried the whole exchange.
    assert.equal(rounds.sent[1].length, 5);
    assert.match(s.agent.audit!.recent().map((e) => e.details).join("\n"), /echo one: echoed/);
  } finally {
    await s.close();
  }
});

Deno.test("the per-turn limit, a quit and an interrupted reply each end the loop with every call answered", async () => {
  const s = await testSession();
  try {
    const stats = { promptTokens: 1, replyTokens: 1, elapsedMs: 1, tokensPerSec: 1 };
    const three = [
      call("1", "echo", '{"text":"a"}'),
      call("2", "echo", '{"text":"b"}'),
      call("3", "echo", '{"text":"c"}'),
    ];
    const limited = await runToolLoop(s.agent, [], {
      tools: [echo],
      hooks: scripted({ text: "", result: { ...stats, toolCalls: three } }),
      context: ctx,
      resultRoom: () => 4000,
      maxCalls: 2,
    });
    assert.equal(limited.stopped, "limit");
    // The third call is over the limit: dropped from the reply, so it needs no result.
    assert.equal(limited.messages[0].toolCalls?.length, 2);
    assert.deepEqual(limited.messages.slice(1).map((m) => m.content), ["echo: a", "echo: b"]);

    const quitter: Tool = {
      ...echo,
      run: () =>
        Promise.resolve({ content: "declined by the user", summary: "declined", declined: "quit" }),
    };
    const quit = await runToolLoop(s.agent, [], {
      tools: [quitter],
      hooks: scripted({ text: "", result: { ...stats, toolCalls: three } }),
      context: ctx,
      resultRoom: () => 4000,
      maxCalls: 25,
    });
    assert.equal(quit.stopped, "quit");
    assert.deepEqual(quit.messages.slice(1).map((m) => m.content), [
      "declined by the user",
      "[not run: the user ended the turn]",
      "[not run: the user ended the turn]",
    ]);

    const cut = await runToolLoop(s.agent, [], {
      tools: [echo],
      hooks: scripted({ text: "Half a rep", interrupted: true }),
      context: ctx,
      resultRoom: () => 4000,
      maxCalls: 25,
    });
    assert.equal(cut.stopped, "interrupted");
    assert.deepEqual(cut.messages, [{ role: "assistant", content: "Half a rep" }]);
  } finally {
    await s.close();
  }
});

Deno.test("a result longer than the room is cut at a line end with a note", () => {
  const text = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n");
  const cut = capResult(text, 200);
  assert.ok(cut.length <= 200, `${cut.length}`);
  assert.match(cut, /^line 0\n/);
  assert.match(cut, /\n\[cut: \d+ more characters not shown; ask for less\]$/);
  assert.equal(capResult("short", 200), "short");
});
