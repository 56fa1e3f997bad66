/**
 * Trusting a workspace's `agents/harvey.yaml` the way a person does by answering yes once in
 * a terminal, for tests that start Harvey as a child on a file they wrote by hand.
 *
 * @module
 */
import { join } from "node:path";
import { ConfigStore } from "../src/config/store.ts";
import { trustFile, TrustStore } from "../src/config/trust.ts";

/**
 * Remembers the settings of `root`'s `agents/harvey.yaml` that need trust as trusted, in the
 * trust file a Harvey started with `env` reads (`XDG_CONFIG_HOME`, else `HOME`).
 */
export async function trustWorkspace(root: string, env: Record<string, string>): Promise<void> {
  const real = await Deno.realPath(root);
  const file = trustFile(env);
  if (!file) throw new Error("set XDG_CONFIG_HOME or HOME for the child");
  await ConfigStore.load(join(real, "agents", "harvey.yaml"), {
    root: real,
    trust: {
      mode: "ask",
      store: new TrustStore(file),
      ask: () => Promise.resolve(true),
      root: real,
      home: env.HOME ?? "",
    },
  });
}
