/**
 * `/ollama`: start, stop and inspect the Ollama server, and use one of its models.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { listOllamaModels, OllamaClient } from "../llm/ollama.ts";
import type { Output } from "../types.ts";
import { which } from "../util/which.ts";
import { type CommandHandler, required, subcommand } from "./registry.ts";

const started = new WeakMap<Agent, Deno.ChildProcess>();

async function ollamaVersion(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/api/version`, { signal: AbortSignal.timeout(1500) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return ((await res.json()) as { version?: string }).version ?? "unknown";
  } catch {
    return undefined;
  }
}

/**
 * Runs `ollama serve` for the configured URL and waits until it answers. Returns false (after
 * saying why) when Ollama is not installed.
 */
export async function startOllama(agent: Agent, out: Output): Promise<boolean> {
  const url = agent.settings.ollamaUrl;
  if (await ollamaVersion(url)) {
    out.write(`Ollama is already running at ${url}\n`);
    return true;
  }
  const bin = await which("ollama", agent.env.PATH ?? "");
  if (!bin) {
    out.write(
      "✗ Ollama is not installed — get it from https://ollama.com/download " +
        "(macOS: brew install ollama), or use /llamafile add\n",
    );
    return false;
  }
  const host = new URL(url).host;
  out.write(`Starting ollama serve on ${host}…\n`);
  const child = new Deno.Command(bin, {
    args: ["serve"],
    env: { OLLAMA_HOST: host },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  started.set(agent, child);
  agent.onShutdown(() => stopOllama(agent));
  let exited = false;
  child.status.then(() => exited = true);
  for (let wait = 50; wait < 30_000 && !exited; wait = Math.min(wait * 1.5, 1000)) {
    if (await ollamaVersion(url)) {
      out.write(`✓ Ollama is running at ${url}\n`);
      return true;
    }
    await new Promise((r) => setTimeout(r, wait));
  }
  await stopOllama(agent);
  throw new HarveyError(
    `ollama serve did not become ready at ${url} (run "ollama serve" to see why)`,
  );
}

async function stopOllama(agent: Agent): Promise<boolean> {
  const child = started.get(agent);
  if (!child) return false;
  started.delete(agent);
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  await child.status;
  return true;
}

/** `/ollama start|stop|status|list|use MODEL` */
export const ollamaCommand: CommandHandler = {
  subcommands: ["start", "stop", "status", "list", "use"],
  async complete(agent, args) {
    if (args.length === 0) return ["start", "stop", "status", "list", "use"];
    if (args.length === 1 && args[0] === "use") {
      return await listOllamaModels(agent.settings.ollamaUrl, {
        signal: AbortSignal.timeout(500),
      }).catch(() => []);
    }
    return [];
  },
  async run(agent, args, out) {
    const url = agent.settings.ollamaUrl;
    const sub = subcommand("/ollama", args, ["start", "stop", "status", "list", "use"], "status");
    if (sub === "start") {
      await startOllama(agent, out);
    } else if (sub === "stop") {
      if (agent.client instanceof OllamaClient) await agent.setClient(undefined);
      if (await stopOllama(agent)) out.write("Stopped the Ollama server Harvey started.\n");
      else out.write(`Harvey did not start the Ollama at ${url}; it is left running.\n`);
    } else if (sub === "status") {
      const version = await ollamaVersion(url);
      out.write(`Ollama:  ${url}\n`);
      out.write(`Running: ${version ? `yes (version ${version})` : "no"}\n`);
      out.write(`Started by Harvey: ${started.has(agent) ? "yes" : "no"}\n`);
      if (version) out.write(`Models:  ${(await listOllamaModels(url)).length}\n`);
    } else if (sub === "list") {
      const models = await listOllamaModels(url);
      if (!models.length) out.write("Ollama has no models (ollama pull MODEL to get one).\n");
      for (const m of models) {
        out.write(`${agent.client?.name === `ollama:${m}` ? "→" : " "} ${m}\n`);
      }
    } else {
      const name = required(args[1], "/ollama use MODEL");
      const models = await listOllamaModels(url);
      const model = models.find((m) => m === name) ??
        models.find((m) => m.split(":")[0] === name);
      if (!model) {
        throw new HarveyError(
          `Ollama has no model "${name}" — available: ${
            models.join(", ") || "none"
          } (ollama pull ${name})`,
        );
      }
      await agent.setClient(
        new OllamaClient(url, model, {
          timeoutMs: agent.config.config.request_timeout,
          numCtx: agent.config.config.ollama.num_ctx,
        }),
      );
      out.write(`✓ Using model: ${model} (ollama)\n`);
    }
  },
};
