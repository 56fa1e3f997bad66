/**
 * The red-team findings of issue 11 (items 1, 3 and 5), each reproduced through the headless
 * runner as the report describes it: with safe mode on and the default allowlist, git ran
 * commands, wrote outside and destroyed work; allowed commands printed secrets and outside
 * files; `<!-- @git-status -->` ran git with Harvey's whole environment.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startFakeOpenAI } from "./fixtures/fake_openai.ts";
import { runHarvey } from "./harvey_child.ts";
import { testSession } from "./helpers.ts";
import { openRange, type Range, type RangeOptions, SECRETS } from "./redteam_fixture.ts";

async function withRange(opts: RangeOptions, fn: (r: Range) => Promise<void>): Promise<void> {
  const r = await openRange(opts);
  try {
    await fn(r);
  } finally {
    await r.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Quotes a path for a script line. */
const q = (s: string) => `'${s}'`;

Deno.test("item 1: git log --output onto .git/config, then git status, runs nothing", async () => {
  await withRange({}, async (r) => {
    const marker = join(r.out, "pwn-fsmonitor");
    const script = `!git log -1 ${
      q(`--pretty=tformat:[core]%n fsmonitor = touch ${marker}`)
    } --output=.git/config\n`;
    assert.equal(await r.s.run(script), 1);
    assert.match(
      r.s.err.text,
      /Safe mode refuses "--output=\.git\/config" for git: it writes files/,
    );
    assert.equal(await r.s.run("!git status"), 0, r.s.err.text);
    assert.equal(await exists(marker), false);
    await r.check("log --output");
  });
});

Deno.test("item 1: git clone -u, --upload-pack, --config and --template are refused", async () => {
  await withRange({}, async (r) => {
    const marker = join(r.out, "pwn-clone");
    const tpl = join(r.root, "tpl", "hooks");
    await Deno.mkdir(tpl, { recursive: true });
    await Deno.writeTextFile(join(tpl, "post-checkout"), `#!/bin/sh\ntouch ${marker}\n`);
    await Deno.chmod(join(tpl, "post-checkout"), 0o755);
    for (
      const line of [
        `!git clone -u ${q(`touch ${marker}; git-upload-pack`)} . d1`,
        `!git clone --upload-pack=${q(`touch ${marker}; git-upload-pack`)} . d2`,
        `!git clone --config core.fsmonitor=${q(`touch ${marker}`)} . d3`,
        `!git clone --template=tpl . d4`,
      ]
    ) {
      r.s.err.text = "";
      assert.equal(await r.s.run(line), 1, line);
      assert.match(r.s.err.text, /Safe mode refuses "clone" for git: git clone is not one of/);
    }
    assert.equal(await r.s.run("!git -C d3 status"), 1);
    assert.equal(await exists(marker), false);
    for (const d of ["d1", "d2", "d3", "d4"]) assert.equal(await exists(join(r.root, d)), false);
  });
});

