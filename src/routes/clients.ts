/**
 * The clients of named routes: built on first use of `@name`, cached for the session, closed
 * when the session ends. A route's key is read from the session's environment here and given
 * only to that route's client, which sends it only to the route's own URL; local backends are
 * built elsewhere, without a key.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import type { RouteEntry } from "../config/schema.ts";
import { HarveyError } from "../errors.ts";
import { AnthropicClient } from "../llm/anthropic.ts";
import { TimeoutError } from "../llm/errors.ts";
import { OllamaClient } from "../llm/ollama.ts";
import { OpenAICompatClient } from "../llm/openai_compat.ts";
import type {
  ChatOptions,
  ChatResult,
  LLMClient,
  Message,
  ToolSpec,
  ToolSupport,
} from "../types.ts";
import { isLoopback, isProvider, PROVIDER_DEFAULTS } from "./providers.ts";

/** The URL of a route: its own, else its provider's default (empty when neither). */
export function routeUrl(route: RouteEntry): string {
  return route.url || (isProvider(route.provider) ? PROVIDER_DEFAULTS[route.provider].url : "");
}

/** The variable a route's key is read from: its own, else its provider's default. */
export function keyEnvOf(route: RouteEntry): string {
  if (route.api_key_env) return route.api_key_env;
  return isProvider(route.provider) ? PROVIDER_DEFAULTS[route.provider].keyEnv : "";
}

/**
 * The key of `route` from `env`, or undefined when the route takes none. A key variable that
 * is not set is an error that names it.
 */
export function routeKey(route: RouteEntry, env: Record<string, string>): string | undefined {
  const variable = keyEnvOf(route);
  if (!variable) return undefined;
  const key = env[variable]?.trim();
  if (!key) throw new HarveyError(`Set ${variable} to use @${route.name}`);
  return key;
}

/** A one-line list of the routes, for error messages: `@gpt, @claude (disabled)`. */
export function describeRoutes(routes: RouteEntry[]): string {
  return routes.map((r) => `@${r.name}${r.enabled ? "" : " (disabled)"}`).join(", ");
}

/** The route called `name`; unknown and disabled routes are errors that list the routes. */
export function findRoute(routes: RouteEntry[], name: string): RouteEntry {
  const route = routes.find((r) => r.name === name);
  if (!route) {
    throw new HarveyError(
      routes.length
        ? `No route named @${name} — routes: ${describeRoutes(routes)}`
        : `No route named @${name} — add one with /route add NAME URL|PROVIDER [MODEL]`,
    );
  }
  if (!route.enabled) {
    const enabled = routes.filter((r) => r.enabled);
    const others = enabled.length ? `; enabled: ${describeRoutes(enabled)}` : "";
    throw new HarveyError(
      `Route @${name} is disabled — turn it on with /route enable ${name}${others}`,
    );
  }
  return route;
}

/** What building a route's client needs besides the route. */
export interface RouteClientOptions {
  /** The session's environment, where keys are read from. */
  env: Record<string, string>;
  /** Timeout of a request to a server on this machine, in ms (0 = none). */
  localTimeoutMs: number;
  /** Timeout of a request to any other host, in ms. */
  remoteTimeoutMs: number;
}

/**
 * Builds the client of `route` (its model may be empty for listing models). OpenAI, DeepSeek,
 * Gemini, Mistral and any other OpenAI-compatible server go through {@link OpenAICompatClient},
 * Anthropic through its native API, Ollama through {@link OllamaClient} (never with a key).
 */
