#!/usr/bin/env node
// The official TypeScript MCP SDK's client, authorizing itself with OAuth the way it does for
// a person, for `make oauth-check`: a 401 from the MCP server leads it through the protected-
// resource metadata, the authorization server's metadata, dynamic registration, and an
// authorization code with PKCE; a 403 insufficient_scope, to authorization for the wider scope.
// The person's browser is played here: `redirectToAuthorization` follows the authorization
// server's pages (the development login and consent forms of oidc-provider), submits them with
// their cookies, and keeps the code the redirect back carries, which `finishAuth` exchanges.
//
// Usage: client.mjs <mcp-url> list
//        client.mjs <mcp-url> call <tool> [<arguments as JSON>]
// Options: --scope S     authorize for S before connecting, instead of as the 401 asks
//          --login NAME  the login typed on the sign-in page (default mcp-user)
//          --timeout S   give up after S seconds (default 60)
// Prints one JSON object on stdout: {tools | result, tokens, authorizations, http}, where
// tokens are the access tokens obtained in turn (their JWT claims), authorizations the
// authorization requests made (scope, resource, pages passed), and http every request the SDK
// made (method, url, status, WWW-Authenticate). On failure: {error, ...the same} and exit 1.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    scope: { type: 'string' },
    login: { type: 'string', default: 'mcp-user' },
    timeout: { type: 'string', default: '60' },
  },
});
const [mcpUrl, command, ...rest] = positionals;
if (!mcpUrl || !['list', 'call'].includes(command) || (command === 'call' && !rest[0])) {
  console.error('usage: client.mjs <mcp-url> list | call <tool> [<arguments as JSON>] [--scope S] [--login NAME]');
  process.exit(2);
}

// Nothing listens here: the browser stops at the redirect and hands its code over.
const REDIRECT_URL = 'http://127.0.0.1/oauth/callback';
const report = { tokens: [], authorizations: [], http: [] };

const finish = (code, extra) => {
  console.log(JSON.stringify({ ...extra, ...report }));
  process.exit(code);
};
setTimeout(() => finish(1, { error: `timed out after ${opts.timeout} s` }), Number(opts.timeout) * 1000).unref();

const withTimeout = (init = {}) => ({ ...init, signal: init.signal ?? AbortSignal.timeout(10_000) });

// Every request the SDK makes, to the MCP server and to the authorization server.
async function tracingFetch(input, init) {
  const response = await fetch(input, withTimeout(init));
  report.http.push({
    method: init?.method ?? 'GET',
    url: String(input instanceof Request ? input.url : input),
    status: response.status,
    www_authenticate: response.headers.get('www-authenticate') ?? undefined,
  });
  return response;
}

function claims(jwt) {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
  } catch {
    return { opaque: true };
  }
}

/** A browser with a cookie jar, driven through the authorization server's forms. */
class Browser {
  #cookies = new Map();

  async request(url, { method = 'GET', form } = {}) {
    const headers = { cookie: [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, withTimeout({ method, headers, body, redirect: 'manual' }));
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const [name, value] = [pair.slice(0, pair.indexOf('=')).trim(), pair.slice(pair.indexOf('=') + 1).trim()];
      const expired = attributes.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now());
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return response;
  }

  /** Follows redirects and fills forms from `url` until a redirect to `REDIRECT_URL`. */
  async authorize(url, pages) {
    let next = { url: String(url) };
    for (let hop = 0; hop < 20; hop += 1) {
      const response = await this.request(next.url, next);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        const target = new URL(location, next.url);
        await response.body?.cancel();
        if (target.href.startsWith(REDIRECT_URL)) return target.searchParams;
        next = { url: target.href };
        continue;
      }
      const html = await response.text();
      if (response.status !== 200) throw new Error(`authorization server answered ${response.status}: ${html.slice(0, 500)}`);
      const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
      if (!form) throw new Error(`a page without a form: ${html.slice(0, 500)}`);
      const fields = {};
      for (const [input] of form[2].matchAll(/<input[^>]*>/gi)) {
        const name = /name="([^"]*)"/.exec(input)?.[1];
        if (!name) continue;
        const value = /value="([^"]*)"/.exec(input)?.[1];
        // The development login takes any login and password.
        fields[name] = value ?? (name === 'login' ? opts.login : name === 'password' ? 'any-password' : '');
      }
      pages.push(fields.prompt ?? 'form');
      next = { url: new URL(form[1].replaceAll('&amp;', '&'), next.url).href, method: 'POST', form: fields };
    }
    throw new Error('too many redirects and pages on the way to the redirect URI');
  }
}

