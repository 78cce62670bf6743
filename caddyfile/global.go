package caddyfile

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/module"
)

const globalOptionName = "iap"

func init() {
	httpcaddyfile.RegisterGlobalOption(globalOptionName, parseGlobal)
}

// parseGlobal parses the global option, the `iap` app:
//
//	{
//		iap {
//			idp {
//				provider_url <url>
//				client_id <id>
//				client_secret <secret>
//				scopes <scope...>
//				groups_claim <claim>
//			}
//			cookie_name <name>
//			cookie_secret <base64 of 32 bytes>
//			cookie_secret_previous <base64 of 32 bytes...>
//			cookie_domain <domain>
//			cookie_expire <duration>
//			cookie_same_site lax|strict|none
//			signing_key_file <path>
//			signing_key <base64 PEM>
//			signing_key_rotate <duration>
//			revocation_refresh <duration>
//			revocation_fail_closed_after <duration>
//			session_store cookie|storage
//			jwt_claims_headers <Header=claim...>
//			bearer_token_format idp_identity_token|idp_access_token|jwt|passthrough
//			idp_access_token_allowed_audiences <audience...>
//			pass_identity_headers true|false
//			authorize_log_fields <field...>
//			compat pomerium
//			certificate_authority_file <path>
//			certificate_authority <base64 PEM>
//			tracing { ... }
//			identity_provider <name> {
//				issuer <url>
//				jwks_url <url>
//				audiences <audience...>
//				supported_algs <alg...>
//			}
//		}
//	}
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(module.App)
	if prev, ok := existing.(httpcaddyfile.App); ok {
		if err := json.Unmarshal(prev.Value, app); err != nil {
			return nil, err
		}
	}
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	one := func(target *string) error {
		opt := d.Val()
		if !d.NextArg() {
			return d.Errf("%s takes one value", opt)
		}
		*target = d.Val()
		if d.NextArg() {
			return d.Errf("%s takes one value, got more: %q", opt, d.Val())
		}
		return nil
	}
	for d.NextBlock(0) {
		opt := d.Val()
		var err error
		switch opt {
		case "idp":
			// idp { ... } is the default; idp NAME { ... } names another.
			if name := d.RemainingArgs(); len(name) == 1 {
				if app.IDPs == nil {
					app.IDPs = map[string]*module.IDP{}
				}
				if app.IDPs[name[0]] != nil {
					return nil, d.Errf("idp %s is set twice", name[0])
				}
				app.IDPs[name[0]] = new(module.IDP)
				err = parseIDP(d, app.IDPs[name[0]])
				break
			} else if len(name) > 1 {
				return nil, d.Err("idp takes at most one name")
			}
			if app.IDP == nil {
				app.IDP = new(module.IDP)
			}
			err = parseIDP(d, app.IDP)
		case "identity_provider":
			err = parseWorkloadIssuer(d, app)
		case "cookie_name":
			err = one(&app.CookieName)
		case "cookie_secret":
			err = one(&app.CookieSecret)
		case "cookie_domain":
			err = one(&app.CookieDomain)
		case "cookie_same_site":
			err = one(&app.CookieSameSite)
		case "authenticate_url":
			err = one(&app.AuthenticateURL)
		case "sign_out_redirect_url":
			err = one(&app.SignOutRedirectURL)
		case "programmatic_redirect_domain_whitelist":
			// Repeatable; each line adds to the list.
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Err("programmatic_redirect_domain_whitelist takes one or more host names, such as localhost example.com")
			}
			for _, a := range args {
				if err := authn.CheckRedirectDomain(a); err != nil {
					return nil, d.Errf("programmatic_redirect_domain_whitelist %q: %v", a, err)
				}
			}
			app.ProgrammaticRedirectDomainWhitelist = append(app.ProgrammaticRedirectDomainWhitelist, args...)
		case "jwt_issuer_format":
			err = one(&app.JWTIssuerFormat)
		case "bearer_token_format":
			if err = one(&app.BearerTokenFormat); err == nil {
				if cerr := authn.CheckBearerFormat(app.BearerTokenFormat); cerr != nil {
					return nil, d.Err(cerr.Error())
				}
			}
		case "idp_access_token_allowed_audiences":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Err("idp_access_token_allowed_audiences takes one or more audiences (client IDs) that access tokens may be for")
			}
			app.IDPAccessTokenAllowedAudiences = append(app.IDPAccessTokenAllowedAudiences, args...)
		case "signing_key_file":
			err = one(&app.SigningKeyFile)
		case "signing_key":
			err = one(&app.SigningKey)
		case "cookie_secret_previous":
			// Repeatable; each line adds to the list.
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Err("cookie_secret_previous takes one or more secrets that cookie_secret replaced")
			}
			app.CookieSecretPrevious = append(app.CookieSecretPrevious, args...)
		case "signing_key_rotate":
			var s string
			if err = one(&s); err == nil {
				dur, perr := parseDuration(s)
				if perr != nil || dur <= 0 {
					return nil, d.Errf("signing_key_rotate takes a positive duration such as 24h, got %q", s)
				}
				app.SigningKeyRotate = dur
			}
		case "compat":
			err = one(&app.Compat)
		case "tracing":
			app.Tracing, err = parseTracing(d)
		case "certificate_authority_file":
			err = one(&app.CertificateAuthorityFile)
		case "certificate_authority":
			err = one(&app.CertificateAuthority)
		case "cookie_expire":
			var s string
			if err = one(&s); err == nil {
				var dur caddy.Duration
				dur, err = parseDuration(s)
				if err != nil {
					return nil, d.Errf("cookie_expire: %v", err)
				}
				app.CookieExpire = dur
			}
		case "session_store":
			if err = one(&app.SessionStore); err == nil && app.SessionStore != "cookie" && app.SessionStore != "storage" {
				return nil, d.Errf("session_store: %q is not cookie or storage", app.SessionStore)
			}
		case "revocation_refresh", "revocation_fail_closed_after":
			opt, target := d.Val(), &app.RevocationRefresh
			if opt == "revocation_fail_closed_after" {
				target = &app.RevocationFailClosedAfter
			}
			var s string
			if err = one(&s); err == nil {
				dur, perr := parseDuration(s)
				if perr != nil || dur <= 0 {
					return nil, d.Errf("%s takes a positive duration such as 5s, got %q", opt, s)
				}
				*target = dur
			}
		case "pass_identity_headers":
			var s string
			if err = one(&s); err == nil {
				b, perr := strconv.ParseBool(s)
				if perr != nil {
					return nil, d.Errf("pass_identity_headers takes true or false, got %q", s)
				}
				app.PassIdentityHeaders = &b
			}
		case "authorize_log_fields":
			// Repeatable; each line adds to the list.
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Err("authorize_log_fields takes the fields of the authorize check line, such as request-id method path host ip user email route-id")
			}
			if cerr := module.CheckAuthorizeLogFields(args); cerr != nil {
				return nil, d.Err(cerr.Error())
			}
			app.AuthorizeLogFields = append(app.AuthorizeLogFields, args...)
		case "jwt_claims_headers":
			args := d.RemainingArgs()
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				args = append(args, append([]string{d.Val()}, d.RemainingArgs()...)...)
			}
			if len(args) == 0 {
				return nil, d.Err("jwt_claims_headers takes Header=claim pairs")
			}
			if app.JWTClaimsHeaders == nil {
				app.JWTClaimsHeaders = map[string]string{}
			}
			for _, a := range args {
				header, claim, ok := strings.Cut(a, "=")
				if !ok || header == "" || claim == "" {
					return nil, d.Errf("jwt_claims_headers: %q is not Header=claim", a)
				}
				app.JWTClaimsHeaders[header] = claim
			}
		default:
			return nil, d.Errf("unrecognized iap option %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "iap", Value: caddyconfig.JSON(app, nil)}, nil
}

