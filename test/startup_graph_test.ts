/**
 * Start-up loads only what start-up needs: the module graph of `main.ts` holds no command
 * handler, no tool, store or REPL module, and start-up loads no `yaml`, `openai`, `commander`
 * or `node:crypto`; the command table answers `/help` and name completion without loading a
 * handler, and a command loads its own the first time it is used.
 */
import assert from "node:assert/strict";
import { COMMANDS } from "../src/commands/index.ts";
import {
  type CommandEntry,
  type CommandHandler,
  CommandRegistry,
} from "../src/commands/registry.ts";
import { HarveyError } from "../src/errors.ts";
import { MAIN } from "./harvey_child.ts";
import { testSession } from "./helpers.ts";

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
}

/**
 * The module graph of `main.ts`: `read` is every module Deno reads before the first line runs
 * (each import it can see in the source, the dynamic ones too — a module loaded by
 * `lazyImport` is not among them); `loaded` those it also loads and runs (no dynamic import).
 */
async function startupGraph(): Promise<{ read: string[]; loaded: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", MAIN],
    env: { DENO_NO_UPDATE_CHECK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: InfoModule[];
    redirects?: Record<string, string>;
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const resolve = (s: string) => info.redirects?.[s] ?? s;
  const walk = (dynamic: boolean) => {
    const seen = new Set<string>();
    const todo = [resolve(info.roots[0])];
    while (todo.length) {
      const s = todo.pop()!;
      if (seen.has(s)) continue;
      seen.add(s);
      for (const dep of bySpecifier.get(s)?.dependencies ?? []) {
        if (dep.code?.specifier && (dynamic || !dep.isDynamic)) {
          todo.push(resolve(dep.code.specifier));
        }
      }
    }
    return [...seen];
  };
  return { read: walk(true), loaded: walk(false) };
}

Deno.test("start-up loads no yaml, openai, commander or node:crypto, and reads no command, tool or REPL module", async () => {
  const { read, loaded } = await startupGraph();
  assert.ok(loaded.some((s) => s.endsWith("/src/session.ts")), "the graph was read");
  const packages = loaded.filter((s) =>
    /yaml@|openai@|commander|^node:(crypto|sqlite|fs|child_process)$/.test(s)
  );
  assert.deepEqual(packages, [], "start-up must not load these packages");
  const later = [
    // Loaded by the first prompt, the REPL, `pull` or `doctor`, or the command that needs them.
    /\/src\/repl\/(turn|interactive|line_editor|terminal|picker)\.ts$/,
    /\/src\/(doctor|ops\/git|config\/yaml_edit)\.ts$/,
    /\/src\/(tools|hf|store|search)\//,
    /\/src\/commands\/(apply|audit|context|core|edit|files|git|kb|path_completion|permissions|pull|rag|read|record|route|run|safemode|search|security|summarize|tools|write)\.ts$/,
  ];
  const early = read.filter((s) => later.some((re) => re.test(s)));
  assert.deepEqual(early, [], "start-up must not read these (lazyImport)");
});

Deno.test("the command table answers /help and completion of names without loading a handler", async () => {
  const s = await testSession();
  try {
    const loads: string[] = [];
    const registry = new CommandRegistry();
    registry.register(...COMMANDS.map((c): CommandEntry => ({
      ...c,
      load: () => {
        loads.push(c.name);
        return c.load();
      },
    })));
    assert.deepEqual(registry.list().map((c) => c.name), COMMANDS.map((c) => c.name));
    assert.equal(registry.get("perms")?.name, "permissions");
    assert.deepEqual((await registry.complete(s.agent, "/ra"))[0], ["/rag "]);
    assert.deepEqual(loads, []);
    await registry.dispatch(s.agent, "/help", s.out);
    assert.deepEqual(loads, ["help"], "/help loads its own handler only");
    for (const c of COMMANDS) assert.ok(s.out.text.includes(`/${c.name} `), c.name);
    // An argument completes through the command's handler: loaded then, once.
    assert.deepEqual((await registry.complete(s.agent, "/rag d"))[0], ["drop "]);
    await registry.dispatch(s.agent, "/rag status", s.out);
    await registry.dispatch(s.agent, "/help rag", s.out);
    assert.deepEqual(loads, ["help", "rag"]);
  } finally {
    await s.close();
  }
});

Deno.test("every row of the command table loads a handler", async () => {
  for (const c of COMMANDS) {
    const handler = await c.load();
    assert.equal(typeof handler.run, "function", `/${c.name}`);
    assert.ok(c.usage.length && c.summary, `/${c.name} has a usage and a summary`);
  }
});

Deno.test("a handler that cannot be loaded is one line, and the next use tries again", async () => {
  const s = await testSession();
  try {
    let fail = true;
    const handler: CommandHandler = {
      run: (_agent, args, out) => Promise.resolve(out.write(`ran ${args.join(" ")}\n`)),
    };
    const registry = new CommandRegistry();
    registry.register({
      name: "flaky",
      usage: ["/flaky"],
      summary: "Loads the second time",
      load: () =>
        fail ? Promise.reject(new TypeError("Module not found\nat …")) : Promise.resolve(handler),
    });
    await assert.rejects(
      registry.dispatch(s.agent, "/flaky", s.out),
      (err: Error) =>
        err instanceof HarveyError &&
        err.message ===
          "The code of /flaky could not be loaded (Module not found): check Harvey's files, or reinstall it",
    );
    fail = false;
    await registry.dispatch(s.agent, "/flaky now", s.out);
    assert.match(s.out.text, /ran now\n$/);
  } finally {
    await s.close();
  }
});
