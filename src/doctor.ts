/**
 * `harvey doctor`: which permissions, runtimes and models Harvey finds, each with ✓ or ✗ and
 * the reason, and how to install what is missing on this system. With `--install` it runs
 * the package manager's command, each after a confirmation.
 *
 * @module
 */
import { join } from "node:path";
import type { Agent } from "./agent.ts";
import { findLlamaServer } from "./commands/llamacpp.ts";
import { formatSize, GGUF_KIND, LLAMAFILE_KIND, ModelRegistry } from "./commands/model_registry.ts";
import {
  buildNumber,
  findOneShot,
  FIRST_CHAT_ONLY_BUILD,
  programVersion,
} from "./llm/llama_cli.ts";
import { findOnPath } from "./runtime/spawn.ts";
import { probeSandbox, sandboxLines } from "./security/sandbox.ts";
import type { Output } from "./types.ts";

/** Where pre-built llamafiles are listed. */
export const LLAMAFILE_DOWNLOADS =
  "https://docs.mozilla.ai/llamafile/getting-started/pre-built-llamafiles";
/** Where Ollama is downloaded. */
export const OLLAMA_DOWNLOAD = "https://ollama.com/download";

/** One finding. */
export interface Check {
  ok: boolean;
  /** What was checked, e.g. `llama-server`. */
  label: string;
  /** The path, version, or the reason it failed. */
  detail: string;
}

/** A package-manager command that installs something missing. */
export interface InstallStep {
  /** What it installs, e.g. `llama.cpp (llama-server, llama-cli)`. */
  what: string;
  argv: string[];
}

/** What the doctor found. */
export interface DoctorReport {
  checks: Check[];
  /** Install hints, one line each. */
  hints: string[];
  /** Commands `--install` may run. */
  steps: InstallStep[];
  /** True when at least one way to run a model was found. */
  usable: boolean;
}

/** How to examine the system; the defaults are this machine's. */
export interface DoctorOptions {
  /** Run the install steps, each after a confirmation. */
  install?: boolean;
  /** The operating system to give advice for (default: this one). */
  os?: typeof Deno.build.os;
  /** Whether Harvey runs as root (no `sudo` then); default from `Deno.uid()`. */
  isRoot?: boolean;
}

const PERMISSIONS: [Deno.PermissionDescriptor, string][] = [
  [{ name: "read" }, "read"],
  [{ name: "write" }, "write"],
  [{ name: "net", host: "127.0.0.1" }, "net"],
  [{ name: "env" }, "env"],
  [{ name: "run" }, "run"],
];

async function permissionChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [desc, flag] of PERMISSIONS) {
    const { state } = await Deno.permissions.query(desc);
    const scope = desc.name === "net" ? " for 127.0.0.1" : "";
    checks.push({
      ok: state === "granted",
      label: `permission ${flag}`,
      detail: state === "granted"
        ? `granted${scope}`
        : `not granted${scope} — run Harvey with --allow-${flag}${
          desc.name === "net" ? "=127.0.0.1,localhost" : ""
        }`,
    });
  }
  return checks;
}

async function run(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number; text: string } | undefined> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } catch {
    return undefined;
  }
}

/** Whether apt offers `pkg` (a `Candidate:` other than `(none)` in `apt-cache policy`). */
async function aptHas(pkg: string, env: Record<string, string>): Promise<boolean> {
  const aptCache = findOnPath("apt-cache", env.PATH ?? "");
  if (!aptCache) return false;
  const r = await run([aptCache, "policy", pkg], env);
  const m = /Candidate:\s*(\S+)/.exec(r?.text ?? "");
  return m !== null && m[1] !== "(none)";
}