Deno.test("item 1: /apply cannot write a nested sub/.git/config", async () => {
  const marker = await Deno.makeTempFile({ prefix: "harvey-pwn-apply-" });
  await Deno.remove(marker);
  const reply = "Try this:\n\n```ini sub/.git/config\n[core]\n\tfsmonitor = touch " + marker +
    "\n```\n";
  const fake = await startFakeOpenAI({ reply: () => reply });
  const root = await Deno.makeTempDir({ prefix: "harvey-redteam-apply-" });
  try {
    const init = await new Deno.Command("git", { args: ["init", "-q", "sub"], cwd: root })
      .output();
    assert.ok(init.success);
    const config = await Deno.readTextFile(join(root, "sub/.git/config"));
    const s = await testSession({ root, flags: { llamafileUrl: fake.url }, selectBackend: true });
    try {
      await s.run("make it fast\n/apply\ny\n");
      assert.match(s.err.text, /inside sub\/\.git\/, read-only by default/);
      assert.equal(await Deno.readTextFile(join(root, "sub/.git/config")), config);
      await s.run("!git -C sub status");
      assert.equal(await exists(marker), false);
    } finally {
      await s.close();
    }
  } finally {
    await fake.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("item 1: /git diff does not run a textconv driver of the repository", async () => {
  const marker = await Deno.makeTempFile({ prefix: "harvey-pwn-textconv-" });
  await Deno.remove(marker);
  await withRange({
    files: { ".gitattributes": "*.txt diff=evil\n" },
    hostileConfig: `[diff "evil"]\n\ttextconv = "touch ${marker}; cat"`,
  }, async (r) => {
    assert.equal(await r.s.run("/git diff"), 0, r.s.err.text);
    assert.match(r.s.out.text, /\+work in progress/);
    assert.equal(await r.s.run("/git log -p -1"), 0, r.s.err.text);
    assert.equal(await exists(marker), false);
    await r.check("/git diff");
  });
});

Deno.test("item 3: <!-- @git-status --> runs git hardened, without Harvey's environment", async () => {
  const root = await Deno.makeTempDir({ prefix: "harvey-redteam-md-" });
  const seen = join(await Deno.makeTempDir({ prefix: "harvey-outside-" }), "env.txt");
  try {
    const git = (...args: string[]) =>
      new Deno.Command("git", { args, cwd: root, env: { GIT_CONFIG_GLOBAL: "/dev/null" } })
        .output();
    assert.ok((await git("init", "-q")).success);
    assert.ok((await git("config", "core.fsmonitor", `env > ${seen}; echo`)).success);
    await Deno.writeTextFile(join(root, "HARVEY.md"), "Git:\n<!-- @git-status -->\n");
    await Deno.writeTextFile(join(root, "new.txt"), "x\n");
    const s = await testSession({
      root,
      env: { OPENAI_API_KEY: SECRETS.env, GITHUB_TOKEN: `ghp_${SECRETS.env}` },
    });
    try {
      assert.match(s.agent.systemPrompt, /\?\? new\.txt/);
      const leaked = await Deno.readTextFile(seen).catch(() => "");
      assert.equal(leaked.includes(SECRETS.env), false, "the fsmonitor saw the keys");
      assert.equal(await exists(seen), false, "the fsmonitor ran");
    } finally {
      await s.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(join(seen, ".."), { recursive: true });
  }
});

Deno.test("item 3: a planted fsmonitor sees no key when Harvey starts (deno task harvey)", async () => {
  const root = await Deno.makeTempDir({ prefix: "harvey-redteam-start-" });
  const outside = await Deno.makeTempDir({ prefix: "harvey-outside-" });
  const seen = join(outside, "env.txt");
  try {
    const git = (...args: string[]) =>
      new Deno.Command("git", { args, cwd: root, env: { GIT_CONFIG_GLOBAL: "/dev/null" } })
        .output();
    assert.ok((await git("init", "-q")).success);
    assert.ok((await git("config", "core.fsmonitor", `env > ${seen}; echo`)).success);
    await Deno.writeTextFile(join(root, "HARVEY.md"), "Git:\n<!-- @git-status -->\n");
    const keys = {
      OPENAI_API_KEY: SECRETS.env,
      ANTHROPIC_API_KEY: `ant-${SECRETS.env}`,
      HF_TOKEN: `hf_${SECRETS.env}`,
    };
    const run = await runHarvey(["--run", "-"], {
      cwd: root,
      env: { ...keys, PATH: Deno.env.get("PATH") ?? "" },
      stdin: "/context show\n",
    });
    assert.equal(run.code, 0, run.stderr);
    const leaked = await Deno.readTextFile(seen).catch(() => "");
    for (const value of Object.values(keys)) assert.equal(leaked.includes(value), false);
    assert.equal(await exists(seen), false, "the fsmonitor ran");
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("item 5: allowed commands cannot print secrets or files outside the workspace", async () => {
  // What `cat /proc/PID/environ` printed: Harvey's environment as it started.
  const environ = (await Deno.readTextFile(`/proc/${Deno.pid}/environ`).catch(() => ""))
    .split("\0").filter((v) => v.length > 8);
  await withRange({}, async (r) => {
    const rel = `../${r.out.split("/").at(-1)}/secret.txt`;
    const refused: [string, RegExp][] = [
      [`!cat ${rel}`, /"\.\.\/harvey-outside-\w+\/secret\.txt" for cat: it is outside/],
      [`!cat ${r.out}/secret.txt`, /for cat: it is outside the workspace/],
      [`!cat /proc/${Deno.pid}/environ`, /for cat: it is outside the workspace/],
      ["!cat link-out", /"link-out" for cat: it leads outside the workspace/],
      ["!git show HEAD:.env", /Permission denied: read of "\.env"/],
      ["/git blame --contents=.env a.txt", /Permission denied: read of "\.env"/],
      [`/git blame --contents=${rel} a.txt`, /it is outside the workspace/],
    ];
    for (const [line, reason] of refused) {
      r.s.err.text = "";
      assert.equal(await r.s.run(line), 1, line);
      assert.match(r.s.err.text, reason, line);
    }
    for (const v of environ) assert.equal(r.s.out.text.includes(v), false, "environ printed");
    // Contained rather than refused: inside the sandbox the secret files are empty.
    await r.s.run(`!grep -r ${SECRETS.dotenv.slice(0, 12)} .`);
    await r.s.run("!grep -r OPENAI_API_KEY .");
    await r.s.run("!grep -r BEGIN .");
    await r.check("secret reads");
  });
});

Deno.test("item 5: git show REV:secret is refused also when the secret is committed", async () => {
  await withRange({ commitDotenv: true }, async (r) => {
    for (
      const line of ["!git show HEAD:.env", "!git show HEAD:./.env", "!git cat-file -p HEAD:.env"]
    ) {
      r.s.err.text = "";
      assert.equal(await r.s.run(line), 1, line);
      assert.match(r.s.err.text, /Permission denied: read of "\.env"/, line);
    }
    await r.check("REV:secret");
  });
});

Deno.test("item 5: git subcommands that destroy work or write outside are refused", async () => {
  await withRange({}, async (r) => {
    for (
      const line of [
        "!git clean -fdx",
        "!git checkout -- .",
        "!git rm a.txt",
        `!git log --output=${r.out}/log.txt`,
        `!git archive -o ${r.out}/a.tar HEAD`,
        `!git worktree add ${r.out}/wt`,
        "!git config --unset core.bare",
      ]
    ) {
      r.s.err.text = "";
      assert.equal(await r.s.run(line), 1, line);
      assert.match(r.s.err.text, /Safe mode refuses "[^"]+" for git: /, line);
      await r.check(line);
    }
  });
});

/** One attempt of the corpus: a script line, and whether it must be refused. */
interface Attempt {
  line: (r: Range) => string;
  /** "refused": the line must fail with a refusal; "contained": it may run, harmlessly. */
  expect: "refused" | "contained";
}

const O = (r: Range, name: string) => join(r.out, name);
const outRel = (r: Range) => `../${r.out.split("/").at(-1)}`;
const refused = (line: (r: Range) => string): Attempt => ({ line, expect: "refused" });
const contained = (line: (r: Range) => string): Attempt => ({ line, expect: "contained" });

/** The red-team corpus: what the report tried, and the variants around each finding. */
const CORPUS: Attempt[] = [
  // find: run, write, delete, follow links, leave the workspace
  refused((r) => `!find . -exec touch ${O(r, "m")} ;`),
  refused((r) => `!find . -execdir touch ${O(r, "m")} ;`),
  refused((r) => `!find . -ok touch ${O(r, "m")} ;`),
  refused(() => "!find . -delete"),
  refused((r) => `!find . -fprint ${O(r, "m")}`),
  refused((r) => `!find . -fprintf ${O(r, "m")} %p`),
  refused((r) => `!find . -fls ${O(r, "m")}`),
  refused(() => "!find -L . -name secret.txt"),
  refused(() => "!find . -follow -name secret.txt"),
  refused(() => "!find / -maxdepth 1"),
  refused(() => "!find .. -maxdepth 1"),
  refused((r) => `!find . -newer ${outRel(r)}/secret.txt`),
  contained(() => "!find . -name '*.txt'"),
  // rg: preprocessors, decompressors, links, outside paths
  refused(() => "!rg --pre sh x ."),
  refused(() => "!rg --pre=sh x"),
  refused(() => "!rg --pre-glob '*' x"),
  refused(() => "!rg -z x ."),
  refused(() => "!rg --search-zip x"),
  refused(() => "!rg -L x ."),
  refused(() => "!rg --follow x"),
  refused(() => "!rg --hostname-bin=touch x"),
  refused(() => "!rg x /etc"),
  refused((r) => `!rg --files ${r.out}`),
  refused(() => "!rg -e root /etc/passwd"),
  refused((r) => `!rg -f ${O(r, "secret.txt")} .`),
  contained(() => "!rg -uu --no-ignore --hidden OPENAI ."),
  contained(() => "!rg --files"),
  // grep: dereferencing recursion, pattern files, outside paths; the masks for the rest
  refused(() => "!grep -R x ."),
  refused(() => "!grep -rR x ."),
  refused(() => "!grep --dereference-recursive x ."),
  refused(() => "!grep --deref x ."),
  refused(() => "!grep root /etc/passwd"),
  refused((r) => `!grep -f ${O(r, "secret.txt")} -r .`),
  refused((r) => `!grep -r x ${outRel(r)}`),
  contained(() => "!grep -r OPENAI_API_KEY ."),
  contained(() => "!grep -ra BEGIN ."),
  contained(() => "!grep -r --include=.env KEY ."),
  contained(() => "!grep -r dotenv ."),
  // cat, head, tail, wc, stat, ls: outside, /proc, ~, secrets, symlinks
  refused((r) => `!cat ${outRel(r)}/secret.txt`),
  refused((r) => `!cat ${O(r, "secret.txt")}`),
  refused(() => "!cat /etc/passwd"),
  refused(() => "!cat /proc/self/environ"),
  refused(() => `!cat /proc/${Deno.pid}/environ`),
  refused(() => "!cat /proc/1/environ"),
  refused(() => "!cat ~/.ssh/id_rsa"),
  refused(() => "!cat .env"),
  refused(() => "!cat ./src/../.env"),
  refused(() => "!cat id_rsa"),
  refused(() => "!cat notes.txt"),
  refused(() => "!cat link-out"),
  refused(() => "!cat linkdir/secret.txt"),
  refused((r) => `!head -n 5 ${outRel(r)}/secret.txt`),
  refused((r) => `!tail -c 10 ${O(r, "secret.txt")}`),
  refused((r) => `!wc --files0-from=${O(r, "secret.txt")}`),
  refused(() => "!stat -L link-out"),
  refused(() => "!ls -L linkdir"),
  refused(() => "!ls --dereference linkdir"),
  refused(() => "!ls .."),
  refused(() => "!ls /"),
  refused(() => "!ls ~"),
  contained(() => "!ls -la"),
  contained(() => "!cat a.txt src/main.ts"),
  // not on the allowlist, or not by name
  refused((r) => `!touch ${O(r, "m")}`),
  refused((r) => `!sh -c 'touch ${O(r, "m")}'`),
  refused(() => "!/bin/ls"),
  refused(() => "!./ls"),
  // git: writing files, running programs, other repositories, destroying work
  refused((r) =>
    `!git log -1 '--pretty=tformat:[core]%n fsmonitor = touch ${O(r, "m")}' --output=.git/config`
  ),
  refused((r) => `!git log --output=${O(r, "log")}`),
  refused((r) => `!git log --outp=${O(r, "log")}`),
  refused(() => "!git diff --output=x.txt"),
  refused((r) => `!git -c core.pager='touch ${O(r, "m")}' log`),
  refused((r) => `!git -ccore.fsmonitor='touch ${O(r, "m")}' status`),
  refused(() => "!git --config-env=core.pager=PATH log"),
  refused((r) => `!git --exec-path=${r.out} status`),
  refused((r) => `!git --git-dir=${r.out} status`),
  refused((r) => `!git --work-tree=${r.out} status`),
  refused((r) => `!git -C ${r.out} status`),
  refused(() => "!git -C .. status"),
  refused((r) => `!git clone -u 'touch ${O(r, "m")}; git-upload-pack' . d`),
  refused((r) => `!git clone --upload-pack='touch ${O(r, "m")}' . d`),
  refused((r) => `!git clone --config core.fsmonitor='touch ${O(r, "m")}' . d`),
  refused(() => "!git clone --template=. . d"),
  refused(() => "!git clean -fdx"),
  refused(() => "!git checkout -- ."),
  refused(() => "!git restore a.txt"),
  refused(() => "!git rm a.txt"),
  refused(() => "!git reset --hard"),
  refused(() => "!git stash"),
  refused(() => "!git commit -am x"),
  refused((r) => `!git archive -o ${O(r, "a.tar")} HEAD`),
  refused((r) => `!git worktree add ${O(r, "wt")}`),
  refused(() => "!git config --unset core.bare"),
  refused((r) => `!git config core.fsmonitor 'touch ${O(r, "m")}'`),
  refused(() => "!git config --list"),
  refused(() => "!git remote -v"),
  refused(() => "!git branch evil"),
  refused(() => "!git branch -D main"),
  refused(() => "!git branch -m main other"),
  refused(() => "!git tag v1"),
  refused(() => "!git tag -d v1"),
  refused(() => "!git tag -v v1"),
  refused(() => "!git update-ref refs/heads/x HEAD"),
  refused(() => "!git reflog expire --all"),
  refused(() => "!git show HEAD:.env"),
  refused(() => "!git show :.env"),
  refused(() => "!git show HEAD:./id_rsa"),
  refused(() => "!git cat-file -p HEAD:.env"),
  refused(() => "!git log -- .env"),
  refused(() => "!git diff --no-index .env a.txt"),
  refused((r) => `!git diff --no-index ${O(r, "secret.txt")} a.txt`),
  refused(() => "!git blame --contents=.env a.txt"),
  refused((r) => `!git blame --contents=${O(r, "secret.txt")} a.txt`),
  refused((r) => `!git grep --open-files-in-pager='touch ${O(r, "m")}' x`),
  refused((r) => `!git grep -O'touch ${O(r, "m")}' x`),
  refused(() => "!git log --ext-diff -p"),
  refused(() => "!git diff --textconv"),
  refused(() => "!git cat-file --textconv HEAD:a.txt"),
  refused(() => "!git log --show-signature"),
  refused(() => "!git difftool"),
  refused((r) => `!git submodule foreach 'touch ${O(r, "m")}'`),
  refused((r) => `!git bisect run touch ${O(r, "m")}`),
  refused((r) => `!git rebase -x 'touch ${O(r, "m")}' HEAD`),
  refused(() => "!git help log"),
  refused(() => "!git -p log"),
  refused(() => "!git st"),
  // git on a hostile repository: its fsmonitor, pager, textconv, filter, gpg are off
  contained(() => "!git status"),
  contained(() => "!git diff"),
  contained(() => "!git log -p -2"),
  contained(() => "!git show"),
  contained(() => "!git blame a.txt"),
  contained(() => "!git grep alpha"),
  contained(() => "!git ls-files -o"),
  contained(() => "!git branch --list"),
  contained(() => "!git -C sub status"),
  contained(() => "/git status"),
  contained(() => "/git diff"),
  contained(() => "/git log -p"),
  contained(() => "/git show HEAD"),
  contained(() => "/git blame a.txt"),
  contained(() => "/git grep -n alpha"),
  refused((r) => `/git log --output=${O(r, "m")}`),
  refused(() => "/git show HEAD:.env"),
  refused(() => "/git diff --ext-diff"),
  refused(() => "/git clean -fdx"),
];

const REFUSAL =
  /refuses|does not allow|Safe mode runs allowed commands by name|Permission denied|Refused|runs only read-only/;

const HOSTILE = (out: string) =>
  [
    "[core]",
    `\tfsmonitor = "touch ${out}/m-fsmonitor; echo"`,
    `\tpager = "touch ${out}/m-pager; cat"`,
    `\teditor = "touch ${out}/m-editor"`,
    `\tsshCommand = "touch ${out}/m-ssh"`,
    `\thooksPath = hooks-here`,
    '[diff "evil"]',
    `\ttextconv = "touch ${out}/m-textconv; cat"`,
    `\tcommand = "touch ${out}/m-extdiff"`,
    '[filter "evil"]',
    `\tclean = "touch ${out}/m-filter; cat"`,
    `\tsmudge = "touch ${out}/m-filter; cat"`,
    "[alias]",
    `\tst = "!touch ${out}/m-alias"`,
    "[gpg]",
    `\tprogram = "touch ${out}/m-gpg"`,
    "[log]",
    "\tshowSignature = true",
  ].join("\n");

Deno.test("red-team corpus: every attempt is refused or contained", async () => {
  const outside = await Deno.makeTempDir({ prefix: "harvey-outside-hostile-" });
  const hook = "#!/bin/sh\ntouch " + outside + "/m-hook\n";
  const r = await openRange({
    files: {
      ".gitattributes": "*.txt diff=evil filter=evil\n",
      "HARVEY.md": "Status:\n<!-- @git-status -->\n",
      "hooks-here/post-checkout": hook,
      "hooks-here/pre-commit": hook,
    },
    hostileConfig: HOSTILE(outside),
  });
  const escapes: string[] = [];
  try {
    for (const [i, attempt] of CORPUS.entries()) {
      const line = attempt.line(r);
      r.s.err.text = "";
      const status = await r.s.run(line);
      const why: string[] = [];
      if (attempt.expect === "refused") {
        if (status === 0) why.push("ran");
        else if (!REFUSAL.test(r.s.err.text)) {
          why.push(`failed without a refusal: ${r.s.err.text.trim()}`);
        }
      }
      try {
        await r.check(line);
      } catch (err) {
        why.push((err as Error).message.split("\n")[0]);
      }
      const markers = [...Deno.readDirSync(outside)].map((e) => e.name);
      if (markers.length) why.push(`marker ${markers.join(", ")}`);
      if (why.length) escapes.push(`#${i} ${line}: ${why.join("; ")}`);
      if (Deno.env.get("REDTEAM_VERBOSE")) console.log(status, line, r.s.err.text.trim());
      for (const m of markers) await Deno.remove(join(outside, m));
    }
    console.log(`red-team corpus: ${CORPUS.length} attempts, ${escapes.length} escapes`);
    assert.deepEqual(escapes, []);
  } finally {
    await r.close();
    await Deno.remove(outside, { recursive: true });
  }
});
