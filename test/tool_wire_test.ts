import assert from "node:assert/strict";
import {
  anthropicMessages,
  AnthropicToolAccumulator,
  ollamaMessages,
  ollamaToolCalls,
  openAIMessages,
  ToolCallAccumulator,
} from "../src/llm/tool_wire.ts";
import { parseToolArguments } from "../src/tools/args.ts";
import { readFileTool } from "../src/tools/file_tools.ts";
import type { Message } from "../src/types.ts";

Deno.test("streamed OpenAI tool-call fragments join into whole calls, by index", () => {
  const acc = new ToolCallAccumulator();
  acc.add([{
    index: 0,
    id: "c1",
    type: "function",
    function: { name: "read_file", arguments: "" },
  }]);
  acc.add([{ index: 0, function: { arguments: '{"pa' } }]);
  acc.add([{ index: 1, id: "c2", function: { name: "list_files", arguments: "{}" } }]);
  acc.add([{ index: 0, function: { arguments: 'th": "a.ts"}' } }]);
  assert.deepEqual(acc.calls(), [
    { id: "c1", name: "read_file", arguments: '{"path": "a.ts"}' },
    { id: "c2", name: "list_files", arguments: "{}" },
  ]);
});

Deno.test("tool-call fragments without an index, ids or string arguments are still joined", () => {
  const acc = new ToolCallAccumulator();
  acc.add([{ function: { name: "read_file", arguments: '{"path":' } }]);
  acc.add([{ function: { arguments: '"a"}' } }]);
  acc.add([{ function: { name: "search", arguments: { pattern: "x" } } }]);
  assert.deepEqual(acc.calls(), [
    { id: "call_0", name: "read_file", arguments: '{"path":"a"}' },
    { id: "call_1", name: "search", arguments: '{"pattern":"x"}' },
  ]);
  acc.add("not a list");
  assert.equal(acc.calls().length, 2);
});

const history: Message[] = [
  { role: "system", content: "sys" },
  { role: "user", content: "read a.ts" },
  {
    role: "assistant",
    content: "",
    toolCalls: [{ id: "c1", name: "read_file", arguments: '{"path":"a.ts"}' }],
  },
  { role: "tool", content: "[a.ts: lines 1-1 of 1]\nx\n", toolCallId: "c1", toolName: "read_file" },
];

Deno.test("the history goes out in each backend's own shape", () => {
  assert.deepEqual(openAIMessages(history).slice(2), [
    {
      role: "assistant",
      content: null,
      tool_calls: [{
        id: "c1",
        type: "function",
        function: { name: "read_file", arguments: '{"path":"a.ts"}' },
      }],
    },
    { role: "tool", tool_call_id: "c1", content: "[a.ts: lines 1-1 of 1]\nx\n" },
  ]);
  assert.deepEqual(ollamaMessages(history).slice(2), [
    {
      role: "assistant",
      content: "",
      tool_calls: [{ function: { name: "read_file", arguments: { path: "a.ts" } } }],
    },
    { role: "tool", content: "[a.ts: lines 1-1 of 1]\nx\n", tool_name: "read_file" },
  ]);
  const a = anthropicMessages([...history, { role: "user", content: "thanks" }]);
  assert.equal(a.system, "sys");
  assert.deepEqual(a.messages, [
    { role: "user", content: "read a.ts" },
    {
      role: "assistant",
      content: [{ type: "tool_use", id: "c1", name: "read_file", input: { path: "a.ts" } }],
    },
    {
      role: "user",
      content: [
        { type: "tool_result", tool_use_id: "c1", content: "[a.ts: lines 1-1 of 1]\nx\n" },
        { type: "text", text: "thanks" },
      ],
    },
  ]);
});

Deno.test("Ollama and Anthropic calls come back as Harvey's calls", () => {
  assert.deepEqual(
    ollamaToolCalls([{ function: { name: "search", arguments: { pattern: "TODO" } } }, {}], 2),
    [{ id: "call_2", name: "search", arguments: '{"pattern":"TODO"}' }],
  );
  const acc = new AnthropicToolAccumulator();
  acc.start(1, { id: "tu_1", name: "read_file", input: {} });
  acc.delta(1, '{"path"');
  acc.delta(1, ': "b.ts"}');
  acc.delta(7, "ignored");
  assert.deepEqual(acc.calls(), [{ id: "tu_1", name: "read_file", arguments: '{"path": "b.ts"}' }]);
});

Deno.test("tool arguments are checked once, with a line the model can act on", () => {
  const spec = readFileTool.spec;
  assert.deepEqual(parseToolArguments(spec, '{"path":"a.ts","limit":"20","extra":1}'), {
    ok: true,
    value: { path: "a.ts", limit: 20 },
  });
  const broken = parseToolArguments(spec, '{"path": "a.ts"');
  assert.equal(broken.ok, false);
  assert.match(!broken.ok ? broken.error : "", /not valid JSON .*expected \{"path": "…"/);
  const missing = parseToolArguments(spec, "");
  assert.match(!missing.ok ? missing.error : "", /read_file needs "path"/);
  const wrong = parseToolArguments(spec, '{"path": ["a"]}');
  assert.match(
    !wrong.ok ? wrong.error : "",
    /Argument "path" of read_file must be text, found a list/,
  );
  const notObject = parseToolArguments(spec, "[1]");
  assert.match(!notObject.ok ? notObject.error : "", /must be a JSON object/);
});
