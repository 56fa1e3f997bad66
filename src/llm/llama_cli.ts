/**
 * The one-shot fallback when llama-server is not installed: every turn runs llama.cpp's
 * completion program once (`llama-completion`, or a `llama-cli` from before build 7348) with
 * the whole history flattened into one ChatML prompt, and streams its stdout as it arrives.
 * The model loads for every turn, so this is slow; llama-server is preferred.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { HarveyError } from "../errors.ts";
import { LogRing } from "../runtime/log_ring.ts";
import { findOnPath, isExecutable, launch, signalProcess } from "../runtime/spawn.ts";
import { childEnv } from "../security/child_env.ts";
import type { Sandbox } from "../security/sandbox.ts";
import type { ChatOptions, ChatResult, LLMClient, Message, ToolSupport } from "../types.ts";
import { ThinkSplitter } from "./reasoning.ts";
import { generationRate } from "./stats.ts";
import { estimateTextTokens, estimateTokens } from "./tokens.ts";

/** The first llama.cpp build whose `llama-cli` is an interactive chat only. */
export const FIRST_CHAT_ONLY_BUILD = 7348;

/** Longer prompts go through a temporary file (`-f`): one argument may hold at most 128 KiB. */
const MAX_ARG_PROMPT = 100_000;

/**
 * The history as one prompt in the generic ChatML template, ending where the assistant's
 * reply begins.
 *
 * @example
 * ```ts
 * chatmlPrompt([{ role: "user", content: "hi" }]);
 * // "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
 * ```
 */
