#!/usr/bin/env node
// A real OpenID provider (oidc-provider, certified) on loopback for `make oauth-check`: resource
// indicators (RFC 8707) with JWT access tokens whose audience is the resource asked for, dynamic
// client registration, PKCE, the development login and consent pages, client credentials, and
// introspection (RFC 7662) for a confidential client.
//
// Listens on 127.0.0.1, port 0 (or --port), and prints one JSON line on stdout once listening:
// {issuer, jwks_uri, token_endpoint, introspection_endpoint, registration_endpoint, clients}.
// `clients` maps each static confidential client to its secret:
//   mcp-introspector  may introspect any token (no grant of its own);
//   opaque-client     client_credentials, OPAQUE access tokens (for introspection);
//   jwt-client        client_credentials, JWT access tokens.
// Secrets come from OAUTH_INTROSPECTOR_SECRET, OAUTH_OPAQUE_CLIENT_SECRET and
// OAUTH_JWT_CLIENT_SECRET, else are random.
// Logs go to stderr. Stops on SIGTERM or SIGINT, and with --exit-with-stdin when stdin closes
// (its parent went away, however it ended).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    scopes: { type: 'string', default: 'mcp:tools mcp:admin' },
    'access-token-ttl': { type: 'string', default: '600' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});
const log = (event, fields = {}) => console.error(JSON.stringify({ event, ...fields }));
// stdout carries the one ready line; oidc-provider's notices (console.info) go with the logs.
console.info = console.error;
const secret = (name) => process.env[name] || randomBytes(24).toString('base64url');

const INTROSPECTOR = 'mcp-introspector';
const OPAQUE_CLIENT = 'opaque-client';
const JWT_CLIENT = 'jwt-client';
const secrets = {
  [INTROSPECTOR]: secret('OAUTH_INTROSPECTOR_SECRET'),
  [OPAQUE_CLIENT]: secret('OAUTH_OPAQUE_CLIENT_SECRET'),
  [JWT_CLIENT]: secret('OAUTH_JWT_CLIENT_SECRET'),
};
// Every resource server offers these scopes; a token gets those both asked for and granted.
const resourceScopes = args.scopes;

// Fresh signing keys each run: ES256 for access tokens, RS256 for ID tokens (the default alg).
const jwk = (kid, pair) => ({ ...pair.privateKey.export({ format: 'jwk' }), kid, use: 'sig' });
const keys = [
  { ...jwk('es256', generateKeyPairSync('ec', { namedCurve: 'P-256' })), alg: 'ES256' },
  { ...jwk('rs256', generateKeyPairSync('rsa', { modulusLength: 2048 })), alg: 'RS256' },
];

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: INTROSPECTOR,
      client_secret: secrets[INTROSPECTOR],
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: OPAQUE_CLIENT,
      client_secret: secrets[OPAQUE_CLIENT],
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: JWT_CLIENT,
      client_secret: secrets[JWT_CLIENT],
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
  ],
  jwks: { keys },
  // Whoever signs in is an account of that name (the development login takes any).
  findAccount: (ctx, accountId) => ({ accountId, claims: () => ({ sub: accountId }) }),
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // The introspector may look at any token; any other client only at its own.
      allowedPolicy: (ctx, client, token) => client.clientId === INTROSPECTOR || client.clientId === token.clientId,
    },
    resourceIndicators: {
      enabled: true,
      // An authorization code is exchanged for the resource it was granted for.
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: resourceScopes,
        audience: resource,
        accessTokenTTL: Number(args['access-token-ttl']),
        accessTokenFormat: client.clientId === OPAQUE_CLIENT ? 'opaque' : 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  // The MCP SDK registers with the scope of its first challenge (mcp:tools). oidc-provider
  // refuses a registered scope it does not list in `scopes`, and one it lists caps the client
  // for good, so a step-up to mcp:admin would end in invalid_scope. As at many authorization
  // servers, the scope a client registers is dropped: scopes are granted per resource (above),
  // at consent.
  extraClientMetadata: {
    properties: ['scope'],
    validator(ctx, key, value, metadata) {
      if (ctx?.oidc?.route === 'registration') delete metadata.scope;
    },
  },
  // Access tokens say who they are for; the ID token and userinfo are not used.
  scopes: ['openid', 'offline_access'],
  pkce: { required: () => true },
  // Error pages as JSON, for the headless browser to report.
  renderError(ctx, out, error) {
    log('render_error', { ...out, detail: String(error?.stack ?? error) });
    ctx.type = 'json';
    ctx.body = out;
  },
});

for (const event of ['server_error', 'grant.error', 'authorization.error', 'registration_create.error', 'introspection.error']) {
  provider.on(event, (ctx, error) => log(event, { error: error?.message, detail: error?.error_description }));
}
for (const event of ['registration_create.success', 'grant.success', 'authorization.success']) {
  provider.on(event, () => log(event));
}

server.on('request', provider.callback());

const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
console.log(JSON.stringify({
  issuer,
  jwks_uri: discovery.jwks_uri,
  authorization_endpoint: discovery.authorization_endpoint,
  token_endpoint: discovery.token_endpoint,
  introspection_endpoint: discovery.introspection_endpoint,
  registration_endpoint: discovery.registration_endpoint,
  clients: secrets,
}));
log('listening', { issuer });

const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args['exit-with-stdin']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
