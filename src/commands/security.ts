/**
 * `/security`: safe mode, the OS sandbox, the allowlist, path permissions and the audit log in
 * one view.
 *
 * @module
 */
import { formatMs } from "../ops/run.ts";
import { probeSandbox, sandboxLines } from "../security/sandbox.ts";
import { auditLines } from "./audit.ts";
import { permissionLines } from "./permissions.ts";
import type { CommandHandler } from "./registry.ts";
import { safeModeLines } from "./safemode.ts";

/** `/security` */
export const securityCommand: CommandHandler = {
  async run(agent, _args, out) {
    const timeout = agent.config.config.run_timeout;
    const status = await (agent.sandbox?.status() ?? probeSandbox({ env: agent.env }));
    const [sandbox, ...more] = sandboxLines(status, {
      network: agent.config.config.sandbox.network,
    });
    const lines = [
      ...safeModeLines(agent),
      `Sandbox:   ${sandbox}`,
      ...more.map((l) => `           ${l}`),
      `Timeout:   ${timeout > 0 ? formatMs(timeout) : "none"} per /run or ! command (run_timeout)`,
      "Child env: PATH HOME USER SHELL TERM LANG LC_* PWD OLLAMA_* HARVEY_* only; keys and tokens never",
      ...auditLines(agent),
      "",
      ...permissionLines(agent),
    ];
    for (const line of lines) out.write(`${line}\n`);
  },
};
