/**
 * The grammar of a constrained text-mode reply, checked with a GBNF matcher (what llama.cpp's
 * constrained sampling guarantees of a finished reply): prose, or prose and then exactly one
 * well-formed call of a known tool with arguments of its schema — nothing else.
 */
import assert from "node:assert/strict";
import { toolCallGrammar } from "../src/tools/grammar.ts";
import { FILE_TOOLS } from "../src/tools/file_tools.ts";
import { gitTool, runCommandTool } from "../src/tools/exec_tools.ts";
import { kbSearchTool, ragSearchTool } from "../src/tools/knowledge_tools.ts";
import { searchTool } from "../src/tools/search_tool.ts";
import { briefTool } from "../src/tools/index.ts";
import { findTextCalls } from "../src/tools/text_calls.ts";
import { accepts, parseGbnf } from "./fixtures/gbnf.ts";

const tools = [...FILE_TOOLS, searchTool, runCommandTool, gitTool, kbSearchTool, ragSearchTool];
const grammar = parseGbnf(toolCallGrammar(tools.map((t) => t.spec)));
const known = new Set(tools.map((t) => t.spec.name));
const call = (json: string) => `<tool_call>${json}</tool_call>`;

Deno.test("the grammar parses and allows prose, and prose then one call, of every tool", () => {
  const ok = [
    "",
    "Just an answer.",
    "Generics: Array<string>, a <b> tag, <to be continued>, and a trailing <tool_cal",
    'Here is JSON: {"name": "x"} and ```code```.',
    call('{"name": "read_file", "arguments": {"path": "src/a.ts"}}'),
    call('{"name":"read_file","arguments":{"path":"a","offset":3,"limit":10}}'),
    call('{"name": "read_file", "arguments": {"path": "a", "limit": 10}}'),
    `I will look first.\n<tool_call>\n{"name": "list_files", "arguments": {}}\n</tool_call>`,
    call('{"name": "list_files", "arguments": {"path": "src"}}'),
    call('{"name": "write_file", "arguments": {"path": "a", "content": "x\\n\\t\\"q\\" \\u00e9"}}'),
    call('{"name": "edit_file", "arguments": {"path": "a", "old_text": "-", "new_text": "+"}}'),
    call('{"name": "search", "arguments": {"pattern": "fn \\\\w+", "path": "src"}}'),
    call('{"name": "run_command", "arguments": {"command": "deno test"}}'),
    call('{"name": "git", "arguments": {"args": "log -n 3"}}'),
    call('{"name": "kb_search", "arguments": {"query": "wal"}}'),
    call('{"name": "rag_search", "arguments": {"query": "wal"}}'),
    call('{"name": "read_file", "arguments": {"path": "ünïcödé 文件.txt"}}'),
  ];
  for (const text of ok) assert.ok(accepts(grammar, text), `should be allowed: ${text}`);
});

Deno.test("a constrained model cannot name an unknown tool, break the JSON or the schema", () => {
  const bad = [
    call('{"name": "delete_everything", "arguments": {}}'),
    call('{"name": "read_file", "arguments": {"path": "a"}'),
    call('{"name": "read_file", "arguments": {"path": a}}'),
    call('{"name": "read_file", "arguments": {}}'),
    call('{"name": "read_file", "arguments": {"path": 7}}'),
    call('{"name": "read_file", "arguments": {"path": "a", "offset": "3"}}'),
    call('{"name": "read_file", "arguments": {"path": "a", "offset": 1.5}}'),
    call('{"name": "read_file", "arguments": {"path": "a", "mode": "x"}}'),
    call('{"name": "list_files", "arguments": {, "path": "a"}}'),
    call('{"name": "edit_file", "arguments": {"path": "a", "old_text": "x"}}'),
    call('{"name": "write_file", "arguments": {"path": "line\nbreak", "content": ""}}'),
    `${call('{"name": "list_files", "arguments": {}}')} and more text`,
    `${call('{"name": "list_files", "arguments": {}}')}${
      call('{"name": "list_files", "arguments": {}}')
    }`,
    'an answer that says <tool_call>{"name": "list_files", "arguments": {}}</tool_call> midway.',
    "<tool_call>",
    '<tool_call>{"name": "list_files", "arguments": {}}',
  ];
  for (const text of bad) assert.ok(!accepts(grammar, text), `should be refused: ${text}`);
});

Deno.test("whatever the grammar allows as a call, the loop reads back as exactly that call", () => {
  const texts = [
    call('{"name":"read_file","arguments":{"path":"a","offset":3}}'),
    `Looking.\n<tool_call>\n{"name": "edit_file", "arguments": {"path": "a", "old_text": "x", "new_text": "y"}}\n</tool_call>`,
  ];
  for (const text of texts) {
    assert.ok(accepts(grammar, text));
    const found = findTextCalls(text, known);
    assert.equal(found?.calls.length, 1, text);
  }
});

Deno.test("the brief tools of small-context mode have the same grammar of arguments", () => {
  const brief = FILE_TOOLS.map(briefTool);
  assert.equal(toolCallGrammar(brief.map((t) => t.spec)).includes("description"), false);
  const g = parseGbnf(toolCallGrammar(brief.map((t) => t.spec)));
  assert.ok(accepts(g, call('{"name": "read_file", "arguments": {"path": "a", "limit": 2}}')));
  assert.ok(!accepts(g, call('{"name": "search", "arguments": {"pattern": "x"}}')), "not offered");
});
