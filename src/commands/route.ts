/**
 * `/route`: named remote endpoints and cloud providers, reached with `@name PROMPT`.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import type { RouteEntry } from "../config/schema.ts";
import { HarveyError, UsageError } from "../errors.ts";
import {
  createRouteClient,
  describeRoutes,
  keyEnvOf,
  routeClients,
  routeUrl,
  saveRoutes,
} from "../routes/clients.ts";
import {
  checkKeyEnv,
  checkRouteName,
  checkRouteUrl,
  isLoopback,
  isProvider,
  type Provider,
  PROVIDER_DEFAULTS,
  providerOfUrl,
  PROVIDERS,
} from "../routes/providers.ts";
import type { Output } from "../types.ts";
import { type CommandHandler, required, subcommand } from "./registry.ts";

/** How long `/route probe` and `/route models` wait for an answer. */
export const ROUTE_PROBE_TIMEOUT_MS = 15_000;

const SUBCOMMANDS = ["list", "add", "remove", "probe", "models", "model", "enable", "disable"];
const ADD_USAGE =
  "/route add NAME URL|PROVIDER [MODEL] [--key-env VAR] [--provider PROVIDER] [--url URL]";

/** The parsed arguments of `/route add`. */
interface AddArgs {
  positional: string[];
  keyEnv?: string;
  provider?: string;
  url?: string;
}

function parseAdd(args: string[]): AddArgs {
  const parsed: AddArgs = { positional: [] };
  for (let i = 0; i < args.length; i++) {
    const m = /^--(key-env|provider|url)(?:=(.*))?$/.exec(args[i]);
    if (!m) {
      if (args[i].startsWith("--")) throw new UsageError(`Unknown option ${args[i]}; ${ADD_USAGE}`);
      parsed.positional.push(args[i]);
      continue;
    }
    const value = m[2] ?? args[++i];
    if (value === undefined || value === "") throw new UsageError(`--${m[1]} needs a value`);
    if (m[1] === "key-env") parsed.keyEnv = value;
    else if (m[1] === "provider") parsed.provider = value;
    else parsed.url = value;
  }
  return parsed;
}

function checkProvider(value: string): Provider {
  if (!isProvider(value)) {
    throw new UsageError(
      `Expected a URL or one of the providers ${PROVIDERS.join(", ")}, found "${value}"`,
    );
  }
  return value;
}

/** Builds the entry `/route add` saves, from its arguments. */
function routeFromArgs(args: string[]): RouteEntry {
  const a = parseAdd(args);
  const [rawName, target, model, extra] = a.positional;
  if (extra !== undefined) throw new UsageError(`Too many arguments; ${ADD_USAGE}`);
  const name = checkRouteName(required(rawName, ADD_USAGE));
  required(target, ADD_USAGE);
  let provider: Provider;
  let url: string;
  if (target.includes("://")) {
    if (a.url) throw new UsageError("Give the URL once: as the second word or with --url");
    url = checkRouteUrl(target);
    provider = a.provider ? checkProvider(a.provider) : providerOfUrl(url);
  } else {
    provider = checkProvider(target);
    if (a.provider && a.provider !== provider) {
      throw new UsageError(`Two providers given: ${provider} and ${a.provider}`);
    }
    const fallback = PROVIDER_DEFAULTS[provider].url;
    if (!a.url && !fallback) {
      throw new UsageError(`A ${provider} route needs a URL: /route add ${name} URL [MODEL]`);
    }
    url = checkRouteUrl(a.url ?? fallback);
  }
  const keyEnv = a.keyEnv === undefined
    ? PROVIDER_DEFAULTS[provider].keyEnv
    : checkKeyEnv(a.keyEnv);
  if (provider === "ollama" && keyEnv) {
    throw new HarveyError(
      "Ollama takes no key — to reach an Ollama behind a proxy that wants one, add it as " +
        "openai-compatible at its /v1 address with --key-env",
    );
  }
  return { name, provider, url, model: model ?? "", api_key_env: keyEnv, enabled: true };
}

function keyState(agent: Agent, route: RouteEntry): string {
  const variable = keyEnvOf(route);
  if (!variable || route.provider === "ollama") return "no key";
  return `${variable} (${agent.env[variable]?.trim() ? "set" : "not set"})`;
}

function anyRoute(agent: Agent, name: string | undefined, usage: string): RouteEntry {
  const wanted = required(name, usage).replace(/^@/, "");
  const routes = agent.config.config.routes;
  const route = routes.find((r) => r.name === wanted);
  if (!route) {
    const list = routes.length ? `routes: ${describeRoutes(routes)}` : "there are none yet";
    throw new HarveyError(`No route named @${wanted} — ${list}`);
  }
  return route;
}

/** Lists the models of `route`'s server, bounded by a timeout and Ctrl-C. */
async function listModels(agent: Agent, route: RouteEntry, signal?: AbortSignal) {
  const client = createRouteClient(route, routeClients(agent).options());
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort = () => {};
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(() =>
      reject(
        new HarveyError(
          `@${route.name} at ${routeUrl(route)} is unreachable: no answer within ` +
            `${ROUTE_PROBE_TIMEOUT_MS / 1000}s`,
        ),
      ), ROUTE_PROBE_TIMEOUT_MS);
    onAbort = () => reject(new DOMException("Interrupted", "AbortError"));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  stopped.catch(() => {});
  try {
    const models = await Promise.race([client.models(), stopped]);
    return { models, seconds: (performance.now() - started) / 1000 };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    await client.close();
  }
}

