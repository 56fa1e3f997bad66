/**
 * Backend selection at start: probe every source in parallel with short timeouts, then
 * select the one model, show a picker for several, or explain how to get one.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { startOllama } from "../commands/ollama.ts";
import { checkActiveLlamafile, startSessionLlamafile } from "../commands/llamafile.ts";
import { hasSessionGguf, selectStartupGguf } from "../commands/llamacpp.ts";
import { LocalModelSource, localSources } from "../commands/model_registry.ts";
import { useCandidate } from "../commands/model.ts";
import { describeError, HarveyError } from "../errors.ts";
import { CANCELLED } from "./asker.ts";
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

/**
 * Selects the session's backend: `--llamafile`/`--gguf` for this session, a registered model
 * named by `-m`, the active llamafile or GGUF model, else whatever Ollama and the server at
 * the llamafile URL offer. `ask` false means no pickers and no "Start Ollama now?" (headless
 * and print modes); `confirm` false means no questions at all (print mode: an active model is
 * started without asking). `confirm` defaults to `ask`.
 */
export async function selectBackend(
  agent: Agent,
  out: Output,
  opts: { ask: boolean; confirm?: boolean },
): Promise<void> {
  if (agent.client) return;
  if (await selectLocal(agent, out, opts.confirm ?? opts.ask)) return;
  // Registered models that do not run are offered by /model, never picked at start-up.
  const sources = agent.sources.filter((s) => !(s instanceof LocalModelSource));
  let { candidates, down } = await discoverModels(sources, { timeoutMs: STARTUP_PROBE_MS });
  const ollamaDown = down.find((d) => d.source.startsWith("Ollama"));
  if (!candidates.length && ollamaDown) {
    out.write(`✗ Ollama is not running at ${agent.settings.ollamaUrl}\n`);
  }
  if (!candidates.length && ollamaDown && opts.ask && await which("ollama", agent.env.PATH ?? "")) {
    if (await agent.asker.confirm("Start Ollama now?")) {
      try {
        if (await startOllama(agent, out)) {
          ({ candidates, down } = await discoverModels(sources, { timeoutMs: 3000 }));
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

/**
 * The local models: the session's `--llamafile`/`--gguf`, a registered model named by `-m`,
 * then the active llamafile or GGUF model. True when one was selected (or the session's own
 * model failed: there is no quiet fallback from a model given on the command line).
 */
async function selectLocal(agent: Agent, out: Output, ask: boolean): Promise<boolean> {
  try {
    if (await startSessionLlamafile(agent, out, { ask })) return true;
  } catch (err) {
    out.write(`✗ ${describeError(err)}\n`);
    return true;
  }
  if (hasSessionGguf(agent)) {
    if (!await selectStartupGguf(agent, out)) out.write(NO_BACKEND_MESSAGE);
    return true;
  }
  const wanted = agent.settings.model;
  const local = localSources(agent.sources);
  // A model asked for with -m or HARVEY_MODEL comes before the active local models.
  if (wanted !== undefined && wanted !== agent.config.config.model) {
    for (const source of local) {
      const entry = source.registry.find(wanted);
      if (!entry) continue;
      try {
        await agent.setClient(await source.backend.connect(entry, out, { ask }));
        out.write(`✓ Using model: ${entry.name}\n`);
        return true;
      } catch (err) {
        out.write(`✗ ${describeError(err)}\n`);
        return false;
      }
    }
    return false;
  }
  if (agent.config.config.llamafile.active) return await checkActiveLlamafile(agent, out, { ask });
  if (agent.config.config.llamacpp.active) return await selectStartupGguf(agent, out);
  // `model:` in harvey.yaml (saved by /model use) may name a registered model.
  const registry = local.find((s) => wanted !== undefined && s.registry.find(wanted))?.registry;
  if (!registry || wanted === undefined) return false;
  return registry.kind.key === "llamafile"
    ? await checkActiveLlamafile(agent, out, { ask, name: wanted })
    : await selectStartupGguf(agent, out, { name: wanted });
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
  let picked;
  try {
    picked = await agent.asker.pick(
      "Several models are available:",
      candidates.map((c) => ({ label: c.label, value: c })),
    );
  } catch (err) {
    // Ctrl-C at the picker: start without a backend rather than not at all.
    if (err instanceof HarveyError && err.message === CANCELLED) return undefined;
    throw err;
  }
  return "value" in picked ? { candidate: picked.value, save: true } : undefined;
}
