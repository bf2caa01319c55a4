// Package oauth lets accounts log in with an OAuth 2.0 bearer token (RFC 6750), a JWT
// (RFC 7519) issued by the token issuer their tenant trusts (metadata.proto OAuthSettings,
// `strata tenant oauth set`), through the SASL mechanisms OAUTHBEARER (RFC 7628) and
// XOAUTH2 (Google's predecessor of it). It holds what IMAP (frontend/imap) and ManageSieve
// (frontend/managesieve) share: the parsers of the two mechanisms' client messages, the
// RFC 7628 3.2.2 error challenge, and the Verifier that turns a token into an account.
//
// A token is verified in this order (Verifier.Verify):
//
//  1. It is a JWS in compact form (RFC 7515 7.1) with an "alg" among the asymmetric
//     algorithms a tenant may accept; "none" and the HMAC algorithms are refused while
//     parsing, before anything else is read.
//  2. Its unverified "iss" names the issuer; FindOAuthIssuer answers the tenants that
//     trust it (none: refused).
//  3. For each such tenant: the "alg" is one the tenant accepts (default RS256, ES256,
//     EdDSA); the signature verifies with the key of the token's "kid" in the issuer's
//     JWKS (RFC 7517); "iss" is the issuer, "aud" names the tenant's audience, "exp" is
//     present and, like "nbf" and "iat", holds within Leeway (RFC 7519 4.1); the tenant's
//     account claim is a string naming an existing, enabled account of that tenant, and
//     the SASL authorization identity, when the client gave one, names the same account.
//
// Every refusal is ErrInvalidToken (wrapped with the reason, for the log only); a client
// learns no more than RFC 7628 3.2.2's "invalid_token". An issuer whose keys cannot be
// fetched and a metadata service that cannot answer are other errors, for "try later".
//
// Settings. The tenants that trust an issuer are read from the metadata leader
// (FindOAuthIssuer) and reused for Config.IssuerTTL (10 s by default, as the LDAP settings
// of frontend/ldapauth), so a login costs one metadata call (the account's) rather than
// two: `strata tenant oauth set|clear` applies on every frontend within that time (a
// cleared issuer is trusted that much longer), with nothing to propagate. Unknown issuers
// are remembered too, in a table of at most 1024 issuers dropped whole when full. The
// mechanisms are announced by every frontend that has a Verifier
// (where PLAIN is: TLS or trusted loopback) whether or not any tenant has an issuer: the
// capability list comes before the client names its account, so it cannot depend on the
// tenant, and a client of a tenant without one is refused like a bad token.
//
// Keys. The JWKS is fetched over HTTPS only (Config.RootCAs, else the system roots; no
// redirect to another scheme), from the tenant's jwks_uri or from the "jwks_uri" of the
// issuer's discovery document (OpenID Connect Discovery 1.0 4: issuer +
// "/.well-known/openid-configuration", whose "issuer" must be the issuer, 4.3). Each key
// source is cached: refetched after KeyTTL, and at once for a "kid" it does not hold, but
// at most once per KeyRefreshInterval, so tokens with made-up kids cannot make the
// frontend hammer the issuer; documents are read up to 1 MiB, sets up to 100 keys, and at
// most MaxKeySources sources are cached. Keys of a kind go-jose cannot read are skipped,
// not fatal to the set; keys with "use" other than "sig" are never used.
//
// Why go-jose and not go-oidc: go-oidc's IDTokenVerifier is made for OpenID Connect ID
// tokens of one client: one audience, its own fixed clock skew for "nbf" only, and a
// RemoteKeySet that refetches the JWKS for every unknown "kid" with no rate limit. Mail
// logins carry access tokens whose audience is a tenant's setting, and the refetch must be
// bounded; go-jose (which go-oidc itself uses) gives the JWS/JWK parsing and signature
// checks, and this package owns the policy around them.
package oauth
