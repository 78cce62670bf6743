package pomerium

import (
	"crypto/sha256"
	"encoding/hex"

	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/module"
)

// routeIDP maps a route's idp_client_id and idp_client_secret, Pomerium's
// per-route identity provider (the global idp_provider_url with a client
// of the route's own), onto a named IdP of the iap app, and returns its
// name; "" (the default IdP) when the route names no client, or the global
// one. Routes with the same client share one IdP, and so one session.
func (c *converter) routeIDP(fields map[string]*yaml.Node, app *module.App) (string, error) {
	idNode, secretNode := fields["idp_client_id"], fields["idp_client_secret"]
	if idNode == nil && secretNode == nil {
		return "", nil
	}
	at := idNode
	if at == nil {
		at = secretNode
	}
	var id, secret string
	var err error
	if idNode != nil {
		if id, err = c.str(idNode); err != nil {
			return "", err
		}
	}
	if secretNode != nil {
		if secret, err = c.str(secretNode); err != nil {
			return "", err
		}
	}
	if id == "" {
		return "", c.errf(at, "idp_client_secret on a route needs the route's idp_client_id")
	}
	if app.IDP == nil {
		return "", c.errf(at, "a route's idp_client_id needs the global identity provider (idp_provider_url and idp_client_id): the route's client is of that provider")
	}
	if id == app.IDP.ClientID {
		if secret != "" && secret != app.IDP.ClientSecret {
			return "", c.errf(at, "idp_client_id %q is the global client, with another idp_client_secret", id)
		}
		return "", nil
	}
	sum := sha256.Sum256([]byte(id))
	name := "client-" + hex.EncodeToString(sum[:6])
	if prev := app.IDPs[name]; prev != nil {
		if prev.ClientSecret != secret {
			return "", c.errf(at, "idp_client_id %q is used by another route with another idp_client_secret", id)
		}
		return name, nil
	}
	if app.IDPs == nil {
		app.IDPs = map[string]*module.IDP{}
	}
	app.IDPs[name] = &module.IDP{ProviderURL: app.IDP.ProviderURL, ClientID: id, ClientSecret: secret,
		Scopes: app.IDP.Scopes, GroupsClaim: app.IDP.GroupsClaim}
	return name, nil
}