export function createRouteClient(route: RouteEntry, opts: RouteClientOptions): LLMClient {
  const provider = route.provider;
  if (!isProvider(provider)) {
    throw new HarveyError(
      `Route @${route.name} names an unknown provider "${provider}" — expected one of: ` +
        Object.keys(PROVIDER_DEFAULTS).join(", "),
    );
  }
  const url = routeUrl(route);
  if (!url) throw new HarveyError(`Route @${route.name} has no URL — add url to it`);
  const timeoutMs = isLoopback(url) ? opts.localTimeoutMs : opts.remoteTimeoutMs;
  const label = `@${route.name}`;
  if (provider === "ollama") {
    if (route.api_key_env) {
      throw new HarveyError(
        `Route @${route.name}: Ollama takes no key — remove api_key_env from it in ` +
          "agents/harvey.yaml, or reach a proxied Ollama as provider openai-compatible at URL/v1",
      );
    }
    return new RedactingClient(new OllamaClient(url, route.model, { timeoutMs }), {
      label,
      context: route.context,
    });
  }
  const apiKey = routeKey(route, opts.env);
  const remote = !isLoopback(url);
  if (provider === "anthropic") {
    const inner = new AnthropicClient({
      baseUrl: url,
      model: route.model,
      label,
      apiKey: apiKey ?? "",
      timeoutMs,
    });
    return new RedactingClient(inner, { label, key: apiKey, remote, context: route.context });
  }
  const inner = new OpenAICompatClient({
    baseUrl: apiRootOf(url) ? new URL(url).origin : url,
    apiRoot: apiRootOf(url),
    model: route.model,
    label,
    apiKey,
    timeoutMs,
  });
  return new RedactingClient(inner, { label, key: apiKey, remote, context: route.context });
}

/**
 * The API root of an OpenAI-compatible URL whose path does not end in `/v1` (Gemini's
 * `…/v1beta/openai`), or undefined for a server root or a `/v1` address.
 */
export function apiRootOf(url: string): string | undefined {
  const path = new URL(url).pathname.replace(/\/+$/, "");
  return path === "" || path.endsWith("/v1") ? undefined : url.replace(/\/+$/, "");
}

/**
 * Wraps a route's client so that no error it raises can carry the key into a message (some
 * providers echo part of a bad key back), so that a timeout names the right setting, and so
 * that the route's own `context` setting is its window when set.
 */
class RedactingClient implements LLMClient {
  readonly name: string;
  readonly model: string;

  constructor(
    readonly inner: LLMClient,
    readonly opts: { label: string; key?: string; remote?: boolean; context?: number },
  ) {
    this.model = inner.model;
    this.name = `${opts.label}:${inner.model}`;
  }

  /** The route's `context` setting, else what its server says (`/props`, the model listing). */
  async contextWindow(): Promise<number | undefined> {
    if (this.opts.context) return this.opts.context;
    return await this.inner.contextWindow?.().catch(() => undefined);
  }

  async countTokens(text: string): Promise<number | undefined> {
    return await this.inner.countTokens?.(text).catch(() => undefined);
  }

  async countPrompt(messages: Message[], tools?: ToolSpec[]): Promise<number | undefined> {
    return await this.inner.countPrompt?.(messages, tools).catch(() => undefined);
  }

  async toolSupport(): Promise<ToolSupport> {
    return await this.inner.toolSupport?.() ??
      { native: false, reason: `route ${this.opts.label} cannot tell whether it takes tools` };
  }

  #clean(err: unknown): unknown {
    if (!(err instanceof HarveyError)) return err;
    let text = err.message;
    if (this.opts.key) text = text.split(this.opts.key).join("[redacted]");
    if (this.opts.remote) text = text.replace("raise request_timeout", "raise remote_timeout");
    if (text === err.message) return err;
    return err instanceof TimeoutError ? new TimeoutError(text) : new HarveyError(text);
  }

  async chat(messages: Message[], opts: ChatOptions): Promise<ChatResult> {
    try {
      return await this.inner.chat(messages, opts);
    } catch (err) {
      throw this.#clean(err);
    }
  }

  async models(): Promise<string[]> {
    try {
      return await this.inner.models();
    } catch (err) {
      throw this.#clean(err);
    }
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}

interface Cached {
  client: LLMClient;
  /** The route as it was when the client was built; a changed route gets a new client. */
  fingerprint: string;
}

/** The route clients of one session. */
export class RouteClients {
  readonly #agent: Agent;
  readonly #cache = new Map<string, Cached>();

