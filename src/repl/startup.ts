/**
 * Backend selection at start, and the start-up contract the README's headless section states:
 *
 * - Start-up never reads a script or stdin line: questions are asked only of a person at a
 *   terminal. A script and `-p` take the default a person would (start the saved active
 *   model; a free port when the port's holder is not the expected model) and say so on stderr.
 * - `--llamafile`, `--gguf`, `--llamafile-url` and `-m` win over what is saved. A model given
 *   that way, or the saved active one, that cannot be had is named; there is no quiet
 *   fallback to another server (which may be a stranger's).
 * - When no backend can be had, the reason is kept: the first line that needs a backend fails
 *   with it (exit status 1 in a script and with `-p`).
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { startOllama } from "../commands/ollama.ts";
import { checkActiveLlamafile, startSessionLlamafile } from "../commands/llamafile.ts";
import { hasSessionGguf, selectStartupGguf } from "../commands/llamacpp.ts";
import {
  GGUF_KIND,
  LocalModelSource,
  localSources,
  ModelRegistry,
} from "../commands/model_registry.ts";
import { useCandidate } from "../commands/model.ts";
import { noteNoBackend } from "../commands/registry.ts";
import { CancelledError, describeError } from "../errors.ts";
import { discoverModels, findCandidate, type ModelCandidate } from "../llm/catalog.ts";
import type { Output } from "../types.ts";
import { which } from "../util/which.ts";

/** How long start-up waits for any one backend: a dead one must not delay the prompt. */
export const STARTUP_PROBE_MS = 800;

/** How start-up may behave. */
export interface StartupOptions {
  /** A person at a terminal: questions and pickers may be asked, and spinners drawn. */
  interactive: boolean;
  /** `--llamafile-url` was given: that server, and nothing saved, is used. */
  urlGiven?: boolean;
  /** Ctrl-C: cancels a model that is starting. */
  signal?: AbortSignal;
}

/**
 * What to do when no backend was selected: how to get one, with the real models folder; or
 * one hint when there is a better next step (`/llamafile start` after declining).
 */
export function noBackendGuidance(agent: Agent, hint?: string): string {
  if (hint) return `No backend selected — ${hint}.\n`;
  const dir = new ModelRegistry(agent, GGUF_KIND).shown(agent.settings.modelsDir);
  return `No backend selected.
  → If Ollama is installed, use /ollama start once inside.
  → Or pick a llamafile from:
    https://docs.mozilla.ai/llamafile/getting-started/pre-built-llamafiles
    Download it to ${dir}, then run /llamafile add to connect.
`;
}

/** Why no backend was selected, and what to say to a person about it. */
interface NoBackend {
  reason: string;
  hint?: string;
}

/**
 * Selects the session's backend by the start-up contract (see the module doc): the session's
 * `--llamafile`/`--gguf`, the server of `--llamafile-url`, a model named by `-m`, the saved
 * active model, else whatever Ollama and the server at the llamafile URL offer.
 */
export async function selectBackend(
  agent: Agent,
  out: Output,
  opts: StartupOptions,
): Promise<void> {
  if (agent.client) return;
  let failed: NoBackend | undefined;
  try {
    failed = await select(agent, out, opts);
  } catch (err) {
    out.write(`✗ ${describeError(err)}\n`);
    failed = { reason: firstLine(describeError(err)) };
  }
  if (!failed || agent.client) return;
  noteNoBackend(agent, failed.reason);
  // A script or -p fails at the first line that needs a backend, with the reason.
  if (opts.interactive) out.write(noBackendGuidance(agent, failed.hint));
}

