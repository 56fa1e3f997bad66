/**
 * How a model is given its tools: `native` (the backend's tool calling), `text` (the tools
 * stated in the system prompt, calls read back from the reply, constrained by a grammar on
 * llama.cpp backends), or `off`. Chosen per model with `/tools mode` (remembered in
 * `tools.modes` of harvey.yaml); `auto`, the default, asks the backend (`/props`
 * `chat_template_caps`, Ollama's capabilities) and what `/bench` measured before.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { latestBench, type ModelBenchResult } from "../model_bench/results.ts";
import type { LLMClient, ToolSupport } from "../types.ts";

/** What `/tools mode` takes. */
export const TOOL_MODES = ["native", "text", "off", "auto"] as const;

/** A model's setting: a mode, or `auto`. */
export type ToolModeSetting = typeof TOOL_MODES[number];

/** How the tools go to the model in a turn. */
export type ToolMode = Exclude<ToolModeSetting, "auto">;

/** The mode of a turn and why. */
export interface ModeChoice {
  mode: ToolMode;
  setting: ToolModeSetting;
  /** One line for `/tools`: why this mode. */
  why: string;
}

/** Backends that refused a request with tools this session, with the server's words. */
const refusals = new WeakMap<LLMClient, string>();

/** Remembers for this session that `client` refused the tool definitions (`why`). */
export function rememberToolRefusal(client: LLMClient, why: string): void {
  refusals.set(client, why);
}

/** Whether an error of a request with tools is the server refusing the tools themselves. */
export function refusesTools(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /answered (4\d\d|5\d\d)/.test(text) && /\btools?\b|jinja|function.?call/i.test(text);
}

/** The mode set for `model` in harvey.yaml (`tools.modes`), `auto` when none is. */
export function modeSetting(agent: Agent, model: string): ToolModeSetting {
  return agent.config.config.tools.modes[model] ?? "auto";
}

/** `native 9/10, text 10/10` */
export function describeScores(r: ModelBenchResult): string {
  const parts = [
    r.native ? `native ${r.native.passed}/${r.native.total}` : undefined,
    r.text ? `text ${r.text.passed}/${r.text.total}` : undefined,
  ].filter(Boolean);
  return parts.join(", ") || "no tool tasks";
}

/**
 * The mode for `client`: the setting (or `override`) when it names one; for `auto`, the mode
 * that passed more of `/bench`'s tool tasks for this model (native on a tie; off when neither
 * passed any), else native when the backend takes tools and text when it does not.
 */
export async function chooseMode(
  agent: Agent,
  client: LLMClient,
  opts: { support: ToolSupport; override?: ToolModeSetting },
): Promise<ModeChoice> {
  const setting = opts.override ?? modeSetting(agent, client.model);
  const { support } = opts;
  if (setting !== "auto") {
    const how = opts.override ? "asked for" : `set with /tools mode ${setting}`;
    const note = setting === "native" && !support.native ? `; the backend: ${support.reason}` : "";
    return { mode: setting, setting, why: `${how} for ${client.model}${note}` };
  }
  const refused = refusals.get(client);
  if (refused) {
    return {
      mode: "text",
      setting,
      why: `auto: the server refused the tool definitions this session (${refused})`,
    };
  }
  const bench = await latestBench(agent, client.model).catch(() => undefined);
  if (bench && !bench.error && (bench.native || bench.text)) {
    const rate = (s?: { passed: number; total: number }) => s && s.total ? s.passed / s.total : 0;
    const native = support.native ? rate(bench.native) : 0;
    const text = rate(bench.text);
    const scores = `/bench scored ${describeScores(bench)} on ${bench.at.slice(0, 10)}`;
    if (native === 0 && text === 0) {
      return {
        mode: "off",
        setting,
        why: `auto: ${scores}: no tool task passed, so the tools would only fill the window`,
      };
    }
    return { mode: native >= text ? "native" : "text", setting, why: `auto: ${scores}` };
  }
  return support.native
    ? { mode: "native", setting, why: `auto: ${support.reason}` }
    : { mode: "text", setting, why: `auto: ${support.reason}` };
}