async function ollamaServer(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/api/version`, { signal: AbortSignal.timeout(1_500) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return ((await res.json()) as { version?: string }).version ?? "unknown version";
  } catch {
    return undefined;
  }
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** Examines the system for `agent`'s workspace; writes nothing. */
export async function examine(agent: Agent, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const env = agent.env;
  const path = env.PATH ?? "";
  const os = opts.os ?? Deno.build.os;
  const checks = await permissionChecks();
  const hints: string[] = [];
  const steps: InstallStep[] = [];
  const sudo = (opts.isRoot ?? isRoot()) ? [] : findOnPath("sudo", path) ? ["sudo"] : [];
  const brew = findOnPath("brew", path);
  const aptGet = os === "linux" ? findOnPath("apt-get", path) : undefined;

  if (os === "linux") {
    const setpriv = findOnPath("setpriv", path);
    checks.push({
      ok: setpriv !== undefined,
      label: "setpriv",
      detail: setpriv
        ? `${setpriv} — servers die with Harvey even on kill -9`
        : "not found — a server may outlive Harvey after kill -9 (the next Harvey adopts it)",
    });
    if (!setpriv) {
      hints.push("setpriv: apt install util-linux (or your distribution's util-linux)");
      if (aptGet) {
        steps.push({ what: "setpriv", argv: [...sudo, aptGet, "install", "-y", "util-linux"] });
      }
    }
  }

  const sandbox = await probeSandbox({ env, os });
  const [covers] = sandboxLines(sandbox, { network: agent.config.config.sandbox.network });
  checks.push({
    ok: sandbox.available,
    label: "sandbox",
    detail: sandbox.available ? covers : `${sandbox.detail} — the model's commands are refused`,
  });
  if (!sandbox.available && sandbox.howTo) hints.push(`sandbox: ${sandbox.howTo}`);

  const cfg = agent.config.config.llamacpp;
  const server = findLlamaServer(agent);
  checks.push({
    ok: server !== undefined,
    label: "llama-server",
    detail: server
      ? `${server} — ${(await programVersion(server, { env })) ?? "no version reported"}`
      : `not found on PATH (llamacpp.server_bin: ${cfg.server_bin})`,
  });
  const found = findOneShot(cfg.cli_bin, path);
  const oneShotVersion = found ? await programVersion(found.path, { env }) : undefined;
  // Since build 7348 llama-cli is an interactive chat: --gguf cannot use it as the fallback.
  const build = buildNumber(oneShotVersion);
  const chatOnly = found?.name === "llama-cli" && build !== undefined &&
    build >= FIRST_CHAT_ONLY_BUILD;
  const oneShot = chatOnly ? undefined : found;
  checks.push({
    ok: oneShot !== undefined,
    label: found?.name ?? "llama-cli",
    detail: chatOnly
      ? `${found.path} — build ${build} is an interactive chat only, no one-shot fallback ` +
        "(install llama-server, or llama-completion from the same llama.cpp package)"
      : found
      ? `${found.path} — ${oneShotVersion ?? "no version reported"}`
      : `not found on PATH (llamacpp.cli_bin: ${cfg.cli_bin}; the one-shot fallback)`,
  });
  if (!server) {
    const apt = os === "linux" && aptGet !== undefined && await aptHas("llama.cpp", env);
    hints.push(
      "llama.cpp (llama-server, llama-cli): " + [
        ...(os === "darwin" || brew ? ["brew install llama.cpp"] : []),
        ...(os === "linux"
          ? [
            apt
              ? "sudo apt install llama.cpp"
              : "apt install llama.cpp on Debian 13+ or Ubuntu 26.04+ (not in this system's apt sources)",
          ]
          : []),
        "or build it from https://github.com/ggml-org/llama.cpp",
      ].join(", "),
    );
    if (apt) {
      steps.push({ what: "llama.cpp", argv: [...sudo, aptGet!, "install", "-y", "llama.cpp"] });
    } else if (brew) steps.push({ what: "llama.cpp", argv: [brew, "install", "llama.cpp"] });
  }

  const ollama = findOnPath("ollama", path);
  const ollamaVersion = ollama ? await programVersion(ollama, { env }) : undefined;
  checks.push({
    ok: ollama !== undefined,
    label: "ollama",
    detail: ollama ? `${ollama} — ${ollamaVersion ?? "no version reported"}` : "not found on PATH",
  });
  const running = await ollamaServer(agent.settings.ollamaUrl);
  checks.push({
    ok: running !== undefined,
    label: "Ollama server",
    detail: running
      ? `running at ${agent.settings.ollamaUrl} (${running})`
      : `not running at ${agent.settings.ollamaUrl}${
        ollama ? " — ollama serve, or /ollama start" : ""
      }`,
  });
  if (!ollama) {
    hints.push(
      `Ollama: ${OLLAMA_DOWNLOAD}${os === "darwin" || brew ? " (or brew install ollama)" : ""}`,
    );
    if (os === "darwin" && brew) steps.push({ what: "Ollama", argv: [brew, "install", "ollama"] });
  }

  const models = await modelChecks(agent, checks);
  if (models.llamafiles === 0) {
    hints.push(
      `llamafile: download one from ${LLAMAFILE_DOWNLOADS} into ${models.dir}, then /llamafile add`,
    );
  }
  const usable = server !== undefined || oneShot !== undefined || running !== undefined ||
    models.llamafiles > 0 || agent.config.config.llamafile.models.length > 0;
  return { checks, hints, steps, usable };
}