async function select(
  agent: Agent,
  out: Output,
  opts: StartupOptions,
): Promise<NoBackend | undefined> {
  const { interactive } = opts;
  const connect = { ask: interactive, signal: opts.signal, terminal: interactive };
  if (await startSessionLlamafile(agent, out, connect)) return undefined;
  if (hasSessionGguf(agent)) {
    if (await selectStartupGguf(agent, out)) return undefined;
    return { reason: "the model of --gguf could not be used" };
  }
  if (opts.urlGiven) return await selectAtUrl(agent, out, opts);
  const wanted = agent.settings.model;
  // A model asked for with -m or HARVEY_MODEL comes before the saved ones.
  if (wanted !== undefined && wanted !== agent.config.config.model) {
    return await selectWanted(agent, out, { ...opts, wanted });
  }
  const saved = await selectSaved(agent, out, opts);
  if (saved !== "none") return saved === "selected" ? undefined : saved;
  return await selectDiscovered(agent, out, opts);
}

/** `--llamafile-url URL`: the models of that server only; a dead URL is named. */
async function selectAtUrl(
  agent: Agent,
  out: Output,
  opts: StartupOptions,
): Promise<NoBackend | undefined> {
  const url = agent.settings.llamafileUrl;
  const sources = agent.sources.filter((s) => !(s instanceof LocalModelSource));
  const { candidates, down } = await discoverModels(sources, { timeoutMs: STARTUP_PROBE_MS * 2 });
  if (!candidates.length) {
    const why = down[0]?.reason ?? "lists no models";
    const reason = /not running|no answer/.test(why)
      ? `nothing answers at ${url} (--llamafile-url)`
      : `the server at ${url} (--llamafile-url) ${why}`;
    out.write(`✗ ${capitalize(reason)}: start the server there or check the URL\n`);
    return { reason };
  }
  const wanted = agent.settings.model;
  const chosen = wanted ? findCandidate(candidates, wanted) : candidates[0];
  if (!chosen) {
    const reason = `the server at ${url} (--llamafile-url) has no model "${wanted}"; it serves ${
      candidates.map((c) => c.model).join(", ")
    }`;
    out.write(`✗ ${capitalize(reason)}\n`);
    return { reason };
  }
  await useCandidate(agent, chosen, out, { terminal: opts.interactive, signal: opts.signal });
  return undefined;
}

/** `-m NAME` (or `HARVEY_MODEL`): a registered model, else a model of Ollama or the URL. */
async function selectWanted(
  agent: Agent,
  out: Output,
  opts: StartupOptions & { wanted: string },
): Promise<NoBackend | undefined> {
  const { wanted } = opts;
  for (const source of localSources(agent.sources)) {
    const entry = source.registry.find(wanted);
    if (!entry) continue;
    const client = await source.backend.connect(entry, out, {
      ask: opts.interactive,
      signal: opts.signal,
      terminal: opts.interactive,
    });
    await agent.setClient(client);
    out.write(`✓ Using model: ${entry.name}\n`);
    return undefined;
  }
  const sources = agent.sources.filter((s) => !(s instanceof LocalModelSource));
  const { candidates } = await discoverModels(sources, { timeoutMs: STARTUP_PROBE_MS });
  const found = findCandidate(candidates, wanted);
  if (found) {
    await useCandidate(agent, found, out, { terminal: opts.interactive, signal: opts.signal });
    return undefined;
  }
  const registered = localSources(agent.sources).flatMap((s) => s.registry.names());
  const known = [...new Set([...registered, ...candidates.map((c) => c.model)])];
  const reason = `no model named "${wanted}" (-m)`;
  out.write(
    `✗ ${capitalize(reason)} is registered or running; ${
      known.length ? `known: ${known.join(", ")}` : "no model is available"
    }\n`,
  );
  return { reason, hint: "/model lists the models there are" };
}

/**
 * The saved active model (`llamafile.active`, `llamacpp.active`, or a registered `model:`).
 * A person is asked before it is started; a script and `-p` start it and say so.
 */
