package pomerium

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/module"
)

// workloadIssuerKeys are the fields of a Pomerium identity_providers entry
// (config.IdentityProvider).
var workloadIssuerKeys = []string{"issuer", "jwks_url", "supported_algs", "audiences"}

// workloadIssuers reads the global identity_providers: a mapping of names
// to issuers of workload JWTs, which become the iap app's. Names are
// lowercased, as Pomerium's config loader lowercases the map's keys; each
// entry is checked as Pomerium's IdentityProvider.Validate checks it
// (https issuer and jwks_url but on loopback, audiences, no HS* or none,
// unique issuers), and kubernetes:/// is refused. Errors name the line.
func (c *converter) workloadIssuers(s settings, app *module.App) error {
	n := s.nodes["identity_providers"]
	if n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return c.errf(n, "identity_providers is a mapping of names to {issuer, audiences, jwks_url, supported_algs}")
	}
	byIssuer := map[string]string{}
	for _, kv := range pairs(n) {
		name := strings.ToLower(kv[0].Value)
		if app.IdentityProviders[name] != nil {
			return c.errf(kv[0], "identity_providers: %q is defined twice (names are lowercased, as Pomerium reads them)", name)
		}
		if kv[1].Kind != yaml.MappingNode {
			return c.errf(kv[1], "identity_providers[%s]: a mapping with issuer and audiences", name)
		}
		w := new(module.WorkloadIssuer)
		for _, f := range pairs(kv[1]) {
			var err error
			switch f[0].Value {
			case "issuer":
				w.Issuer, err = c.str(f[1])
			case "jwks_url":
				w.JWKSURL, err = c.str(f[1])
			case "supported_algs":
				w.SupportedAlgs, err = c.strings(f[1])
			case "audiences":
				w.Audiences, err = c.strings(f[1])
			default:
				return c.errf(f[0], "identity_providers[%s]: unknown field %q (%s)", name, f[0].Value, strings.Join(workloadIssuerKeys, ", "))
			}
			if err != nil {
				return err
			}
		}
		if err := authn.CheckWorkloadIssuer(authn.WorkloadIssuer{Name: name, Issuer: w.Issuer, JWKSURL: w.JWKSURL,
			SupportedAlgs: w.SupportedAlgs, Audiences: w.Audiences}); err != nil {
			return c.errf(kv[0], "identity_providers[%s]: %v", name, err)
		}
		if other, ok := byIssuer[w.Issuer]; ok {
			return c.errf(kv[0], "identity_providers: issuer %q used by both %q and %q", w.Issuer, other, name)
		}
		byIssuer[w.Issuer] = name
		if app.IdentityProviders == nil {
			app.IdentityProviders = map[string]*module.WorkloadIssuer{}
		}
		app.IdentityProviders[name] = w
	}
	return nil
}

// routeWorkloads reads a route's identity_providers, and checks the
// route's format against them as Pomerium's validateIdentityProviders
// does: a route whose bearer_token_format (its own, else the global one)
// is jwt needs identity_providers, and names only those that exist (an
// empty list, or none, accepts them all); another route may not set
// identity_providers. at is the node errors name: the route's setting,
// else the route.
func (c *converter) routeWorkloads(fields map[string]*yaml.Node, app *module.App, r *module.Route, at *yaml.Node) error {
	format := app.BearerTokenFormat
	if r.BearerTokenFormat != "" {
		format = r.BearerTokenFormat
	}
	if v := fields["bearer_token_format"]; v != nil {
		at = v
	}
	names := fields["identity_providers"]
	if format != authn.BearerJWT {
		if names != nil && !(names.Kind == yaml.SequenceNode && len(names.Content) == 0) && names.Tag != "!!null" {
			return c.errf(names, "identity_providers is only valid on routes with bearer_token_format jwt (this route's is %s)", pomeriumFormat(format))
		}
		return nil
	}
	if len(app.IdentityProviders) == 0 {
		return c.errf(at, "bearer_token_format jwt requires at least one identity_providers entry")
	}
	if app.IDP == nil {
		return c.errf(at, "bearer_token_format jwt: caddy-iap reads workload JWTs on servers with a sign-in identity provider (idp_provider_url), whose keys sign the identity assertion")
	}
	if names == nil || names.Tag == "!!null" {
		return nil
	}
	list, err := c.strings(names)
	if err != nil {
		return err
	}
	for _, name := range list {
		if app.IdentityProviders[name] != nil {
			continue
		}
		if app.IdentityProviders[strings.ToLower(name)] != nil {
			return c.errf(names, "identity_providers: unknown identity provider %q (provider names are lowercase: did you mean %q?)", name, strings.ToLower(name))
		}
		return c.errf(names, "identity_providers: unknown identity provider %q (the global identity_providers are %q)", name, slices.Sorted(maps.Keys(app.IdentityProviders)))
	}
	if len(list) > 0 {
		r.IdentityProviders = list
	}
	return nil
}

// pomeriumFormat names one of our bearer formats as Pomerium's config does.
func pomeriumFormat(f string) string {
	switch f {
	case "", authn.BearerPassthrough:
		return "default"
	}
	return f
}

// checkGlobalWorkloads refuses a global bearer_token_format jwt without
// identity_providers, naming its line (or environment variable).
func (c *converter) checkGlobalWorkloads(s settings, app *module.App) error {
	if app.BearerTokenFormat == authn.BearerJWT && len(app.IdentityProviders) == 0 {
		return c.settingErr(s, "bearer_token_format", fmt.Errorf("bearer_token_format jwt requires at least one identity_providers entry"))
	}
	return nil
}
