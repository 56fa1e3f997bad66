import assert from "node:assert/strict";
import { findTextCalls, textResult } from "../src/tools/text_calls.ts";

const known = new Set(["read_file", "search"]);
const readA = { id: "call_0", name: "read_file", arguments: '{"path":"a.ts"}' };

Deno.test("tool calls printed as text are recovered in every common form", () => {
  assert.deepEqual(
    findTextCalls(
      '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.ts"}}\n</tool_call>',
      known,
    ),
    { form: "hermes", calls: [readA], prose: "" },
  );
  assert.deepEqual(
    findTextCalls(
      'I\'ll look.\n```json\n{"name": "read_file", "parameters": {"path": "a.ts"}}\n```',
      known,
    ),
    { form: "json-block", calls: [readA], prose: "I'll look." },
  );
  assert.deepEqual(
    findTextCalls('[TOOL_CALLS] [{"name": "read_file", "arguments": {"path": "a.ts"}}]', known),
    { form: "mistral", calls: [readA], prose: "" },
  );
  assert.deepEqual(
    findTextCalls('[TOOL_CALLS]read_file[ARGS]{"path":"a.ts"}', known),
    { form: "mistral", calls: [readA], prose: "" },
  );
  assert.deepEqual(
    findTextCalls(
      '<|python_tag|>{"name": "read_file", "parameters": {"path": "a.ts"}}<|eom_id|>',
      known,
    ),
    { form: "llama3", calls: [readA], prose: "" },
  );
  assert.deepEqual(findTextCalls('{"name": "read_file", "arguments": {"path": "a.ts"}}', known), {
    form: "json",
    calls: [readA],
    prose: "",
  });
  const two = findTextCalls(
    '<tool_call>{"name":"read_file","arguments":{"path":"a.ts"}}</tool_call>\n' +
      '<tool_call>{"name":"search","arguments":{"pattern":"x"}}</tool_call>',
    known,
  );
  assert.deepEqual(two?.calls.map((c) => c.name), ["read_file", "search"]);
  assert.deepEqual(two?.calls.map((c) => c.id), ["call_0", "call_1"]);
});

Deno.test("a code block the user asked for, a broken call or an unknown tool is not a call", () => {
  const answer =
    'Here is the config:\n```json\n{"name": "read_file", "arguments": {}}\n```\nSave it as tools.json.';
  assert.equal(findTextCalls(answer, known), undefined, "a block in the middle of an answer");
  assert.equal(
    findTextCalls('```json\n{"name": "delete_all", "arguments": {}}\n```', known),
    undefined,
  );
  assert.equal(
    findTextCalls('<tool_call>{"name": "read_file", "arguments": {"path": </tool_call>', known),
    undefined,
  );
  assert.equal(
    findTextCalls(
      '<tool_call>{"name":"read_file","arguments":{}}</tool_call> and more text',
      known,
    ),
    undefined,
  );
  assert.equal(findTextCalls("Just an answer.", known), undefined);
  assert.equal(findTextCalls('{"a": 1}', known), undefined);
});

Deno.test("results go back in the form the model used", () => {
  assert.equal(
    textResult("hermes", "read_file", "x\n"),
    '<tool_response>\n{"name":"read_file","content":"x\\n"}\n</tool_response>',
  );
  assert.equal(
    textResult("mistral", "read_file", "x"),
    '[TOOL_RESULTS]{"name":"read_file","content":"x"}[/TOOL_RESULTS]',
  );
  assert.match(
    textResult("json-block", "read_file", "has ``` fence"),
    /^Result of read_file:\n```\nhas ʼʼʼ fence\n```$/,
  );
});