async function selectSaved(
  agent: Agent,
  out: Output,
  opts: StartupOptions,
): Promise<NoBackend | "selected" | "none"> {
  const cfg = agent.config.config;
  const local = localSources(agent.sources);
  const model = agent.settings.model;
  const named = model === undefined ? undefined : local.find((s) => s.registry.find(model));
  const llamafile = cfg.llamafile.active !== undefined
    ? cfg.llamafile.active
    : !cfg.llamacpp.active && named?.registry.kind.key === "llamafile"
    ? model
    : undefined;
  if (llamafile !== undefined) {
    let outcome;
    try {
      outcome = await checkActiveLlamafile(agent, out, {
        ask: opts.interactive,
        name: llamafile,
        signal: opts.signal,
        terminal: opts.interactive,
      });
    } catch (err) {
      if (!(err instanceof CancelledError)) throw err;
      out.write(`✗ ${err.message}\n`);
      outcome = "declined" as const;
    }
    if (outcome === "declined") {
      return {
        reason: `${llamafile} was not started`,
        hint: `/llamafile start starts ${llamafile}, /model lists the others`,
      };
    }
    if (outcome === "selected") return "selected";
    return "none";
  }
  const gguf = cfg.llamacpp.active ?? (named?.registry.kind.key === "llamacpp" ? model : undefined);
  if (gguf === undefined) return "none";
  if (await selectStartupGguf(agent, out, { name: gguf })) return "selected";
  if (!new ModelRegistry(agent, GGUF_KIND).find(gguf)) return "none";
  return { reason: `the saved GGUF model ${gguf} could not be used` };
}

/** Whatever Ollama and the server at the llamafile URL offer. */
async function selectDiscovered(
  agent: Agent,
  out: Output,
  opts: StartupOptions,
): Promise<NoBackend | undefined> {
  // Registered models that do not run are offered by /model, never picked at start-up.
  const sources = agent.sources.filter((s) => !(s instanceof LocalModelSource));
  let { candidates, down } = await discoverModels(sources, { timeoutMs: STARTUP_PROBE_MS });
  const ollamaDown = down.find((d) => d.source.startsWith("Ollama"));
  if (!candidates.length && ollamaDown) {
    out.write(`✗ Ollama is not running at ${agent.settings.ollamaUrl}\n`);
  }
  if (
    !candidates.length && ollamaDown && opts.interactive &&
    await which("ollama", agent.env.PATH ?? "")
  ) {
    let start = false;
    try {
      start = await agent.asker.confirm("Start Ollama now?");
    } catch (err) {
      if (!(err instanceof CancelledError)) throw err;
      out.write(`✗ ${err.message}\n`);
    }
    if (start) {
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
    return {
      reason: ollamaDown
        ? `Ollama is not running at ${agent.settings.ollamaUrl} and no model is registered`
        : "no model was found",
    };
  }
  const chosen = await choose(agent, candidates, out, opts.interactive);
  if (!chosen) return { reason: "no model was picked" };
  await useCandidate(agent, chosen.candidate, out, {
    save: chosen.save,
    terminal: opts.interactive,
    signal: opts.signal,
  });
  return undefined;
}

async function choose(
  agent: Agent,
  candidates: ModelCandidate[],
  out: Output,
  ask: boolean,
): Promise<{ candidate: ModelCandidate; save: boolean } | undefined> {
  const saved = agent.settings.model;
  if (saved) {
    const found = findCandidate(candidates, saved);
    if (found) return { candidate: found, save: false };
    out.write(`⚠ The saved model "${saved}" is not available\n`);
  }
  if (candidates.length === 1 || !ask) return { candidate: candidates[0], save: false };
  try {
    const picked = await agent.asker.pick(
      "Several models are available:",
      candidates.map((c) => ({ label: c.label, value: c })),
    );
    return "value" in picked ? { candidate: picked.value, save: true } : undefined;
  } catch (err) {
    // Cancelled at the picker: start without a backend rather than not at all.
    if (!(err instanceof CancelledError)) throw err;
    out.write(`✗ ${err.message}\n`);
    return undefined;
  }
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0];
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