func parseIDP(d *caddyfile.Dispenser, idp *module.IDP) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		if opt == "scopes" {
			if len(args) == 0 {
				return d.Err("scopes takes one or more scopes")
			}
			idp.Scopes = args
			continue
		}
		if opt == "request_param" {
			// Repeatable: request_param <name> <value>.
			if len(args) != 2 {
				return d.Err("request_param takes a name and a value, such as request_param prompt select_account")
			}
			if idp.RequestParams == nil {
				idp.RequestParams = map[string]string{}
			}
			idp.RequestParams[args[0]] = args[1]
			continue
		}
		if len(args) != 1 {
			return d.Errf("idp %s takes one value", opt)
		}
		switch opt {
		case "provider_url":
			// Checked here too, so the error names this line; a
			// placeholder is checked once replaced, at provision.
			if u, err := url.Parse(args[0]); !strings.Contains(args[0], "{") && (err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "") {
				return d.Errf("idp provider_url %q is not an http(s) URL: write the issuer with its scheme, such as https://%s", args[0], strings.TrimPrefix(args[0], "//"))
			}
			idp.ProviderURL = args[0]
		case "client_id":
			idp.ClientID = args[0]
		case "client_secret":
			idp.ClientSecret = args[0]
		case "groups_claim":
			idp.GroupsClaim = args[0]
		default:
			return d.Errf("unrecognized idp option %q", opt)
		}
	}
	if idp.ProviderURL == "" || idp.ClientID == "" {
		return d.Err("idp needs provider_url and client_id")
	}
	return nil
}

func parseDuration(s string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(s)
	return caddy.Duration(dur), err
}

// globalApp returns the `iap` global option as the app it configures.
func globalApp(h httpcaddyfile.Helper) (*module.App, error) {
	app := new(module.App)
	if v, ok := h.Option(globalOptionName).(httpcaddyfile.App); ok {
		if err := json.Unmarshal(v.Value, app); err != nil {
			return nil, err
		}
	}
	return app, nil
}
