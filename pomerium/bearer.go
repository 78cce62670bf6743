package pomerium

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/module"
)

// bearerFormats are Pomerium's BearerTokenFormat values, in the enum's
// order, with what each becomes.
var bearerFormats = []struct{ name, ours string }{
	{"UNKNOWN", authn.BearerPassthrough},
	{"DEFAULT", authn.BearerPassthrough},
	{"IDP_ACCESS_TOKEN", authn.BearerAccessToken},
	{"IDP_IDENTITY_TOKEN", authn.BearerIDToken},
	{"JWT", authn.BearerJWT},
}

// bearerFormat reads a bearer_token_format as Pomerium's enum decoder
// does: the enum's name (BEARER_TOKEN_FORMAT_IDP_ACCESS_TOKEN), the name
// without its prefix (idp_access_token, default), or a suffix of a name
// after an underscore (access_token), case aside; "" is unknown. Unknown
// and default both leave bearer tokens alone: passthrough.
func bearerFormat(v string) (string, error) {
	match := func(ok func(full, short string) bool) (string, bool) {
		for _, f := range bearerFormats {
			if ok("BEARER_TOKEN_FORMAT_"+f.name, f.name) {
				return f.ours, true
			}
		}
		return "", false
	}
	up := strings.ToUpper(v)
	ours, ok := match(func(full, short string) bool { return up == full || up == short })
	if !ok && v != "" {
		ours, ok = match(func(full, _ string) bool { return strings.HasSuffix(full, "_"+up) })
	}
	switch {
	case v == "":
		return authn.BearerPassthrough, nil
	case !ok:
		return "", fmt.Errorf("bearer_token_format %q: want default, idp_access_token, idp_identity_token or jwt", v)
	}
	return ours, nil
}

// bearer sets the app's bearer_token_format and
// idp_access_token_allowed_audiences from the global settings. Unset,
// the format is Pomerium's default: bearer tokens are the upstream's.
func (c *converter) bearer(s settings, app *module.App) error {
	v, _ := s.value("bearer_token_format")
	f, err := bearerFormat(v)
	if err != nil {
		return c.settingErr(s, "bearer_token_format", err)
	}
	app.BearerTokenFormat = f
	provider, _ := s.value("idp_provider")
	c.azure = provider == "azure"
	if f == authn.BearerAccessToken {
		c.warnAzure(s.scalar["bearer_token_format"])
	}
	if n := s.nodes["idp_access_token_allowed_audiences"]; n != nil {
		if app.IDPAccessTokenAllowedAudiences, err = c.audiences(n); err != nil {
			return err
		}
	}
	return nil
}

// settingErr names where a global setting's bad value came from: its
// environment variable, else its line.
func (c *converter) settingErr(s settings, key string, err error) error {
	if _, ok := s.env[key]; ok {
		return fmt.Errorf("%s: the environment variable %s: %v", c.file, strings.ToUpper(key), err)
	}
	if n := s.scalar[key]; n != nil {
		return c.errf(n, "%v", err)
	}
	return fmt.Errorf("%s: %v", c.file, err)
}

// audiences reads an idp_access_token_allowed_audiences list. Pomerium
// takes an empty list as "no audience is allowed", which refuses every
// access token: that is refused here as a mistake.
func (c *converter) audiences(n *yaml.Node) ([]string, error) {
	list, err := c.strings(n)
	if err != nil {
		return nil, err
	}
	for _, a := range list {
		if strings.TrimSpace(a) == "" {
			return nil, c.errf(n, "idp_access_token_allowed_audiences: an empty audience")
		}
	}
	if len(list) == 0 {
		return nil, c.errf(n, "idp_access_token_allowed_audiences: an empty list would refuse every access token; list the audiences (client IDs) to accept, or remove the setting to accept any")
	}
	return list, nil
}

// routeBearer sets a route's bearer_token_format and audiences (each
// overriding the global one when set, even to "", as in Pomerium), and
// keeps the Authorization header for the upstream when the route reads
// bearer tokens: Pomerium removes only its own tokens (Authorization:
// Pomerium ...) on the way upstream, so an IdP token the route accepted
// reaches the upstream too.
func (c *converter) routeBearer(fields map[string]*yaml.Node, app *module.App, r *module.Route) error {
	format := app.BearerTokenFormat
	if v := fields["bearer_token_format"]; v != nil {
		s, err := c.str(v)
		if err == nil {
			format, err = bearerFormat(s)
		}
		if err != nil {
			return c.errf(v, "%v", err)
		}
		r.BearerTokenFormat = format
		if format == authn.BearerAccessToken {
			c.warnAzure(v)
		}
	}
	if v := fields["idp_access_token_allowed_audiences"]; v != nil {
		list, err := c.audiences(v)
		if err != nil {
			return err
		}
		r.IDPAccessTokenAllowedAudiences = list
	}
	r.PassBearerToken = format == authn.BearerAccessToken || format == authn.BearerIDToken || format == authn.BearerJWT
	return nil
}

// warnAzure warns that idp_access_token with idp_provider azure is not
// Pomerium's: Pomerium verifies an Azure access token locally, as a JWT
// signed with the tenant's keys (pkg/identity/oidc/azure), so tokens for
// the application's own API are accepted; here every IdP's access token is
// sent to its userinfo endpoint (Microsoft Graph), which takes only tokens
// issued for Graph and refuses the others. Nobody gets in that Pomerium
// would refuse.
func (c *converter) warnAzure(n *yaml.Node) {
	if c.azure {
		c.warn(n, "bearer_token_format idp_access_token with idp_provider azure: access tokens are verified with the IdP's userinfo endpoint (Microsoft Graph), which accepts only tokens issued for Graph; Pomerium also accepts tokens for your own API, verified locally. Such tokens are refused here; use idp_identity_token to accept ID tokens instead")
	}
}
