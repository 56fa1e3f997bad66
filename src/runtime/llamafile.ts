/**
 * Llamafile as a server: the arguments it takes and how Harvey starts one through the
 * {@linkcode Supervisor}. A llamafile is an Actually Portable Executable, so the supervisor
 * runs it directly and falls back to `sh FILE …` when the kernel refuses to exec it.
 *
 * @module
 */
import { basename, resolve } from "node:path";
import { findFreePort } from "./probe.ts";
import type { RunningServer } from "./server.ts";
import type { ServerSpec, Supervisor } from "./supervisor.ts";

/** How to run a llamafile. */
export interface LlamafileOptions {
  /** Port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /** Context size (`-c`); the llamafile's default when omitted. */
  ctxSize?: number;
  /** Layers offloaded to the GPU (`-ngl`). */
  gpuLayers?: number;
  /** A GGUF file for a llamafile that holds no weights (`-m`). */
  gguf?: string;
  /** More arguments, passed as they are. */
  extraArgs?: string[];
  /** Variables added to the child's filtered environment. */
  env?: Record<string, string>;
}

/** The display name of a llamafile: its file name without `.llamafile`. */
export function llamafileName(path: string): string {
  return basename(path).replace(/\.llamafile$/i, "");
}

/**
 * The server arguments of a llamafile:
 * `--server --nobrowser --host 127.0.0.1 --port P [-c N] [-ngl N] [-m GGUF] …extra`.
 */
export function llamafileArgs(port: number, opts: LlamafileOptions = {}): string[] {
  const args = ["--server", "--nobrowser", "--host", "127.0.0.1", "--port", String(port)];
  if (opts.ctxSize !== undefined) args.push("-c", String(opts.ctxSize));
  if (opts.gpuLayers !== undefined) args.push("-ngl", String(opts.gpuLayers));
  if (opts.gguf !== undefined) args.push("-m", resolve(opts.gguf));
  return [...args, ...(opts.extraArgs ?? [])];
}

/**
 * What the supervisor needs to start the llamafile at `path`.
 *
 * @example
 * ```ts
 * const spec = llamafileSpec("/home/me/Models/Qwen3-4B.llamafile", { ctxSize: 8192 });
 * spec.args; // ["--server", "--nobrowser", "--host", "127.0.0.1", "--port", "41873", "-c", "8192"]
 * ```
 */
export function llamafileSpec(path: string, opts: LlamafileOptions = {}): ServerSpec {
  const abs = resolve(path);
  const port = opts.port ?? findFreePort();
  return {
    backend: "llamafile",
    command: abs,
    args: llamafileArgs(port, opts),
    model: opts.gguf ? basename(opts.gguf).replace(/\.gguf$/i, "") : llamafileName(abs),
    modelPath: opts.gguf ? resolve(opts.gguf) : abs,
    port,
    ape: true,
    env: opts.env,
  };
}

/**
 * Serves the llamafile at `path`: adopts the server a Harvey started earlier for the same
 * file when it is still healthy, otherwise starts one and waits until it is ready.
 */
export async function startLlamafile(
  sup: Supervisor,
  path: string,
  opts: LlamafileOptions & { signal?: AbortSignal; adopt?: boolean } = {},
): Promise<RunningServer> {
  const modelPath = opts.gguf ?? path;
  if (opts.adopt !== false) {
    const adopted = await sup.adopt("llamafile", modelPath);
    if (adopted) return adopted;
  }
  return await sup.start(llamafileSpec(path, opts), { signal: opts.signal });
}
