/**
 * The fake llama.cpp-style server (`test/fixtures/fake_openai.ts`) as a child process, as a
 * real model server would be, so its work is not charged to the process being measured.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** A running fake server: its URL, and how to stop it. */
export interface FakeServerChild {
  url: string;
  stop(): Promise<void>;
}

/** Starts the fake server with the script flags `args` (`--n-ctx 2048`, `--tool-call X`…). */
export async function startFakeServer(args: string[]): Promise<FakeServerChild> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      fileURLToPath(new URL("../test/fixtures/fake_openai.ts", import.meta.url)),
      "--port",
      "0",
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let banner = "";
  while (!/listening on \S+\n/.test(banner)) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the fake server exited before it listened");
    banner += value;
  }
  return {
    url: /listening on (\S+)/.exec(banner)![1],
    async stop() {
      child.kill("SIGTERM");
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}
