/**
 * Test helpers: a real session in a temporary workspace, driven through the headless runner.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Agent } from "../src/agent.ts";
import type { Flags } from "../src/config/settings.ts";
import { LineAsker } from "../src/repl/asker.ts";
import { linesFromText, runScript } from "../src/repl/headless.ts";
import { BufferOutput } from "../src/repl/output.ts";
import { selectBackend } from "../src/repl/startup.ts";
import { createSession } from "../src/session.ts";
import {
  type FakeOpenAI,
  type FakeOpenAIOptions,
  startFakeOpenAI,
} from "./fixtures/fake_openai.ts";

/**
 * Runs `fn` on a test session whose backend is a fresh fake llama.cpp-style server
 * (`server`), selected as `--llamafile-url` selects it; both are closed afterwards.
 */
export async function withFakeServer(
  server: FakeOpenAIOptions,
  session: { files?: Record<string, string>; flags?: Flags },
  fn: (s: TestSession, fake: FakeOpenAI) => Promise<void>,
): Promise<void> {
  const fake = await startFakeOpenAI(server);
  const s = await testSession({
    files: session.files,
    flags: { ...session.flags, llamafileUrl: fake.url },
    selectBackend: true,
  });
  try {
    await fn(s, fake);
  } finally {
    await s.close();
    await fake.close();
  }
}

/** Runs git in `root` as a test's author, without the machine's git config; it must succeed. */
export async function git(root: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("git", {
    args: ["-c", "user.name=Test", "-c", "user.email=test@example.com", ...args],
    cwd: root,
    env: { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

/** A session for tests, with its captured output. */
export interface TestSession {
  agent: Agent;
  root: string;
  out: BufferOutput;
  err: BufferOutput;
  /**
   * Runs script lines through the headless runner; returns the exit status. With `terminal`
   * the lines run as on a terminal: spinner and redrawn progress lines.
   */
  run(script: string, opts?: { signal?: AbortSignal; terminal?: boolean }): Promise<number>;
  /** Shuts the agent down and removes the workspace. */
  close(): Promise<void>;
}

/**
 * Creates a workspace in a temp folder (with `files`), builds a session as `harvey --run`
 * would, and optionally selects a backend. Answers to questions come from the script lines.
 */
export async function testSession(opts: {
  files?: Record<string, string>;
  flags?: Flags;
  env?: Record<string, string>;
  selectBackend?: boolean;
  /** Reuse this workspace (a "restart" of Harvey); `close()` then leaves it in place. */
  root?: string;
  /** How agents/harvey.yaml is trusted (default `all`: the test wrote it). */
  trust?: "ask" | "remembered" | "all";
} = {}): Promise<TestSession> {
  const root = opts.root ?? await Deno.makeTempDir({ prefix: "harvey-test-" });
  for (const [path, text] of Object.entries(opts.files ?? {})) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, path), text);
  }
  const out = new BufferOutput();
  const err = new BufferOutput();
  let pending: string[] = [];
  let source = linesFromText("");
  const read = async (prompt: string) => {
    out.write(prompt);
    return pending.length ? pending.shift() : await source.next();
  };
  const asker = new LineAsker(read, out, { yes: opts.flags?.yes, echo: true });
  const env = { PATH: Deno.env.get("PATH") ?? "", HOME: root, ...opts.env };
  const agent = await createSession({
    flags: { workdir: root, color: false, ...opts.flags },
    env,
    cwd: root,
    asker,
    err,
    trust: opts.trust ?? "all",
  });
  if (opts.selectBackend) {
    await selectBackend(agent, err, {
      interactive: false,
      urlGiven: opts.flags?.llamafileUrl !== undefined,
    });
  }
  return {
    agent,
    root,
    out,
    err,
    async run(script, runOpts = {}) {
      pending = [];
      source = linesFromText(script);
      return await runScript(agent, source, {
        out,
        err,
        spinner: runOpts.terminal ?? false,
        color: false,
        signal: runOpts.signal,
      });
    },
    async close() {
      await agent.shutdown();
      if (!opts.root) await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * The environment for a child `deno run` of Harvey with `extra` on top. A test that moves
 * `HOME` would also move Deno's cache (and download every npm package again): `DENO_DIR` keeps
 * the child on this process's cache.
 */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const home = Deno.env.get("HOME") ?? "";
  const cache = Deno.env.get("XDG_CACHE_HOME") ??
    (Deno.build.os === "darwin" ? join(home, "Library", "Caches") : join(home, ".cache"));
  return { DENO_DIR: Deno.env.get("DENO_DIR") ?? join(cache, "deno"), ...extra };
}
