/**
 * Backend selection at start: probe every source in parallel with short timeouts, then
 * select the one model, show a picker for several, or explain how to get one.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { startOllama } from "../commands/ollama.ts";
import { useCandidate } from "../commands/model.ts";
import { describeError } from "../errors.ts";
import { discoverModels, findCandidate, type ModelCandidate } from "../llm/catalog.ts";
import type { Output } from "../types.ts";
import { which } from "../util/which.ts";

/** How long start-up waits for any one backend: a dead one must not delay the prompt. */
export const STARTUP_PROBE_MS = 800;

/** The guidance printed when no backend could be selected. */
export const NO_BACKEND_MESSAGE = `No backend selected.
  → If Ollama is installed, use /ollama start once inside.
  → Or pick a llamafile from:
    https://docs.mozilla.ai/llamafile/getting-started/pre-built-llamafiles
    Download it to ~/Models, then run /llamafile add to connect.
`;

/** Selects the session's backend. `ask` false means never ask (print mode). */
export async function selectBackend(
  agent: Agent,
  out: Output,
  opts: { ask: boolean },
): Promise<void> {
  if (agent.client) return;
  let { candidates, down } = await discoverModels(agent.sources, { timeoutMs: STARTUP_PROBE_MS });
  const ollamaDown = down.find((d) => d.source.startsWith("Ollama"));
  if (!candidates.length && ollamaDown) {
    out.write(`✗ Ollama is not running at ${agent.settings.ollamaUrl}\n`);
  }
  if (!candidates.length && ollamaDown && opts.ask && await which("ollama", agent.env.PATH ?? "")) {
    if (await agent.asker.confirm("Start Ollama now?")) {
      try {
        if (await startOllama(agent, out)) {
          ({ candidates, down } = await discoverModels(agent.sources, { timeoutMs: 3000 }));
        }
      } catch (err) {
        out.write(`✗ ${describeError(err)}\n`);
      }
    }
  }
  if (!candidates.length) {
    out.write(NO_BACKEND_MESSAGE);
    return;
  }
  const chosen = await choose(agent, candidates, out, opts.ask);
  if (!chosen) {
    out.write(NO_BACKEND_MESSAGE);
    return;
  }
  try {
    await useCandidate(agent, chosen.candidate, out, { save: chosen.save });
  } catch (err) {
    out.write(`✗ ${describeError(err)}\n${NO_BACKEND_MESSAGE}`);
  }
}

async function choose(
  agent: Agent,
  candidates: ModelCandidate[],
  out: Output,
  ask: boolean,
): Promise<{ candidate: ModelCandidate; save: boolean } | undefined> {
  const wanted = agent.settings.model;
  if (wanted) {
    const found = findCandidate(candidates, wanted);
    if (found) return { candidate: found, save: false };
    out.write(`✗ Model "${wanted}" is not available\n`);
  }
  if (candidates.length === 1) return { candidate: candidates[0], save: false };
  if (!ask) return { candidate: candidates[0], save: false };
  const picked = await agent.asker.pick(
    "Several models are available:",
    candidates.map((c) => ({ label: c.label, value: c })),
  );
  return "value" in picked ? { candidate: picked.value, save: true } : undefined;
}
