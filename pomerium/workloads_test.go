package pomerium

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const workloadIDPs = `idp_provider_url: https://idp.example
idp_client_id: x
identity_providers:
  GitHub:
    issuer: https://token.actions.githubusercontent.com
    audiences: [https://api.example.com]
  k8s:
    issuer: https://kubernetes.default.svc.cluster.local
    jwks_url: https://10.0.0.1/openid/v1/jwks
    supported_algs: [RS256, ES256]
    audiences: api
`

// identity_providers become the iap app's (names lowercased, as Pomerium's
// loader does), and a jwt route's identity_providers its handler's; the
// route keeps the token for the upstream, as Pomerium does.
func TestIdentityProvidersAsPomerium(t *testing.T) {
	src := workloadIDPs + `routes:
  - from: https://api.example.com
    to: http://b
    bearer_token_format: jwt
    identity_providers: [github]
    policy:
      allow:
        and:
          - claim/repository: example/app
  - from: https://any.example.com
    to: http://b
    bearer_token_format: jwt
    allow_any_authenticated_user: true
`
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	app := cfg["apps"].(map[string]any)["iap"].(map[string]any)
	got, _ := json.Marshal(app["identity_providers"])
	want := `{"github":{"audiences":["https://api.example.com"],"issuer":"https://token.actions.githubusercontent.com"},"k8s":{"audiences":["api"],"issuer":"https://kubernetes.default.svc.cluster.local","jwks_url":"https://10.0.0.1/openid/v1/jwks","supported_algs":["RS256","ES256"]}}`
	if string(got) != want {
		t.Errorf("identity_providers:\n%s\nwant\n%s", got, want)
	}
	var routes []string
	walk(cfg, func(o map[string]any) {
		handlers, _ := o["handle"].([]any)
		if len(handlers) < 2 || handlers[1].(map[string]any)["handler"] != "iap_authorize" {
			return
		}
		h := handlers[0].(map[string]any)
		routes = append(routes, fmt.Sprintf("%v %v %v", h["bearer_token_format"], h["identity_providers"], h["pass_bearer_token"]))
	})
	if strings.Join(routes, "; ") != "jwt [github] true; jwt <nil> true" {
		t.Errorf("routes: %q", routes)
	}
}

// What Pomerium's IdentityProvider.Validate and validateIdentityProviders
// refuse is an adapt error naming the line.
func TestIdentityProvidersErrors(t *testing.T) {
	route := "routes:\n  - from: https://a.example\n    to: http://b\n    allow_any_authenticated_user: true\n"
	idp := func(name, body string) string {
		return "identity_providers:\n  " + name + ":\n" + body
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"an http issuer off loopback", idp("ci", "    issuer: http://idp.example.com\n    audiences: [api]\n") + route,
			`config.yaml:4: identity_providers[ci]: identity provider "ci": issuer "http://idp.example.com" must use https`},
		{"no audiences", idp("ci", "    issuer: https://idp.example.com\n") + route, `config.yaml:4: identity_providers[ci]: identity provider "ci": audiences are required`},
		{"HS256", idp("ci", "    issuer: https://idp.example.com\n    audiences: [api]\n    supported_algs: [HS256]\n") + route, `supported_algs "HS256" is not accepted`},
		{"none", idp("ci", "    issuer: https://idp.example.com\n    audiences: [api]\n    supported_algs: [none]\n") + route, `supported_algs "none" is not accepted`},
		{"an http jwks_url", idp("ci", "    issuer: https://idp.example.com\n    audiences: [api]\n    jwks_url: http://10.0.0.1/keys\n") + route, `jwks_url "http://10.0.0.1/keys" must be an https URL`},
		{"kubernetes:///", idp("k8s", "    issuer: kubernetes:///\n    audiences: [api]\n") + route, `config.yaml:4: identity_providers[k8s]: identity provider "k8s": issuer "kubernetes:///": the in-cluster Kubernetes issuer is not supported`},
		{"a name with a slash", idp("a/b", "    issuer: https://idp.example.com\n    audiences: [api]\n") + route, `must not contain '/'`},
		{"an unknown field", idp("ci", "    issuer: https://idp.example.com\n    audience: [api]\n") + route, `config.yaml:6: identity_providers[ci]: unknown field "audience"`},
		{"one issuer twice", "identity_providers:\n  a:\n    issuer: https://i.example\n    audiences: [x]\n  b:\n    issuer: https://i.example\n    audiences: [y]\n" + route,
			`config.yaml:7: identity_providers: issuer "https://i.example" used by both "a" and "b"`},
		{"a route naming an unknown provider", idp("ci", "    issuer: https://idp.example.com\n    audiences: [api]\n") + route + "    bearer_token_format: jwt\n    identity_providers: [gitlab]\n",
			`config.yaml:12: identity_providers: unknown identity provider "gitlab"`},
		{"a route naming one in capitals", idp("ci", "    issuer: https://idp.example.com\n    audiences: [api]\n") + route + "    bearer_token_format: jwt\n    identity_providers: [CI]\n",
			`config.yaml:12: identity_providers: unknown identity provider "CI" (provider names are lowercase: did you mean "ci"?)`},
		{"identity_providers on a route that is not jwt", idp("ci", "    issuer: https://idp.example.com\n    audiences: [api]\n") + route + "    identity_providers: [ci]\n",
			`config.yaml:11: identity_providers is only valid on routes with bearer_token_format jwt (this route's is default)`},
		{"a jwt route on a server without a sign-in IdP", "NOIDP" + idp("ci", "    issuer: https://idp.example.com\n    audiences: [api]\n") + route + "    bearer_token_format: jwt\n",
			`config.yaml:11: bearer_token_format jwt: caddy-iap reads workload JWTs on servers with a sign-in identity provider`},
		{"IDENTITY_PROVIDERS that is not JSON", route, "the environment variable IDENTITY_PROVIDERS is a JSON map of names to issuers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := "idp_provider_url: https://idp.example\nidp_client_id: x\n" + c.yaml
			if rest, ok := strings.CutPrefix(c.yaml, "NOIDP"); ok {
				src = "\n\n" + rest
			}
			_, _, err := adaptWithEnv([]byte(src), map[string]any{"filename": "config.yaml"}, func(k string) (string, bool) {
				return "ci=https://x", k == "IDENTITY_PROVIDERS" && strings.HasPrefix(c.name, "IDENTITY_PROVIDERS")
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// IDENTITY_PROVIDERS, a JSON map, replaces the file's, as Pomerium binds
// every setting to its environment variable.
func TestIdentityProvidersFromEnvironment(t *testing.T) {
	src := "idp_provider_url: https://idp.example\nidp_client_id: x\nroutes:\n  - from: https://a.example\n    to: http://b\n    bearer_token_format: jwt\n    allow_any_authenticated_user: true\n"
	out, _, err := adaptWithEnv([]byte(src), map[string]any{"filename": "config.yaml"}, func(k string) (string, bool) {
		return `{"ci": {"issuer": "https://token.actions.githubusercontent.com", "audiences": ["api"]}}`, k == "IDENTITY_PROVIDERS"
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"identity_providers":{"ci":{"issuer":"https://token.actions.githubusercontent.com","audiences":["api"]}}`) {
		t.Errorf("no identity_providers from IDENTITY_PROVIDERS in %s", out)
	}
}
