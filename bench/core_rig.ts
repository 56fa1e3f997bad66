/**
 * What the core benchmarks share: Harvey started the way users start it (the `harvey` task's
 * flags), in a clean environment; a terminal for it (`script` from util-linux); its memory;
 * the fake OpenAI-compatible server as a child process; and reading a child's output as it
 * comes, with the time each piece arrived.
 *
 * The fake server is `test/fixtures/fake_openai.ts` in its own process (this file with
 * `--serve-fake`), like a real model server: its JSON and HTTP work is not charged to the
 * process being measured, and on two cores it frames tokens in parallel. It listens through
 * `Deno.serve`, which sets TCP_NODELAY on every connection it accepts (Deno 2.9: seen with
 * `strace -e setsockopt`), so a small reply is not held back by Nagle's algorithm waiting for
 * a delayed ACK (~40 ms); Deno's fetch sends a whole request in one write, so the client side
 * needs no such flag.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCount, runAsScript } from "../test/fixtures/fixture_common.ts";
import { startFakeOpenAI } from "../test/fixtures/fake_openai.ts";

/** The repository's root. */
export const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const THIS_FILE = fileURLToPath(import.meta.url);

/** A port nothing listens on: every backend probe is refused at once. */
export const CLOSED = "127.0.0.1:9";
/** How long to wait for a child to show something before giving up. */
export const WAIT_LIMIT_MS = 20_000;

/** The tokens of the long reply. */
export const STREAM_TOKENS = 20_000;
/** The prompt the fake server answers with {@linkcode STREAM_TOKENS} tokens. */
export const STREAM_PROMPT = "stream";
/** Prompts starting with this get a reply of {@linkcode TURN_TOKENS} tokens. */
export const TURN_PROMPT = "turn";
/** The tokens of the reply to each turn of a conversation. */
export const TURN_TOKENS = 1_000;
/** The reply to any other prompt; its first token is "Hello". */
export const SHORT_REPLY = "Hello from the fake server, ready when you are.";
/** The fake server's window: the long reply and ten turns fit, and a 24,000-token reserve. */
export const FAKE_WINDOW = 65_536;
/** `agents/harvey.yaml` of a workspace that streams the long reply (the reserve bounds it). */
export const LONG_REPLY_CONFIG = "context:\n  reply_reserve: 24000\n";

const encoder = new TextEncoder();

/** Rounds to `digits` decimals. */
export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A progress line on stderr. */
export function progress(text: string): void {
  console.error(`  ${text}`);
}

/** Kills a child that may be gone already. */
export function kill(child: Deno.ChildProcess, signal: Deno.Signal = "SIGKILL"): void {
  try {
    child.kill(signal);
  } catch {
    // Already gone.
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Reads a child's stream to the end, resolving waiters when a piece of text has appeared.
 * Reads go through one reused buffer, so a child that writes a token at a time is not slowed
 * by its reader.
 */
export class StreamWatch {
  text = "";
  /** `performance.now()` of the first and the last piece read. */
  firstAt = 0;
  lastAt = 0;
  readonly done: Promise<void>;
  #waiters: { needle: string; from: number; resolve: (at: number) => void }[] = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#pump(stream);
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    const reader = stream.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(64 * 1024);
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done || !value) break;
      buffer = value.buffer;
      const now = performance.now();
      this.firstAt ||= now;
      this.lastAt = now;
      this.text += decoder.decode(value, { stream: true });
      this.#waiters = this.#waiters.filter((w) => {
        if (!this.text.includes(w.needle, w.from)) return true;
        w.resolve(now);
        return false;
      });
    }
  }

  /**
   * Resolves with `performance.now()` when `needle` has appeared (at `from` or later); rejects
   * when the stream ends without it or after `timeoutMs`, so a hung child cannot hang a run.
   */
  seen(needle: string, opts: { from?: number; timeoutMs?: number } = {}): Promise<number> {
    const from = opts.from ?? 0;
    if (this.text.includes(needle, from)) return Promise.resolve(performance.now());
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    const fail = (why: string) =>
      reject(new Error(`Expected "${needle}" ${why}, found: ${this.text.slice(-300)}`));
    const limit = opts.timeoutMs ?? WAIT_LIMIT_MS;
    const timer = setTimeout(() => fail(`within ${limit} ms`), limit);
    this.#waiters.push({
      needle,
      from,
      resolve: (at) => {
        clearTimeout(timer);
        resolve(at);
      },
    });
    this.done.then(() => {
      clearTimeout(timer);
      if (!this.text.includes(needle, from)) fail("in the output");
    });
    return promise;
  }

  /** How many times `needle` has appeared so far. */
  count(needle: string): number {
    let n = 0;
    for (let i = this.text.indexOf(needle); i >= 0; i = this.text.indexOf(needle, i + 1)) n++;
    return n;
  }
}

/** Deno's cache folder, kept when a child gets a fresh HOME so its module cache stays warm. */
export async function denoDir(): Promise<string> {
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return fromEnv;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir: string }).denoDir;
}