  constructor(agent: Agent) {
    this.#agent = agent;
  }

  /** Client options from the session's environment and configuration. */
  options(): RouteClientOptions {
    const config = this.#agent.config.config;
    return {
      env: this.#agent.env,
      localTimeoutMs: config.request_timeout,
      remoteTimeoutMs: config.remote_timeout,
    };
  }

  /**
   * The client for `@name`, built on first use and kept for the session. A route without a
   * model takes the one model its server lists, or asks which one and saves the answer.
   */
  async get(name: string): Promise<LLMClient> {
    let route = findRoute(this.#agent.config.config.routes, name);
    const cached = this.#cache.get(name);
    let client = cached?.client;
    if (!client || cached?.fingerprint !== JSON.stringify(route)) {
      if (!route.model) route = await this.#chooseModel(route);
      await this.drop(name);
      client = createRouteClient(route, this.options());
      this.#cache.set(name, { client, fingerprint: JSON.stringify(route) });
    }
    // The conversation leaves the machine here: say where it went.
    this.#agent.audit?.record(
      "route",
      `@${name} → ${route.provider} ${routeUrl(route)} (${client.model})`,
      "allowed",
    );
    return client;
  }

  async #chooseModel(route: RouteEntry): Promise<RouteEntry> {
    const lister = createRouteClient(route, this.options());
    const models = await lister.models().finally(() => lister.close());
    let model: string;
    if (models.length === 1) model = models[0];
    else if (models.length === 0) {
      throw new HarveyError(
        `Route @${route.name} has no model and its server lists none — set one with ` +
          `/route model ${route.name} MODEL`,
      );
    } else {
      const answer = await this.#agent.asker.pick(
        `Which model should @${route.name} use?`,
        models.map((m) => ({ label: m, value: m })),
        { other: "another model name" },
      );
      model = "value" in answer ? answer.value : answer.other.trim();
      if (!model) throw new HarveyError(`No model chosen for @${route.name}`);
    }
    await saveRoutes(
      this.#agent,
      (routes) => routes.map((r) => r.name === route.name ? { ...r, model } : r),
    );
    return findRoute(this.#agent.config.config.routes, route.name);
  }

  /** Closes and forgets the client of `name` (after the route changed or went away). */
  async drop(name: string): Promise<void> {
    const cached = this.#cache.get(name);
    this.#cache.delete(name);
    await cached?.client.close();
  }

  /** Closes every route client. */
  async closeAll(): Promise<void> {
    const all = [...this.#cache.values()];
    this.#cache.clear();
    for (const c of all) await c.client.close().catch(() => {});
  }
}

/**
 * Rewrites the route list of `harvey.yaml` (and the session's config) through `change`.
 * Empty fields are left out of the file; a key never is in it, only its variable's name.
 */
export async function saveRoutes(
  agent: Agent,
  change: (routes: RouteEntry[]) => RouteEntry[],
): Promise<void> {
  const routes = change(agent.config.config.routes.map((r) => ({ ...r })));
  const plain = routes.map((r) => ({
    name: r.name,
    provider: r.provider,
    ...(r.url ? { url: r.url } : {}),
    ...(r.model ? { model: r.model } : {}),
    ...(r.api_key_env ? { api_key_env: r.api_key_env } : {}),
    enabled: r.enabled,
    ...(r.context ? { context: r.context } : {}),
  }));
  await agent.config.update([[["routes"], plain.length ? plain : undefined]]);
}

const sessions = new WeakMap<Agent, RouteClients>();

/**
 * The route clients of `agent`'s session. The first call installs them: `@name` turns use
 * them (`agent.routeClient`) and they are closed when the session ends.
 */
export function routeClients(agent: Agent): RouteClients {
  let clients = sessions.get(agent);
  if (!clients) {
    const created = new RouteClients(agent);
    sessions.set(agent, created);
    agent.routeClient = (name) => created.get(name);
    agent.onShutdown(() => created.closeAll());
    clients = created;
  }
  return clients;
}