async function modelChecks(
  agent: Agent,
  checks: Check[],
): Promise<{ dir: string; llamafiles: number }> {
  const registries = [
    new ModelRegistry(agent, LLAMAFILE_KIND),
    new ModelRegistry(agent, GGUF_KIND),
  ];
  const dir = registries[0].shown(agent.settings.modelsDir);
  const files: { name: string; size: number }[] = [];
  let exists = true;
  try {
    for await (const e of Deno.readDir(agent.settings.modelsDir)) {
      if (!/\.(llamafile|gguf)$/i.test(e.name)) continue;
      try {
        const info = await Deno.stat(join(agent.settings.modelsDir, e.name));
        if (info.isFile) files.push({ name: e.name, size: info.size });
      } catch {
        // a dangling link
      }
    }
  } catch {
    exists = false;
  }
  files.sort((a, b) => a.name.localeCompare(b.name));
  checks.push({
    ok: exists && files.length > 0,
    label: "models folder",
    detail: !exists
      ? `${dir} does not exist — create it and download models there (or set --llamafile-dir)`
      : files.length
      ? `${dir}: ${files.length} model file${files.length === 1 ? "" : "s"}${
        files.map((f) => `\n      ${f.name} (${formatSize(f.size)})`).join("")
      }`
      : `${dir} has no .llamafile or .gguf files`,
  });
  let registered = 0;
  for (const registry of registries) {
    for (const entry of registry.entries) {
      registered++;
      try {
        await Deno.stat(registry.resolve(entry.path));
      } catch {
        checks.push({
          ok: false,
          label: "registered model",
          detail: `${entry.name} (${registry.kind.noun}): no file at ${
            registry.shown(entry.path)
          } — ${registry.kind.command} remove ${entry.name}, or put the file back`,
        });
      }
    }
  }
  if (registered && !checks.some((c) => c.label === "registered model")) {
    checks.push({
      ok: true,
      label: "registered models",
      detail: `${registered}, every file present`,
    });
  }
  const llamafiles = files.filter((f) => /\.llamafile$/i.test(f.name)).length;
  return { dir, llamafiles };
}

/** Writes a report: one line per check, then how to install what is missing. */
export function writeReport(report: DoctorReport, out: Output): void {
  const width = Math.max(...report.checks.map((c) => c.label.length));
  for (const c of report.checks) {
    out.write(`${c.ok ? "✓" : "✗"} ${c.label.padEnd(width)}  ${c.detail}\n`);
  }
  if (report.hints.length) {
    out.write("\nTo get what is missing:\n");
    for (const h of report.hints) out.write(`  → ${h}\n`);
  }
  if (!report.usable) {
    out.write("\nNo way to run a model was found yet: install one of the above.\n");
  }
}

/**
 * `harvey doctor [--install]`: examines, reports, and with `install` runs each install step
 * after the user confirms it (never without). Returns the exit status: 0 when a model can be
 * run, 1 otherwise.
 */
export async function runDoctor(
  agent: Agent,
  out: Output,
  opts: DoctorOptions = {},
): Promise<number> {
  const report = await examine(agent, opts);
  writeReport(report, out);
  if (!opts.install) {
    if (report.steps.length) {
      out.write(
        `\nharvey doctor --install runs: ${report.steps.map((s) => s.argv.join(" ")).join("; ")}\n`,
      );
    }
    return report.usable ? 0 : 1;
  }
  if (!report.steps.length) {
    out.write("\nNothing to install with a package manager here.\n");
    return report.usable ? 0 : 1;
  }
  let installed = false;
  for (const step of report.steps) {
    const command = step.argv.join(" ");
    if (!await agent.asker.confirm(`Install ${step.what}: run "${command}"?`, false)) {
      out.write(`Skipped ${step.what}.\n`);
      continue;
    }
    out.write(`$ ${command}\n`);
    const code = await stream(step.argv, agent.env, out);
    out.write(code === 0 ? `✓ Installed ${step.what}\n` : `✗ ${command} exited with ${code}\n`);
    installed ||= code === 0;
  }
  if (!installed) return report.usable ? 0 : 1;
  const after = await examine(agent, opts);
  out.write("\nAfter installing:\n");
  writeReport(after, out);
  return after.usable ? 0 : 1;
}

/** Runs `argv` with its output copied to `out` as it comes; the terminal stays its stdin. */
async function stream(argv: string[], env: Record<string, string>, out: Output): Promise<number> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env,
      clearEnv: true,
      stdin: "inherit",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    out.write(`✗ ${argv[0]}: ${(err as Error).message}\n`);
    return 127;
  }
  const copy = async (s: ReadableStream<Uint8Array>) => {
    for await (const text of s.pipeThrough(new TextDecoderStream())) out.write(text);
  };
  await Promise.all([copy(child.stdout), copy(child.stderr)]);
  return (await child.status).code;
}
