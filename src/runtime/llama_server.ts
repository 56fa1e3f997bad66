/**
 * llama.cpp's `llama-server`: the arguments it takes and how Harvey starts one through the
 * {@linkcode Supervisor} for a GGUF file.
 *
 * @module
 */
import { basename, isAbsolute, resolve } from "node:path";
import { HarveyError } from "../errors.ts";
import { findFreePort } from "./probe.ts";
import type { RunningServer } from "./server.ts";
import { findOnPath } from "./spawn.ts";
import type { ServerSpec, StartOptions, Supervisor } from "./supervisor.ts";

/** How to run `llama-server`. */
export interface LlamaServerOptions {
  /** The program: a path, or a name looked up on PATH (default `llama-server`). */
  binary?: string;
  /** Port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /** Context size (`-c`). */
  ctxSize?: number;
  /** Layers offloaded to the GPU (`-ngl`). */
  gpuLayers?: number;
  /** More arguments, passed as they are (e.g. `--pooling mean`). */
  extraArgs?: string[];
  /**
   * The folder where the server saves and restores slot caches (`--slot-save-path`); it is
   * created before the server starts (llama-server refuses a folder that is not there).
   */
  slotSavePath?: string;
  /** Variables added to the child's filtered environment. */
  env?: Record<string, string>;
  /** PATH to find `binary` on (default: Harvey's). */
  path?: string;
}

/**
 * The arguments of `llama-server` for `modelPath`:
 * `-m MODEL --host 127.0.0.1 --port P [-c N] [-ngl N] [--slot-save-path DIR] …extra --jinja`.
 */
export function llamaServerArgs(
  modelPath: string,
  port: number,
  opts: LlamaServerOptions = {},
): string[] {
  const args = ["-m", resolve(modelPath), "--host", "127.0.0.1", "--port", String(port)];
  if (opts.ctxSize !== undefined) args.push("-c", String(opts.ctxSize));
  if (opts.gpuLayers !== undefined) args.push("-ngl", String(opts.gpuLayers));
  const extra = opts.extraArgs ?? [];
  if (opts.slotSavePath !== undefined && !extra.includes("--slot-save-path")) {
    args.push("--slot-save-path", resolve(opts.slotSavePath));
  }
  // --jinja: the model's own chat template renders tools (the default of recent builds);
  // extra arguments that say otherwise (`--no-jinja`) win.
  const jinja = extra.some((a) => a === "--jinja" || a === "--no-jinja") ? [] : ["--jinja"];
  return [...args, ...extra, ...jinja];
}

/**
 * What the supervisor needs to serve the GGUF file at `modelPath` with `llama-server`.
 * Throws when the program cannot be found.
 *
 * @example
 * ```ts
 * const spec = llamaServerSpec("/home/me/Models/qwen3-4b-q4_k_m.gguf", { ctxSize: 8192 });
 * ```
 */
export function llamaServerSpec(modelPath: string, opts: LlamaServerOptions = {}): ServerSpec {
  const binary = opts.binary ?? "llama-server";
  const command = binary.includes("/") || isAbsolute(binary)
    ? resolve(binary)
    : findOnPath(binary, opts.path ?? Deno.env.get("PATH") ?? "");
  if (!command) {
    throw new HarveyError(
      `${binary} was not found on PATH; install llama.cpp (e.g. brew install llama.cpp) or give the path of llama-server`,
    );
  }
  const port = opts.port ?? findFreePort();
  return {
    backend: "llama-server",
    command,
    args: llamaServerArgs(modelPath, port, opts),
    model: basename(modelPath).replace(/\.gguf$/i, ""),
    modelPath: resolve(modelPath),
    port,
    env: opts.env,
  };
}

/**
 * Serves the GGUF file at `modelPath`: adopts the `llama-server` a Harvey started earlier
 * for it when still healthy, otherwise starts one and waits until it is ready.
 */
export async function startLlamaServer(
  sup: Supervisor,
  modelPath: string,
  opts: LlamaServerOptions & StartOptions & { adopt?: boolean } = {},
): Promise<RunningServer> {
  if (opts.adopt !== false) {
    const adopted = await sup.adopt("llama-server", modelPath);
    if (adopted) return adopted;
  }
  if (opts.slotSavePath !== undefined) await Deno.mkdir(opts.slotSavePath, { recursive: true });
  return await sup.start(llamaServerSpec(modelPath, opts), opts);
}
