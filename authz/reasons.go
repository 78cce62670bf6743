package authz

// Reason names why a request was admitted or refused. This file is the one
// list of reasons: the same words appear in logs, error pages ({"reason":
// ...} and {http.error.id}), metrics and tests, whichever package decides.
type Reason string

// The reasons a policy gives.
const (
	// ReasonAllowed: an allow rule matched and no deny rule did.
	ReasonAllowed Reason = "allowed"
	// ReasonDenied: a deny rule matched.
	ReasonDenied Reason = "denied"
	// ReasonNotAllowed: no allow rule matched.
	ReasonNotAllowed Reason = "not-allowed"
	// ReasonNoPolicy: the route has no allow rule at all, so it is closed
	// to everyone, as in Pomerium.
	ReasonNoPolicy Reason = "no-policy"
)

// The reasons of refusals made before or around the policy: by the request
// path, sign-in and client certificates.
const (
	// ReasonAmbiguousPath: the path's meaning depends on how it is decoded
	// (an encoded / or \, an encoded dot segment, a NUL), so no policy
	// can decide on it. 400.
	ReasonAmbiguousPath Reason = "ambiguous-path"
	// ReasonUpgradeRefused: an Upgrade other than websocket. 400.
	ReasonUpgradeRefused Reason = "upgrade-refused"
	// ReasonUnauthenticated: the policy needs a signed-in user and there
	// is none. 302 to sign in (browsers) or 401.
	ReasonUnauthenticated Reason = "user-unauthenticated"
	// ReasonBadToken: an Authorization: Bearer token that is not a valid
	// ID token of the IdP for this client. 401.
	ReasonBadToken Reason = "invalid-bearer-token"
	// ReasonCookieAndBearer: a request to a route that takes workload
	// JWTs (bearer_token_format jwt) carried a session cookie too, which
	// Pomerium refuses with 400: a browser's and a machine's credentials
	// together are a confused or forged client.
	ReasonCookieAndBearer Reason = "cookie-and-bearer"
	// ReasonIdPUnavailable: signing in (or refreshing) needs the IdP and it
	// cannot be reached. 503 with Retry-After.
	ReasonIdPUnavailable Reason = "identity-provider-unavailable"
	// ReasonRevocationsUnavailable: a signed-in request while the
	// revocation list could not be read from storage for longer than
	// revocation_fail_closed_after. 503 with Retry-After.
	ReasonRevocationsUnavailable Reason = "revocations-unavailable"
	// ReasonSessionStoreUnavailable: the request's server-side session
	// (session_store storage) could not be read from storage. 503 with
	// Retry-After; the session is kept.
	ReasonSessionStoreUnavailable Reason = "session-store-unavailable"
	// ReasonNoIdP: an /.iap/ endpoint on a route whose Caddy has no
	// identity provider. 404.
	ReasonNoIdP Reason = "no-identity-provider"
	// ReasonBadCallback: the IdP's redirect back failed a check (state,
	// login cookie, code exchange, ID token). 400.
	ReasonBadCallback Reason = "invalid-callback"
	// ReasonCSRF: a sign-out without this session's form token, or a
	// cross-site one. 403.
	ReasonCSRF Reason = "csrf-token-mismatch"
	// ReasonSessionTooLarge: the user's session does not fit in cookies
	// under the server's header limit. 400.
	ReasonSessionTooLarge Reason = "session-too-large"
	// ReasonNotFound: no such /.iap/ page. 404.
	ReasonNotFound Reason = "not-found"
	// ReasonMethodNotAllowed: an /.iap/ endpoint called with a method it
	// does not take. 405.
	ReasonMethodNotAllowed Reason = "method-not-allowed"
	// ReasonInternal: the server failed (e.g. signing an assertion). 500.
	ReasonInternal Reason = "internal-error"
	// ReasonClientCertRequired: the site needs a client certificate and
	// none was sent. 495.
	ReasonClientCertRequired Reason = "client-certificate-required"
	// ReasonInvalidClientCert: the client certificate failed
	// verification. 495.
	ReasonInvalidClientCert Reason = "invalid-client-certificate"
	// ReasonClientCertStatusUnavailable: the client certificate's
	// revocation status could not be established with its OCSP responder
	// (down, late, a bad answer, or "unknown"), named in the message and
	// the log, and iap_mtls ocsp is hard. 495 (reject_connection: the
	// handshake fails).
	ReasonClientCertStatusUnavailable Reason = "client-certificate-status-unavailable"
	// ReasonMisdirected: the Host is not a name the TLS connection was
	// made for. 421.
	ReasonMisdirected Reason = "misdirected-request"
	// ReasonBadHandoff: a central sign-in's hand-off failed a check (for
	// another host, expired, used before, forged, or not started in this
	// browser). 400.
	ReasonBadHandoff Reason = "invalid-handoff"
)

// The reasons of a policy's refusal that say more than not-allowed.
const (
	// ReasonCertUserMismatch: a signed-in user sent a valid client
	// certificate that was not issued to them (client_certificate_user),
	// and the policy let nothing else in. 403.
	ReasonCertUserMismatch Reason = "client-certificate-user-mismatch"
)

// The reasons of a refused back-channel logout (OpenID Connect
// Back-Channel Logout 1.0), both 400 as the spec asks.
const (
	// ReasonBadLogoutRequest: a request to /.iap/backchannel_logout that is
	// not a POST of one logout_token form field within 16 KB. 400.
	ReasonBadLogoutRequest Reason = "invalid-logout-request"
	// ReasonBadLogoutToken: a logout token that does not verify (key,
	// iss, aud, iat, events, sid or sub, no nonce) or whose jti was seen
	// before. 400.
	ReasonBadLogoutToken Reason = "invalid-logout-token"
)

// The reasons of refusals after the policy allowed the request.
const (
	// ReasonNoUpstream: the route's upstreams are all unhealthy (health
	// checks, outlier detection) or all at their limit of requests
	// (circuit breakers), so none can take the request. 503 with
	// Retry-After.
	ReasonNoUpstream Reason = "no-upstream-available"
)
