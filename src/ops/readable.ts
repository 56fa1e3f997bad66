/**
 * What a command Harvey runs may read, for safe mode's path arguments: the agent's path
 * permissions (secrets closed unless an entry opens them).
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import { isSecretPath } from "../security/permissions.ts";

/**
 * The read rule of safe mode's path arguments for `agent`: its path permissions (secrets
 * closed unless an entry opens them), as the message of the refusal.
 */
export function readableRule(agent: Agent): (rel: string) => string | undefined {
  return (rel) => {
    if (!agent.checkPath) return isSecretPath(rel) ? `it names a secret file (${rel})` : undefined;
    try {
      agent.checkPath(rel, "read");
      return undefined;
    } catch (err) {
      if (err instanceof HarveyError) return err.message;
      throw err;
    }
  };
}