export function chatmlPrompt(messages: Message[]): string {
  const turns = messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`);
  return `${turns.join("")}<|im_start|>assistant\n`;
}

/** What llama.cpp prints when the model ended its reply (its end-of-generation token). */
export const END_OF_TEXT = " [end of text]";

/** Text that ends a reply: the template's markers, and llama.cpp's end-of-text notice. */
const STOP_MARKERS = ["<|im_end|>", "<|im_start|>", "<|endoftext|>", END_OF_TEXT];

/**
 * Passes text through until a stop marker appears; a piece that may be the start of a marker
 * is held back until the next piece tells.
 */
export class StopFilter {
  #pending = "";
  #stoppedBy?: string;

  /** True once a marker was seen: the rest of the output is dropped. */
  get stopped(): boolean {
    return this.#stoppedBy !== undefined;
  }

  /** The marker that ended the reply, once one did. */
  get stoppedBy(): string | undefined {
    return this.#stoppedBy;
  }

  /** Returns the text of `chunk` that is safe to show now. */
  push(chunk: string): string {
    if (this.stopped) return "";
    const text = this.#pending + chunk;
    let cut = -1;
    for (const m of STOP_MARKERS) {
      const i = text.indexOf(m);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        this.#stoppedBy = m;
      }
    }
    if (cut >= 0) {
      this.#pending = "";
      return text.slice(0, cut);
    }
    let hold = 0;
    for (const m of STOP_MARKERS) {
      for (let n = Math.min(m.length - 1, text.length); n > hold; n--) {
        if (text.endsWith(m.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    this.#pending = text.slice(text.length - hold);
    return text.slice(0, text.length - hold);
  }

  /** The text held back at the end of the output. */
  flush(): string {
    const rest = this.stopped ? "" : this.#pending;
    this.#pending = "";
    return rest;
  }
}

/** Token counts and times llama.cpp prints at exit (`llama_perf_context_print`). */
export interface LlamaPerf {
  promptTokens?: number;
  replyTokens?: number;
  evalMs?: number;
}

/** Reads the `prompt eval time = … / N tokens` and `eval time = … / N runs` lines. */
export function parseLlamaPerf(lines: string[]): LlamaPerf {
  const perf: LlamaPerf = {};
  for (const line of lines) {
    const prompt = /prompt eval time\s*=\s*([\d.]+)\s*ms\s*\/\s*(\d+)\s*tokens/.exec(line);
    if (prompt) {
      perf.promptTokens = Number(prompt[2]);
      continue;
    }
    const evalLine = /(?<!prompt )eval time\s*=\s*([\d.]+)\s*ms\s*\/\s*(\d+)\s*(runs|tokens)/
      .exec(line);
    if (evalLine) {
      perf.evalMs = Number(evalLine[1]);
      perf.replyTokens = Number(evalLine[2]);
    }
  }
  return perf;
}

/** A one-shot program found on PATH. */
export interface OneShotProgram {
  path: string;
  /** `llama-completion` or `llama-cli` */
  name: string;
  /** `llama-tokenize`, which ships beside it, when it is there: it counts prompts exactly. */
  tokenizer?: string;
}

/**
 * The one-shot completion program: `llama-completion` (beside `cliBin` or on PATH), else
 * `cliBin` (default `llama-cli`) when it exists. Undefined when neither is found.
 */
export function findOneShot(cliBin: string, pathVar: string): OneShotProgram | undefined {
  const cli = cliBin.includes("/")
    ? (isExecutable(cliBin) ? cliBin : undefined)
    : findOnPath(cliBin, pathVar);
  const completion = (cli ? findOnPath("llama-completion", dirname(cli)) : undefined) ??
    findOnPath("llama-completion", pathVar);
  const program = completion ?? cli;
  if (!program) return undefined;
  const tokenizer = findOnPath("llama-tokenize", dirname(program)) ??
    findOnPath("llama-tokenize", pathVar);
  return {
    path: program,
    name: completion ? "llama-completion" : basename(program),
    ...(tokenizer ? { tokenizer } : {}),
  };
}

/**
 * The lines of a failed run's stderr worth showing: errors, not llama.cpp's start-up log (its
 * `system_info:` line alone runs to hundreds of characters). At most two, shortened.
 *
 * @example
 * ```ts
 * failureLines(["system_info: n_threads = 8 | AVX = 1 | …", "main: error: unable to load model"]);
 * // ["main: error: unable to load model"]
 * ```
 */
export function failureLines(lines: string[]): string[] {
  const useful = lines.map((l) => l.trim()).filter((l) =>
    l && !/^(system_info|build|print_info|llama_model_loader: -|load_tensors|main: llama backend)/
      .test(l)
  );
  const errors = useful.filter((l) =>
    /error|fail|unable|cannot|can't|not found|invalid|no such|out of memory/i.test(l)
  );
  const chosen = (errors.length ? errors : useful).slice(-2);
  return chosen.map((l) => l.length > 160 ? `${l.slice(0, 159)}…` : l);
}

/** The version line a program prints for `--version` (llama.cpp prints it on stderr). */
export async function programVersion(
  path: string,
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(path, {
      args: ["--version"],
      env: opts.env,
      clearEnv: opts.env !== undefined,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000),
    }).output();
    const dec = new TextDecoder();
    const text = `${dec.decode(out.stdout)}\n${dec.decode(out.stderr)}`;
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    // Some builds log their backends first: the line that says "version" is the one.
    return lines.find((l) => /version/i.test(l)) ?? lines[0];
  } catch {
    return undefined;
  }
}

/** The build number in llama.cpp's `version: 4589 (1a2b3c4)` line. */
export function buildNumber(versionLine: string | undefined): number | undefined {
  const m = /version:\s*(\d+)/.exec(versionLine ?? "");
  return m ? Number(m[1]) : undefined;
}

/** How to run the one-shot program. */
export interface LlamaCliOptions {
  program: OneShotProgram;
  modelPath: string;
  /** The model's name, shown and used in `name`. */
  model: string;
  ctxSize: number;
  gpuLayers?: number;
  /** At most this many tokens per reply (`-n`) when a request does not say; default 2048. */
  maxTokens?: number;
  /** Harvey's environment; the child gets the filtered allowlist of it. */
  env: Record<string, string>;
  /**
   * The OS sandbox every run and count goes in (read-only, no network; the machine's devices
   * for a GPU), when there is one.
   */
  sandbox?: Sandbox;
}

/**
 * The arguments of one run: `-m MODEL -c N -n N -no-cnv --no-display-prompt [-ngl N]`, the
 * prompt as `-p TEXT` or `-f FILE`, and `--grammar-file FILE` when the reply is constrained.
 */
export function llamaCliArgs(
  opts: LlamaCliOptions,
  prompt: { text: string } | { file: string },
  run: { grammarFile?: string } = {},
): string[] {
  const args = [
    "-m",
    opts.modelPath,
    "-c",
    String(opts.ctxSize),
    "-n",
    String(opts.maxTokens ?? 2048),
    "-no-cnv",
    "--no-display-prompt",
  ];
  if (opts.gpuLayers !== undefined) args.push("-ngl", String(opts.gpuLayers));
  if ("text" in prompt) args.push("-p", prompt.text);
  else args.push("-f", prompt.file);
  if (run.grammarFile) args.push("--grammar-file", run.grammarFile);
  return args;
}

/** Runs llama.cpp's one-shot program once per turn. */
export class LlamaCliClient implements LLMClient {
  readonly name: string;
  readonly model: string;
  readonly #opts: LlamaCliOptions;
  readonly #running = new Set<Deno.ChildProcess>();
  readonly #setpriv?: string;
  #noTokenizer = false;

  constructor(opts: LlamaCliOptions) {
    this.#opts = opts;
    this.model = opts.model;
    this.name = `${opts.program.name}:${opts.model}`;
    if (Deno.build.os === "linux") this.#setpriv = findOnPath("setpriv", opts.env.PATH ?? "");
  }

  /**
   * Flattens the history, runs the program and streams its stdout token by token (`<think>`
   * blocks go to `onReasoning`). A reply that stops without the model's end marker was cut at
   * `-n` (`maxTokens`) or the window: its finish reason is `length`.
   */
  async chat(messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    opts.signal?.throwIfAborted();
    const started = performance.now();
    const prompt = chatmlPrompt(messages);
    let file: string | undefined;
    if (new TextEncoder().encode(prompt).length > MAX_ARG_PROMPT) {
      file = await Deno.makeTempFile({ prefix: "harvey_prompt_", suffix: ".txt" });
      // llama.cpp drops one trailing newline of a prompt file.
      await Deno.writeTextFile(file, `${prompt}\n`);
    }
    // A grammar goes in a file of its own: one argument of a few KiB is fine, but a file
    // keeps the command line (and `ps`) readable.
    let grammarFile: string | undefined;
    if (opts.grammar) {
      grammarFile = await Deno.makeTempFile({ prefix: "harvey_grammar_", suffix: ".gbnf" });
      await Deno.writeTextFile(grammarFile, opts.grammar);
    }
    const temporary = [file, grammarFile].filter((f): f is string => f !== undefined);
    const removeTemporary = () => Promise.all(temporary.map((f) => Deno.remove(f).catch(() => {})));
    const maxTokens = opts.maxTokens ?? this.#opts.maxTokens;
    const args = llamaCliArgs({ ...this.#opts, maxTokens }, file ? { file } : { text: prompt }, {
      grammarFile,
    });
    let child: Deno.ChildProcess;
    try {
      const [command, ...rest] = await this.#sandboxed(
        [this.#opts.program.path, ...args],
        temporary,
        true,
      );
      child = launch(command, rest, { env: this.#env(), setpriv: this.#setpriv });
    } catch (err) {
      await removeTemporary();
      throw new HarveyError(
        `Cannot run ${this.#opts.program.path}: ${
          (err as Error).message
        }; check the llama.cpp installation`,
      );
    }
    this.#running.add(child);
    const ring = new LogRing();
    const stderr = ring.pump(child.stderr, "stderr");
    const stop = () => signalProcess(child.pid, "SIGTERM");
    opts.signal?.addEventListener("abort", stop, { once: true });
    const filter = new StopFilter();
    const split = new ThinkSplitter();
    let reply = "";
    let reasoning = "";
    let firstAt = 0;
    const emit = (text: string) => {
      if (!text) return;
      firstAt ||= performance.now();
      const part = split.push(text);
      if (part.reasoning) {
        reasoning += part.reasoning;
        opts.onReasoning?.(part.reasoning);
      }
      if (part.content) {
        reply += part.content;
        opts.onToken(part.content);
      }
    };
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          if (filter.stopped) continue;
          emit(filter.push(value));
          // The model ended its reply: llama.cpp prints its counts and exits by itself. A model
          // that runs on past the template's end marker is stopped.
          if (filter.stopped && filter.stoppedBy !== END_OF_TEXT) {
            stop();
            break;
          }
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
      emit(filter.flush());
      const rest = split.flush();
      if (rest.content) {
        reply += rest.content;
        opts.onToken(rest.content);
      }
      const status = await child.status;
      await stderr;
      opts.signal?.throwIfAborted();
      if (!status.success && !filter.stopped) {
        const why = failureLines(ring.tail(200, "stderr"));
        throw new HarveyError(
          `${this.#opts.program.name} exited with ${
            status.signal ? `signal ${status.signal}` : `status ${status.code}`
          }${why.length ? `: ${why.join(" | ")}` : ""}`,
        );
      }
    } finally {
      opts.signal?.removeEventListener("abort", stop);
      this.#running.delete(child);
      await removeTemporary();
    }
    const perf = parseLlamaPerf(ring.lines());
    const endedAt = performance.now();
    const replyTokens = perf.replyTokens ?? estimateTextTokens(reasoning + reply);
    return {
      promptTokens: perf.promptTokens ?? estimateTokens(messages),
      replyTokens,
      reasoningTokens: reasoning ? estimateTextTokens(reasoning) : undefined,
      elapsedMs: endedAt - started,
      tokensPerSec: perf.evalMs
        ? replyTokens / (perf.evalMs / 1000)
        : generationRate(replyTokens, firstAt, endedAt),
      finishReason: filter.stopped ? "stop" : "length",
    };
  }

  /** `argv` inside the sandbox (when there is one), with `files` readable in it. */
  async #sandboxed(argv: string[], files: string[], devices: boolean): Promise<string[]> {
    const sandbox = this.#opts.sandbox;
    if (!sandbox || !(await sandbox.status()).available) return argv;
    return await sandbox.argv(argv, {
      network: false,
      writable: false,
      readable: files.length ? files : undefined,
      devices,
    });
  }

  /**
   * The one-shot program has no native tool calling, but takes a grammar (`--grammar-file`):
   * its tools go by the text protocol, constrained.
   */
  toolSupport(): Promise<ToolSupport> {
    return Promise.resolve({
      native: false,
      reason: `${this.#opts.program.name} runs one prompt at a time, without native tool calling`,
      grammar: true,
    });
  }

  /** The child's environment: the filtered one, and what the sandbox adds. */
  #env(): Record<string, string> {
    return { ...childEnv(this.#opts.env), ...this.#opts.sandbox?.env() };
  }

  /**
   * The exact tokens of the prompt a run is given, counted by `llama-tokenize` (which ships
   * beside llama-completion) with the model's own vocabulary; undefined without it.
   */
  async countPrompt(messages: Message[]): Promise<number | undefined> {
    const tokenizer = this.#opts.program.tokenizer;
    if (!tokenizer || this.#noTokenizer) return undefined;
    const file = await Deno.makeTempFile({ prefix: "harvey_count_", suffix: ".txt" });
    try {
      await Deno.writeTextFile(file, chatmlPrompt(messages));
      const [command, ...args] = await this.#sandboxed(
        [tokenizer, "-m", this.#opts.modelPath, "-f", file, "--ids", "--log-disable"],
        [file],
        false,
      );
      const out = await new Deno.Command(command, {
        args,
        env: this.#env(),
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "null",
        signal: AbortSignal.timeout(30_000),
      }).output();
      const ids = /\[([\d,\s]*)\]/.exec(new TextDecoder().decode(out.stdout));
      if (!out.success || !ids) {
        this.#noTokenizer = true;
        return undefined;
      }
      return ids[1].split(",").filter((x) => x.trim()).length;
    } catch {
      return undefined;
    } finally {
      await Deno.remove(file).catch(() => {});
    }
  }

  /** The one model this client runs. */
  models(): Promise<string[]> {
    return Promise.resolve([this.model]);
  }

  /** The context size every run is given (`-c`). */
  contextWindow(): Promise<number | undefined> {
    return Promise.resolve(this.#opts.ctxSize);
  }

  /** Stops a run still going. */
  async close(): Promise<void> {
    const running = [...this.#running];
    for (const child of running) signalProcess(child.pid, "SIGTERM");
    await Promise.all(running.map((c) => c.status.catch(() => {})));
  }
}
