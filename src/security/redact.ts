/**
 * Keeping secrets out of what Harvey writes down (the audit log, messages).
 *
 * @module
 */

/** Names of environment variables that hold secrets. */
export const SECRET_NAME =
  /API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|PRIVATE|COOKIE|(^|_)KEYS?($|_)/i;

/** Token shapes worth hiding even when they are not in the environment. */
const TOKEN_SHAPES: readonly RegExp[] = [
  /\b(sk|pk|rk)-[A-Za-z0-9_-]{12,}/g, // OpenAI, Anthropic (sk-ant-…), Stripe-like keys
  /\bhf_[A-Za-z0-9]{16,}/g, // Hugging Face
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g, // GitHub
  /\bgithub_pat_[A-Za-z0-9_]{20,}/g,
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g, // Slack
  /\bAKIA[0-9A-Z]{16}\b/g, // AWS access key id
  /\bAIza[0-9A-Za-z_-]{30,}/g, // Google API key
  /(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
];

/**
 * Credentials in a URL: the password of `scheme://user:PASSWORD@host` (`postgres://u:p@h/db`,
 * `https://user:token@host`), kept apart from the user name so the line stays readable.
 */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:'"]*):([^\s/?#@'"]+)@/gi;
/** A user part alone that looks like a token (`https://ghp_…@github.com`), 20 characters or more. */
const URL_TOKEN_USER = /\b([a-z][a-z0-9+.-]*:\/\/)([A-Za-z0-9._~+=-]{20,})@/gi;

/** `NAME=value` or `--name=value` where the name looks secret. */
const SECRET_ASSIGNMENT = /\b([A-Za-z_][A-Za-z0-9_-]*)=(\S+)/g;

/**
 * Returns a function that replaces secrets in a text with `[redacted]`: the values of the
 * secret-named variables of `env` (8 characters or more), well-known token shapes, passwords
 * in URLs, and `NAME=value` pairs whose name looks secret.
 *
 * @example
 * ```ts
 * const redact = secretRedactor({ OPENAI_API_KEY: "sk-abcdefgh12345678" });
 * redact("curl -H 'Authorization: Bearer sk-abcdefgh12345678'"); // "curl -H 'Authorization: [redacted]'"
 * redact("psql postgres://app:hunter2@db/prod"); // "psql postgres://app:[redacted]@db/prod"
 * ```
 */
export function secretRedactor(env: Record<string, string>): (text: string) => string {
  const values = Object.entries(env)
    .filter(([name, value]) => SECRET_NAME.test(name) && value.length >= 8)
    .map(([, value]) => value)
    .sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const v of values) out = out.split(v).join("[redacted]");
    for (const re of TOKEN_SHAPES) out = out.replace(re, "[redacted]");
    out = out.replace(URL_PASSWORD, "$1$2:[redacted]@").replace(URL_TOKEN_USER, "$1[redacted]@");
    return out.replace(
      SECRET_ASSIGNMENT,
      (all, name: string) => SECRET_NAME.test(name) ? `${name}=[redacted]` : all,
    );
  };
}
