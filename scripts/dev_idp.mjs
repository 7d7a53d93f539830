// DEVELOPMENT OpenID Connect provider standing in for Pro Santé Connect (PSC).
//
// The npm package oidc-provider (OpenID Certified) does the protocol; this script only
// configures it the way PSC behaves for us: scopes `openid scope_all`, `acr_values=eidas1`,
// PKCE S256 required, a confidential client, PSC's claim names (`SubjectNameID` = 8 + RPPS,
// `SubjectRefPro`, `given_name`, `family_name`…) served by the UserInfo endpoint,
// RP-initiated logout. Its login page lists fictitious identities and never asks for a
// secret: never expose it, never use it with real data.
//
// Used by `make run` (the demo regulator of fixtures/demo), scripts/newman.sh and the
// end-to-end tests (tests/support/dev_idp.py). Configuration, all optional:
//   DEV_IDP_PORT (5001), DEV_IDP_HOST (127.0.0.1), DEV_IDP_ISSUER (http://HOST:PORT),
//   DEV_IDP_ACCOUNTS  JSON file {login: {claims…}} (fixtures/demo/dev_idp_accounts.json),
//   DEV_IDP_CLIENT_ID / DEV_IDP_CLIENT_SECRET (fhir-agenda-dev / dev-secret-not-secret),
//   DEV_IDP_REDIRECT_URIS / DEV_IDP_POST_LOGOUT_URIS (comma-separated; default the
//   /sso/retour and /deconnexion/terminee of http://127.0.0.1:5000),
//   DEV_IDP_AUTH_METHOD (client_secret_basic), DEV_IDP_TOOLS (.tools: where npm put it).
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
const tools = resolve(root, env.DEV_IDP_TOOLS || '.tools');
const entry = createRequire(join(tools, 'package.json')).resolve('oidc-provider');
const { default: Provider, errors } = await import(pathToFileURL(entry).href);

const host = env.DEV_IDP_HOST || '127.0.0.1';
const port = Number(env.DEV_IDP_PORT || 5001);
const issuer = env.DEV_IDP_ISSUER || `http://${host}:${port}`;
const site = 'http://127.0.0.1:5000';
const list = (value, fallback) => (value || fallback).split(',').map((v) => v.trim()).filter(Boolean);
const accounts = JSON.parse(readFileSync(
  env.DEV_IDP_ACCOUNTS || join(root, 'fixtures/demo/dev_idp_accounts.json'), 'utf8'));

// Every claim the identities carry is released with scope_all, as PSC does.
const pscClaims = [...new Set(Object.values(accounts).flatMap((claims) => Object.keys(claims)))]
  .filter((name) => name !== 'sub');
const client = {
  client_id: env.DEV_IDP_CLIENT_ID || 'fhir-agenda-dev',
  client_secret: env.DEV_IDP_CLIENT_SECRET || 'dev-secret-not-secret',
  redirect_uris: list(env.DEV_IDP_REDIRECT_URIS, `${site}/sso/retour`),
  post_logout_redirect_uris: list(env.DEV_IDP_POST_LOGOUT_URIS, `${site}/deconnexion/terminee`),
  token_endpoint_auth_method: env.DEV_IDP_AUTH_METHOD || 'client_secret_basic',
  grant_types: ['authorization_code'],
  response_types: ['code'],
};
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'dev-idp', use: 'sig', alg: 'RS256' };

const escape = (text) => String(text).replace(/[&<>"']/g,
  (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const page = (title, body) => `<!doctype html><html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:0 auto;padding:1rem;color:#161616}
.dev{background:#fff4d6;border:2px solid #8a5a00;padding:.6rem .9rem;font-weight:700}
button{font:inherit;padding:.6rem 1rem;margin:.25rem 0;border:0;border-radius:3px;background:#000091;color:#fff;cursor:pointer}
input{font:inherit;padding:.5rem;border:1px solid #888}label{font-weight:600;display:block;margin-top:1rem}
li{margin:.5rem 0}</style></head><body>
<p class="dev" role="note">Fournisseur d'identité de DÉVELOPPEMENT (simulation de Pro Santé Connect) :
identités fictives, aucune vérification. Ne jamais l'utiliser en production.</p>${body}</body></html>`;

const configuration = {
  clients: [client],
  findAccount: async (ctx, id) => (accounts[id] ? {
    accountId: id,
    claims: async () => ({ ...accounts[id], sub: accounts[id].sub || id }),
  } : undefined),
  scopes: ['openid', 'scope_all'],
  claims: { openid: ['sub'], scope_all: pscClaims },
  acrValues: ['eidas1'],
  pkce: { required: () => true },
  cookies: { keys: ['dev-idp-cookie-key-not-secret'] },
  jwks: { keys: [signingKey] },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        // PSC signs out without a question; the form is submitted at once.
        ctx.body = page('Déconnexion', `${form}<h1>Déconnexion</h1>
<input type="hidden" name="logout" value="yes" form="op.logoutForm">
<button type="submit" form="op.logoutForm">Se déconnecter</button>
<script>document.getElementById('op.logoutForm').submit()</script>`);
      },
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // A first-party development client: every scope asked is granted, no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid scope_all');
    await grant.save();
    return grant;
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Erreur', `<h1>Erreur d'authentification</h1><p>${escape(out.error)} :
      ${escape(out.error_description || '')}</p>`);
  },
};

const provider = new Provider(issuer, configuration);
const callback = provider.callback();

function loginPage(uid, error) {
  const choices = Object.entries(accounts).map(([login, claims]) => `<li><button type="submit"
    name="login" value="${escape(login)}">${escape(claims.given_name || '')} ${escape(claims.family_name || '')}
    (${escape(claims.SubjectNameID || login)})</button></li>`).join('');
  return page('Connexion — Pro Santé Connect (développement)', `<h1>Connexion</h1>
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<p>Choisissez une identité fictive :</p><ul>${choices}</ul>
<label for="login">Ou saisissez l'identifiant d'une identité fictive</label>
<input id="login" name="login" autocomplete="off">
<button type="submit">Se connecter</button></form>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res) {
  const [, , uid, action] = new URL(req.url, issuer).pathname.split('/');
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');
    if (details.prompt.name !== 'login') {
      // Consent is granted by loadExistingGrant; anything else just continues.
      await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
      return;
    }
    if (req.method === 'POST' && action === 'login') {
      const login = (await readForm(req)).get('login') || '';
      if (accounts[login]) {
        await provider.interactionFinished(req, res, {
          login: { accountId: login, acr: 'eidas1', amr: ['pwd'] } },
        { mergeWithLastSubmission: false });
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(loginPage(uid, `Identité fictive inconnue : ${login}`));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(loginPage(uid));
  } catch (error) {
    res.writeHead(400, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(page('Erreur', `<h1>Session expirée</h1><p>${escape(error.message)}</p>`));
  }
}

createServer((req, res) => (req.url.startsWith('/interaction/') ? interaction(req, res)
  : callback(req, res))).listen(port, host, () => {
  console.log(`Development OpenID Connect provider (NOT Pro Santé Connect): ${issuer}`);
  console.log(`  discovery: ${issuer}/.well-known/openid-configuration`);
  console.log(`  client ${client.client_id} → ${client.redirect_uris.join(', ')}`);
  console.log(`  identities: ${Object.keys(accounts).join(', ')}`);
});