/** The permission flags of the `harvey` task in deno.json, so the bench runs what users run. */
export async function harveyTaskFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(REPO, "deno.json"))) as {
    tasks?: Record<string, string>;
  };
  const task = config.tasks?.harvey;
  if (!task) throw new Error("Expected a harvey task in deno.json, found none");
  const words = task.split(/\s+/);
  return words.slice(words.indexOf("run") + 1, words.indexOf("main.ts"))
    .filter((w) => w.startsWith("--") && w !== "--no-prompt");
}

/** `deno run` arguments that start Harvey as `deno task harvey` does, then `args`. */
export async function harveyArgs(args: string[]): Promise<string[]> {
  return [
    "run",
    "--no-prompt",
    "--config",
    join(REPO, "deno.json"),
    ...await harveyTaskFlags(),
    join(REPO, "main.ts"),
    ...args,
  ];
}

/** A clean environment for children: a fresh HOME, Deno's cache kept, no colours. */
export async function childEnv(home: string): Promise<Record<string, string>> {
  await Deno.mkdir(home, { recursive: true });
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: home,
    DENO_DIR: await denoDir(),
    DENO_NO_UPDATE_CHECK: "1",
    OLLAMA_HOST: CLOSED,
    NO_COLOR: "1",
    TERM: "xterm-256color",
  };
}

/** util-linux `script`, which gives a child a terminal; undefined where it is missing. */
export function scriptBinary(): string | undefined {
  return ["/usr/bin/script", "/bin/script"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A child on a terminal (`script -qec`): what it writes is watched, keys go to `type`. */
export interface PtyChild {
  watch: StreamWatch;
  /** Writes text as typed keys (Enter is `\r`). */
  type(text: string): Promise<void>;
  /** Types `/exit`-like input, closes the terminal's input and waits for the exit. */
  end(input?: string): Promise<void>;
  kill(): Promise<void>;
}

/** Starts `deno args…` on a terminal through `script`. */
export function spawnOnPty(
  script: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string> },
): PtyChild {
  const line = [Deno.execPath(), ...args].map(shellQuote).join(" ");
  const child = new Deno.Command(script, {
    args: ["-qec", line, "/dev/null"],
    cwd: opts.cwd,
    env: opts.env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const watch = new StreamWatch(child.stdout);
  const writer = child.stdin.getWriter();
  return {
    watch,
    type: (text) => writer.write(encoder.encode(text)),
    async end(input) {
      if (input) await writer.write(encoder.encode(input));
      await writer.close().catch(() => {});
      await child.status;
      await watch.done;
    },
    async kill() {
      kill(child);
      await writer.close().catch(() => {});
      await child.status;
      await watch.done.catch(() => {});
    },
  };
}

/** VmRSS of process `pid` in MiB. */
export async function vmRssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = status.match(/^VmRSS:\s+(\d+)\s+kB$/m);
  if (!kib) throw new Error(`Expected VmRSS in /proc/${pid}/status, found none`);
  return Number(kib[1]) / 1024;
}

/** The long reply: "wN " is two fake tokens, the word and the space. */
export function longReply(tokens: number): string {
  return Array.from({ length: tokens / 2 }, (_, i) => `w${i % 1000} `).join("");
}

/** The fake OpenAI-compatible server in its own process. */
export class FakeServerChild {
  private constructor(
    readonly url: string,
    readonly child: Deno.ChildProcess,
    readonly watch: StreamWatch,
  ) {}

  /** Starts it; it answers as the constants above say. */
  static async start(): Promise<FakeServerChild> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--allow-net=127.0.0.1",
        "--allow-read",
        THIS_FILE,
        "--serve-fake",
        "--tokens",
        String(STREAM_TOKENS),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const watch = new StreamWatch(child.stdout);
    try {
      await watch.seen("listening on ");
    } catch (err) {
      kill(child);
      await child.status;
      throw err;
    }
    const url = watch.text.match(/listening on (\S+)/)![1];
    return new FakeServerChild(url, child, watch);
  }

  /** Stops it. */
  async stop(): Promise<void> {
    kill(this.child, "SIGTERM");
    await this.child.status;
    await this.watch.done;
  }
}

if (import.meta.main && Deno.args[0] === "--serve-fake") {
  await runAsScript(Deno.args.slice(1), { tokens: { type: "string" } }, (v) => {
    const long = longReply(parseCount("tokens", v.one("tokens")) ?? STREAM_TOKENS);
    const turn = longReply(TURN_TOKENS);
    return startFakeOpenAI({
      nCtx: FAKE_WINDOW,
      nCtxTrain: FAKE_WINDOW,
      reply: (messages) => {
        const prompt = messages.at(-1)?.content ?? "";
        if (prompt === STREAM_PROMPT) return long;
        return prompt.startsWith(TURN_PROMPT) ? turn : SHORT_REPLY;
      },
    });
  });
}
