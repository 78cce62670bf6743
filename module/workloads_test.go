package module

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The iap app's identity_providers are checked at provision (so at caddy
// validate for JSON configs), each error naming the provider and the
// setting, and bearer_token_format jwt needs them.
func TestWorkloadIssuersAreCheckedInJSON(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	ok := func() *WorkloadIssuer {
		return &WorkloadIssuer{Issuer: "https://issuer.example.com", Audiences: []string{"api"}}
	}
	for _, c := range []struct {
		name string
		app  App
		want string
	}{
		{"jwt without identity_providers", App{BearerTokenFormat: "jwt"}, "iap: bearer_token_format jwt: there are no identity_providers"},
		{"an http issuer off loopback", App{IdentityProviders: map[string]*WorkloadIssuer{"ci": {Issuer: "http://issuer.example.com", Audiences: []string{"api"}}}},
			`iap: identity_providers: identity provider "ci": issuer "http://issuer.example.com" must use https`},
		{"no audiences", App{IdentityProviders: map[string]*WorkloadIssuer{"ci": {Issuer: "https://issuer.example.com"}}}, `identity provider "ci": audiences are required`},
		{"HS256", App{IdentityProviders: map[string]*WorkloadIssuer{"ci": {Issuer: "https://issuer.example.com", Audiences: []string{"api"}, SupportedAlgs: []string{"HS256"}}}}, `supported_algs "HS256" is not accepted`},
		{"one issuer twice", App{IdentityProviders: map[string]*WorkloadIssuer{"a": ok(), "b": ok()}}, `identity providers "a" and "b" have the same issuer`},
		{"a null entry", App{IdentityProviders: map[string]*WorkloadIssuer{"ci": nil}}, `identity provider "ci": issuer is required`},
		{"kubernetes:///", App{IdentityProviders: map[string]*WorkloadIssuer{"k8s": {Issuer: "kubernetes:///", Audiences: []string{"api"}}}}, "the in-cluster Kubernetes issuer is not supported"},
	} {
		err := c.app.Provision(ctx)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	app := App{IdentityProviders: map[string]*WorkloadIssuer{"ci": ok()}}
	if err := app.Provision(ctx); err != nil || app.workloads == nil {
		t.Errorf("a good identity provider: %v", err)
	}
}
