/**
 * The providers a route may name, their default endpoints and key variables, and the checks
 * a route's name, URL and key variable must pass before they are saved to `harvey.yaml`.
 *
 * Only the NAME of the variable that holds a key is ever saved; the key itself is read from
 * the session's environment when a route is used.
 *
 * @module
 */
import { HarveyError, UsageError } from "../errors.ts";

/** The providers a route can talk to. */
export const PROVIDERS = [
  "openai",
  "anthropic",
  "deepseek",
  "gemini",
  "mistral",
  "ollama",
  "openai-compatible",
] as const;

/** One of {@link PROVIDERS}. */
export type Provider = typeof PROVIDERS[number];

/** What Harvey assumes for a provider when the user does not say. */
export interface ProviderDefaults {
  /** The API root (with its version path); empty when there is no sensible default. */
  url: string;
  /** The variable that holds the key; empty when the provider takes none by default. */
  keyEnv: string;
  /** The host of the provider's cloud API, for telling the provider from a URL. */
  host?: string;
}

/** Default endpoint and key variable of each provider. */
export const PROVIDER_DEFAULTS: Record<Provider, ProviderDefaults> = {
  openai: { url: "https://api.openai.com/v1", keyEnv: "OPENAI_API_KEY", host: "api.openai.com" },
  anthropic: {
    url: "https://api.anthropic.com/v1",
    keyEnv: "ANTHROPIC_API_KEY",
    host: "api.anthropic.com",
  },
  deepseek: {
    url: "https://api.deepseek.com",
    keyEnv: "DEEPSEEK_API_KEY",
    host: "api.deepseek.com",
  },
  gemini: {
    url: "https://generativelanguage.googleapis.com/v1beta/openai",
    keyEnv: "GEMINI_API_KEY",
    host: "generativelanguage.googleapis.com",
  },
  mistral: { url: "https://api.mistral.ai/v1", keyEnv: "MISTRAL_API_KEY", host: "api.mistral.ai" },
  ollama: { url: "http://localhost:11434", keyEnv: "" },
  "openai-compatible": { url: "", keyEnv: "" },
};

/** True for a known provider name. */
export function isProvider(value: string): value is Provider {
  return (PROVIDERS as readonly string[]).includes(value);
}

/** True when a route to `provider` cannot work without a key. */
export function needsKey(provider: string): boolean {
  return isProvider(provider) && PROVIDER_DEFAULTS[provider].keyEnv !== "";
}

/**
 * The provider a URL belongs to: a cloud API by its host, Ollama by its usual port 11434,
 * anything else `openai-compatible`.
 *
 * @example
 * ```ts
 * providerOfUrl("https://api.mistral.ai/v1"); // "mistral"
 * providerOfUrl("http://gpu-box:8080/v1"); // "openai-compatible"
 * ```
 */
export function providerOfUrl(url: string): Provider {
  const parsed = new URL(url);
  for (const p of PROVIDERS) {
    if (PROVIDER_DEFAULTS[p].host === parsed.hostname) return p;
  }
  return parsed.port === "11434" ? "ollama" : "openai-compatible";
}

const NAME = /^[A-Za-z0-9_-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks a route name: letters, digits, `-` and `_`. */
export function checkRouteName(name: string): string {
  if (!NAME.test(name)) {
    throw new UsageError(
      `A route name takes letters, digits, "-" and "_" only, found "${name}"`,
    );
  }
  return name;
}

/**
 * Checks the name of the variable that holds a key. Something that looks like a key rather
 * than a variable name is refused, so a key pasted by mistake never reaches `harvey.yaml`.
 */
export function checkKeyEnv(name: string): string {
  if (!ENV_NAME.test(name)) {
    throw new UsageError(
      "--key-env expects the NAME of an environment variable (such as OPENAI_API_KEY), " +
        "not the key itself",
    );
  }
  return name;
}

/**
 * Checks and tidies a route URL: http or https, no user name or password, no query string
 * (a key must live in an environment variable, never in the URL), no trailing slash.
 */
export function checkRouteUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`Expected a URL such as https://host/v1, found "${url}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`A route URL starts with http:// or https://, found "${url}"`);
  }
  if (parsed.username || parsed.password || parsed.search || parsed.hash) {
    throw new HarveyError(
      "A route URL must not carry a user name, password or query string — put the key in an " +
        "environment variable and name it with --key-env",
    );
  }
  return parsed.toString().replace(/\/+$/, "");
}

/** True when `url` points at this machine (its traffic never leaves it). */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
