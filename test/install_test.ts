import assert from "node:assert/strict";
import { join } from "node:path";
import { VERSION } from "../src/cli.ts";

const ROOT = new URL("../", import.meta.url);

/** Runs `deno task install` as a user would, with `deno` at `denoPath`. */
async function install(denoPath: string, env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(denoPath, {
    args: ["task", "install"],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  return text;
}

async function launch(
  launcher: string,
  env: Record<string, string>,
): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(launcher, {
    args: ["--version"],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test({
  name: "deno task install gives a launcher that runs where only Node (npx) is installed",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "harvey_install_" });
    try {
      // A Deno of its own, as npx's cache holds one: removed below, as a cache may be.
      const denoDir = join(dir, "npx-cache");
      await Deno.mkdir(denoDir);
      const deno = join(denoDir, "deno");
      await Deno.link(Deno.execPath(), deno).catch(() => Deno.copyFile(Deno.execPath(), deno));
      const cache = Deno.env.get("DENO_DIR") ??
        join(Deno.env.get("HOME") ?? "", ".cache", "deno");
      const root = join(dir, "root");
      const said = await install(deno, {
        HOME: dir,
        DENO_INSTALL_ROOT: root,
        DENO_DIR: cache,
        PATH: "/usr/bin:/bin",
      });
      const launcher = join(root, "bin", "harvey");
      assert.match(said, new RegExp(`✓ Installed ${launcher}`));
      assert.match(said, /is not on your PATH; add it/);
      const text = await Deno.readTextFile(launcher);
      const task = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.harvey;
      for (const flag of task.split(/\s+/).filter((w: string) => w.startsWith("--"))) {
        assert.ok(text.includes(`'${flag}'`), `the launcher passes ${flag}`);
      }
      assert.doesNotMatch(text, /'-A'|--allow-all/);

      // No deno on PATH, the installing Deno still there: it is used.
      const bin = join(dir, "bin");
      await Deno.mkdir(bin);
      const env = { HOME: dir, DENO_DIR: cache, PATH: `${bin}:/usr/bin:/bin` };
      const direct = await launch(launcher, env);
      assert.equal(direct.code, 0, direct.text);
      assert.equal(direct.text, `${VERSION}\n`);

      // Only npx left (Node's): the launcher runs Deno through it.
      await Deno.remove(deno);
      const npxLog = join(dir, "npx.log");
      await Deno.writeTextFile(
        join(bin, "npx"),
        `#!/bin/sh\necho "$@" > '${npxLog}'\nshift 2\nexec '${Deno.execPath()}' "$@"\n`,
      );
      await Deno.chmod(join(bin, "npx"), 0o755);
      const viaNpx = await launch(launcher, env);
      assert.equal(viaNpx.code, 0, viaNpx.text);
      assert.equal(viaNpx.text, `${VERSION}\n`);
      assert.match(
        await Deno.readTextFile(npxLog),
        new RegExp(`^-y deno@${Deno.version.deno} run `),
      );

      // Neither: one line that says what to install.
      await Deno.remove(join(bin, "npx"));
      const none = await launch(launcher, { ...env, PATH: bin });
      assert.equal(none.code, 127);
      assert.match(none.text, /^harvey: neither deno nor npx was found on PATH; install Node/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the quick start in Harvey's own folder changes no tracked file: harvey.yaml is ignored", async () => {
  const git = async (...args: string[]) =>
    (await new Deno.Command("git", { args, cwd: ROOT, stdout: "null", stderr: "null" }).output())
      .code;
  if (await git("rev-parse", "--git-dir").catch(() => 1) !== 0) return; // not a checkout
  assert.notEqual(await git("ls-files", "--error-unmatch", "agents/harvey.yaml"), 0, "tracked");
  assert.equal(await git("check-ignore", "-q", "agents/harvey.yaml"), 0, "not ignored");
  assert.equal(await git("ls-files", "--error-unmatch", "agents/harvey.example.yaml"), 0);
});