/** The SDK's OAuthClientProvider, kept in memory, with the browser played headlessly. */
class HeadlessProvider {
  browser = new Browser();
  pendingCode = undefined;
  #client;
  #tokens;
  #verifier;
  #state;
  #discovery;

  get redirectUrl() {
    return REDIRECT_URL;
  }

  get clientMetadata() {
    return {
      client_name: 'mcp oauth-check client',
      redirect_uris: [REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.#state = randomBytes(16).toString('base64url');
    return this.#state;
  }

  clientInformation() {
    return this.#client;
  }

  saveClientInformation(info) {
    this.#client = info;
  }

  tokens() {
    return this.#tokens;
  }

  saveTokens(tokens) {
    this.#tokens = tokens;
    report.tokens.push({ scope: tokens.scope, claims: claims(tokens.access_token) });
  }

  saveCodeVerifier(verifier) {
    this.#verifier = verifier;
  }

  codeVerifier() {
    return this.#verifier;
  }

  discoveryState() {
    return this.#discovery;
  }

  saveDiscoveryState(state) {
    this.#discovery = state;
  }

  async redirectToAuthorization(url) {
    const pages = [];
    report.authorizations.push({
      scope: url.searchParams.get('scope'),
      resource: url.searchParams.get('resource'),
      code_challenge_method: url.searchParams.get('code_challenge_method'),
      pages,
    });
    const answer = await this.browser.authorize(url, pages);
    if (answer.get('error')) throw new Error(`authorization refused: ${answer.get('error')}: ${answer.get('error_description')}`);
    if (answer.get('state') !== this.#state) throw new Error('the redirect carries another state');
    // RFC 9207: the answer names the authorization server discovery found.
    const issuer = this.#discovery?.authorizationServerMetadata?.issuer;
    if (answer.get('iss') && issuer && answer.get('iss') !== issuer) throw new Error(`the redirect names issuer ${answer.get('iss')}, not ${issuer}`);
    this.pendingCode = answer.get('code');
  }

  takeCode() {
    const code = this.pendingCode;
    this.pendingCode = undefined;
    return code;
  }
}

const serverUrl = new URL(mcpUrl);
const provider = new HeadlessProvider();

/** Runs `step`; when it needed the browser, exchanges the code on `transport` and runs it again. */
async function authorized(transport, step, retry = step) {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
    await transport().finishAuth(provider.takeCode());
    return retry();
  }
}

async function connect() {
  let transport;
  const attempt = async () => {
    transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: tracingFetch });
    const client = new Client({ name: 'mcp-oauth-check', version: '1.0.0' });
    await client.connect(transport);
    return client;
  };
  // A started transport cannot start again: the retry connects anew, with the tokens.
  const client = await authorized(() => transport, attempt);
  return { client, transport: () => transport };
}

try {
  if (opts.scope) {
    // Authorized up front for this scope, as a client configured with it would be.
    const options = { serverUrl, scope: opts.scope, fetchFn: tracingFetch };
    if ((await auth(provider, options)) === 'REDIRECT') {
      await auth(provider, { ...options, authorizationCode: provider.takeCode() });
    }
  }
  const { client, transport } = await connect();
  if (command === 'list') {
    const { tools } = await authorized(transport, () => client.listTools());
    finish(0, { tools: tools.map((t) => t.name) });
  } else {
    const params = { name: rest[0], arguments: rest[1] ? JSON.parse(rest[1]) : {} };
    const result = await authorized(transport, () => client.callTool(params));
    finish(0, { result });
  }
} catch (error) {
  finish(1, { error: String(error?.stack ?? error) });
}
