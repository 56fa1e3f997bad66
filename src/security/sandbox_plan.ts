/**
 * The command lines of the OS sandbox, built from a plan: bubblewrap's arguments on Linux and
 * a `sandbox-exec` profile on macOS. Pure functions: they look at nothing but their arguments.
 *
 * @module
 */

/** Everything the sandbox of one command needs to know, as absolute real paths. */
export interface SandboxPlan {
  /** The workspace. */
  root: string;
  /** Whether the workspace is writable (except `readOnly` and `masks`). */
  writable: boolean;
  /** Whether the command may use the network. */
  network: boolean;
  /** Where the command starts. */
  cwd: string;
  /** Paths bound read-only over the writable workspace: every `.git`, `agents/`, … */
  readOnly: string[];
  /** Files covered by an empty read-only file. */
  maskFiles: string[];
  /** Folders covered by an empty read-only folder. */
  maskDirs: string[];
  /** An empty regular file outside the workspace, bound over `maskFiles`. */
  emptyFile: string;
  /** macOS only: the private temporary folder (`TMPDIR`) the command may write. */
  tmpDir?: string;
  /** Files the command must read although they lie where it sees an empty folder (`/tmp`). */
  readable?: string[];
  /** The machine's devices (a GPU) instead of a fresh, minimal `/dev`. */
  devices?: boolean;
}

/**
 * Files and folders of `$HOME` that hold credentials: masked in every sandbox. Relative to
 * the home folder.
 */
export const HOME_CREDENTIALS: readonly string[] = [
  ".ssh",
  ".aws",
  ".gnupg",
  ".netrc",
  ".git-credentials",
  ".config/git/credentials",
  ".config/gh",
  ".config/hub",
  ".docker/config.json",
  ".kube",
  ".npmrc",
  ".yarnrc",
  ".yarnrc.yml",
  ".pypirc",
  ".cargo/credentials",
  ".cargo/credentials.toml",
  ".config/gcloud",
  ".azure",
  ".oci",
  ".terraform.d/credentials.tfrc.json",
  ".vault-token",
  ".password-store",
  ".local/share/keyrings",
  ".config/op",
  ".config/rclone",
  ".s3cfg",
  ".boto",
  ".m2/settings.xml",
  ".gradle/gradle.properties",
  ".bash_history",
  ".zsh_history",
  ".python_history",
  ".node_repl_history",
  ".psql_history",
  ".mysql_history",
];

/**
 * bubblewrap's command line for `argv` under `plan`: the whole file system read-only, a
 * fresh `/dev`, `/proc` (of its own pid namespace), `/tmp` and `/run`; the workspace bound
 * writable (or read-only), then `readOnly` bound read-only and the masks on top; no network
 * unless `plan.network`; every capability dropped (it matters when Harvey runs as root: a
 * root process keeping `CAP_SYS_ADMIN` could remount `/` read-write); `--die-with-parent`.
 * No `--new-session`: the command has no terminal to inject into (Harvey starts it in a session
 * of its own, without one), and staying in bwrap's process group is what lets a stop reach it
 * even when it comes while bwrap is still setting up, before `--die-with-parent` holds.
 *
 * @example
 * ```ts
 * bwrapArgs("/usr/bin/bwrap", ["ls"], { root: "/w", writable: true, network: false, cwd: "/w",
 *   readOnly: ["/w/.git"], maskFiles: ["/w/.env"], maskDirs: [], emptyFile: "/tmp/e" });
 * // ["/usr/bin/bwrap", "--ro-bind", "/", "/", …, "--", "ls"]
 * ```
 */
export function bwrapArgs(program: string, argv: readonly string[], plan: SandboxPlan): string[] {
  const args = [
    program,
    ...["--ro-bind", "/", "/"],
    ...(plan.devices ? ["--dev-bind", "/dev", "/dev"] : ["--dev", "/dev"]),
    ...["--proc", "/proc"],
    ...["--tmpfs", "/tmp"],
    // Sockets of other programs (the Docker daemon, the session bus, agents) live under /run.
    ...["--tmpfs", "/run"],
  ];
  for (const p of plan.readable ?? []) args.push("--ro-bind", p, p);
  // DNS, when the network is allowed, may need systemd-resolved's stub file under /run.
  if (plan.network) args.push("--ro-bind-try", RESOLVED, RESOLVED);
  // After /tmp and /run: a workspace below them is bound again over the fresh folders.
  args.push(plan.writable ? "--bind" : "--ro-bind", plan.root, plan.root);
  if (plan.writable) { for (const p of plan.readOnly) args.push("--ro-bind-try", p, p); }
  for (const f of plan.maskFiles) args.push("--ro-bind", plan.emptyFile, f);
  for (const d of plan.maskDirs) args.push("--tmpfs", d, "--remount-ro", d);
  args.push(
    "--unshare-pid",
    "--unshare-ipc",
    ...(plan.network ? [] : ["--unshare-net"]),
    "--die-with-parent",
    ...["--cap-drop", "ALL"],
    ...["--chdir", plan.cwd],
    "--",
    ...argv,
  );
  return args;
}

const RESOLVED = "/run/systemd/resolve";

/** Quotes `text` as an SBPL string literal. */
function sbpl(text: string): string {
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * The `sandbox-exec` profile (SBPL) equivalent to {@linkcode bwrapArgs}: everything allowed
 * except writing outside the workspace, the private temporary folder and the terminal
 * devices; writing `readOnly`; reading the masks; and the network unless `plan.network`. The
 * last matching rule wins, so each narrowing rule comes after the rule it narrows. macOS has
 * no pid namespace: a process can still see the others, not their memory.
 *
 * @example
 * ```ts
 * sandboxExecProfile({ root: "/w", writable: true, network: false, cwd: "/w",
 *   readOnly: ["/w/.git"], maskFiles: [], maskDirs: ["/Users/me/.ssh"], emptyFile: "",
 *   tmpDir: "/private/tmp/h1" });
 * ```
 */
export function sandboxExecProfile(plan: SandboxPlan): string {
  const writable = [
    ...(plan.writable ? [`(subpath ${sbpl(plan.root)})`] : []),
    ...(plan.tmpDir ? [`(subpath ${sbpl(plan.tmpDir)})`] : []),
    ...["/dev/null", "/dev/zero", "/dev/dtracehelper"].map((p) => `(literal ${sbpl(p)})`),
    `(regex #"^/dev/tty")`,
    `(regex #"^/dev/fd/")`,
  ];
  const lines = [
    "(version 1)",
    "(allow default)",
    "(deny file-write*)",
    `(allow file-write* ${writable.join(" ")})`,
  ];
  if (plan.writable && plan.readOnly.length) {
    lines.push(`(deny file-write* ${plan.readOnly.map((p) => `(subpath ${sbpl(p)})`).join(" ")})`);
  }
  const masks = [
    ...plan.maskFiles.map((p) => `(literal ${sbpl(p)})`),
    ...plan.maskDirs.map((p) => `(subpath ${sbpl(p)})`),
  ];
  if (masks.length) {
    lines.push(`(deny file-read* ${masks.join(" ")})`, `(deny file-write* ${masks.join(" ")})`);
  }
  if (!plan.network) lines.push("(deny network*)");
  return `${lines.join("\n")}\n`;
}

/** `sandbox-exec -p PROFILE argv…` for `plan`. */
export function sandboxExecArgs(
  program: string,
  argv: readonly string[],
  plan: SandboxPlan,
): string[] {
  return [program, "-p", sandboxExecProfile(plan), ...argv];
}