function listRoutes(agent: Agent, out: Output): void {
  const routes = agent.config.config.routes;
  if (!routes.length) {
    out.write("No routes. Add one with " + ADD_USAGE.replace(/ \[--provider.*$/, "") + "\n");
    return;
  }
  const rows = routes.map((r) => [
    `@${r.name}`,
    r.provider,
    routeUrl(r) || "(no URL)",
    r.model || "(chosen on first use)",
    keyState(agent, r),
    r.enabled ? "" : "disabled",
  ]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  out.write("Routes:\n");
  for (const row of rows) {
    out.write(`  ${row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()}\n`);
  }
}

async function addRoute(agent: Agent, args: string[], out: Output): Promise<void> {
  const route = routeFromArgs(args);
  const routes = agent.config.config.routes;
  const clash = routes.find((r) => r.name.toLowerCase() === route.name.toLowerCase());
  if (clash) {
    throw new HarveyError(
      `A route named @${clash.name} already exists — /route remove ${clash.name} first`,
    );
  }
  await saveRoutes(agent, (list) => [...list, route]);
  agent.audit?.record(
    "route",
    `add @${route.name} ${route.provider} ${route.url} key variable ${keyEnvOf(route) || "none"}`,
    "success",
  );
  out.write(
    `✓ Added @${route.name}: ${route.provider} at ${route.url}` +
      `${route.model ? `, model ${route.model}` : ""}; key: ${keyState(agent, route)}\n`,
  );
  const variable = keyEnvOf(route);
  if (variable && !agent.env[variable]?.trim()) {
    out.write(`  Set ${variable} before using @${route.name}\n`);
  }
  if (variable && !isLoopback(route.url) && new URL(route.url).protocol === "http:") {
    out.write(`⚠ The key of @${route.name} would travel unencrypted over http\n`);
  }
  if (!route.model) {
    out.write(`  No model yet: @${route.name} asks which one on first use (/route models)\n`);
  }
}

async function setRoute(
  agent: Agent,
  route: RouteEntry,
  patch: Partial<RouteEntry> | undefined,
): Promise<void> {
  await routeClients(agent).drop(route.name);
  await saveRoutes(
    agent,
    (list) =>
      patch === undefined
        ? list.filter((r) => r.name !== route.name)
        : list.map((r) => r.name === route.name ? { ...r, ...patch } : r),
  );
  const what = patch === undefined ? "remove" : `set ${JSON.stringify(patch)} on`;
  agent.audit?.record("route", `${what} @${route.name}`, "success");
}

/** `/route list|add|remove|probe|models|model|enable|disable` */
export const routeCommand: CommandHandler = {
  subcommands: SUBCOMMANDS,
  complete(agent, args) {
    const routes = agent.config.config.routes;
    if (args.length === 0) return SUBCOMMANDS;
    if (args.length === 1) {
      if (args[0] === "enable") return routes.filter((r) => !r.enabled).map((r) => r.name);
      if (args[0] === "disable") return routes.filter((r) => r.enabled).map((r) => r.name);
      if (["remove", "probe", "models", "model"].includes(args[0])) {
        return routes.map((r) => r.name);
      }
    }
    if (args.length === 2 && args[0] === "add") return [...PROVIDERS];
    return [];
  },
  async run(agent, args, out, ctx) {
    routeClients(agent);
    const sub = subcommand("/route", args, SUBCOMMANDS, "list");
    const usage = `/route ${sub} NAME`;
    switch (sub) {
      case "list":
        return listRoutes(agent, out);
      case "add":
        return await addRoute(agent, args.slice(1), out);
      case "remove": {
        const route = anyRoute(agent, args[1], usage);
        await setRoute(agent, route, undefined);
        out.write(`✓ Removed @${route.name}\n`);
        return;
      }
      case "enable":
      case "disable": {
        const route = anyRoute(agent, args[1], usage);
        const enabled = sub === "enable";
        if (route.enabled === enabled) {
          out.write(`@${route.name} is already ${sub}d\n`);
          return;
        }
        await setRoute(agent, route, { enabled });
        out.write(`✓ @${route.name} ${sub}d\n`);
        return;
      }
      case "model": {
        const route = anyRoute(agent, args[1], "/route model NAME MODEL");
        const model = required(args[2], "/route model NAME MODEL");
        await setRoute(agent, route, { model });
        out.write(`✓ @${route.name} now uses ${model}\n`);
        return;
      }
      case "probe": {
        const route = anyRoute(agent, args[1], usage);
        const { models, seconds } = await listModels(agent, route, ctx.signal);
        const has = route.model
          ? models.includes(route.model)
            ? `; ${route.model} is one of them`
            : `; ⚠ ${route.model} is not among them (see /route models ${route.name})`
          : "";
        out.write(
          `✓ @${route.name}: ${routeUrl(route)} answered in ${seconds.toFixed(1)}s — ` +
            `${models.length} model${models.length === 1 ? "" : "s"}${has}` +
            `${route.enabled ? "" : " (the route is disabled)"}\n`,
        );
        return;
      }
      case "models": {
        const route = anyRoute(agent, args[1], usage);
        const { models } = await listModels(agent, route, ctx.signal);
        if (!models.length) out.write(`@${route.name} lists no models\n`);
        for (const m of models) out.write(`${m === route.model ? "→" : " "} ${m}\n`);
        return;
      }
    }
  },
};
