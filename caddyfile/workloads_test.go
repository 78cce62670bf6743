package caddyfile_test

import (
	"strings"
	"testing"
)

const workloadGlobals = `{
	iap {
		idp {
			provider_url https://idp.example
			client_id x
		}
		identity_provider ci {
			issuer https://token.actions.githubusercontent.com
			audiences https://api.example.com
		}
		identity_provider k8s {
			issuer https://kubernetes.default.svc.cluster.local
			jwks_url https://10.0.0.1/openid/v1/jwks
			audiences api other
			supported_algs RS256 ES256
		}
	}
}
`

// identity_provider blocks become the iap app's identity_providers, and a
// route's identity_providers and bearer_token_format jwt its handler's.
func TestWorkloadOptions(t *testing.T) {
	out, err := adapt(t, workloadGlobals+`api.example {
	iap_route {
		to http://127.0.0.1:1
		bearer_token_format jwt
		identity_providers ci
		policy {
			allow {
				and {
					claim/repository "example/app"
				}
			}
		}
	}
}
site.example {
	iap_authenticate {
		bearer_token_format jwt
		identity_providers k8s ci
	}
	respond ok
}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"identity_providers":{"ci":{"audiences":["https://api.example.com"],"issuer":"https://token.actions.githubusercontent.com"},"k8s":{"audiences":["api","other"],"issuer":"https://kubernetes.default.svc.cluster.local","jwks_url":"https://10.0.0.1/openid/v1/jwks","supported_algs":["RS256","ES256"]}}`,
		`"bearer_token_format":"jwt","handler":"iap_authenticate","hosts":["api.example"],"identity_providers":["ci"]`,
		`"bearer_token_format":"jwt","handler":"iap_authenticate","hosts":["site.example"],"identity_providers":["k8s","ci"]`,
	} {
		if !strings.Contains(compact(t, out), want) {
			t.Errorf("no %s in:\n%s", want, compact(t, out))
		}
	}
}

// Bad identity providers and route references fail at adapt (so at caddy
// validate), naming the setting and the line.
func TestWorkloadOptionErrors(t *testing.T) {
	global := func(block string) string {
		return "{\n\tiap {\n\t\tidentity_provider ci {\n" + block + "\t\t}\n\t}\n}\napp.example {\n\trespond ok\n}"
	}
	route := func(lines string) string {
		return workloadGlobals + "app.example {\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t\tallow_any_authenticated_user\n" + lines + "\t}\n}"
	}
	for _, c := range []struct{ name, src, want string }{
		{"plain http off loopback", global("\t\t\tissuer http://idp.example.com\n\t\t\taudiences api\n"), `issuer "http://idp.example.com" must use https (http only on a loopback host)`},
		{"no audiences", global("\t\t\tissuer https://idp.example.com\n"), `identity provider "ci": audiences are required: a token is accepted only for one of them, at Caddyfile:3`},
		{"HS256", global("\t\t\tissuer https://idp.example.com\n\t\t\taudiences api\n\t\t\tsupported_algs HS256\n"), `supported_algs "HS256" is not accepted`},
		{"alg none", global("\t\t\tissuer https://idp.example.com\n\t\t\taudiences api\n\t\t\tsupported_algs none\n"), `supported_algs "none" is not accepted`},
		{"kubernetes:///", global("\t\t\tissuer kubernetes:///\n\t\t\taudiences api\n"), `the in-cluster Kubernetes issuer is not supported`},
		{"an unknown option", global("\t\t\tissuer https://idp.example.com\n\t\t\taudience api\n"), `identity_provider ci: unrecognized option "audience"`},
		{"an http jwks_url", global("\t\t\tissuer https://idp.example.com\n\t\t\taudiences api\n\t\t\tjwks_url http://10.0.0.1/keys\n"), `jwks_url "http://10.0.0.1/keys" must be an https URL`},
		{"two with one issuer", "{\n\tiap {\n\t\tidentity_provider a {\n\t\t\tissuer https://i.example\n\t\t\taudiences x\n\t\t}\n\t\tidentity_provider b {\n\t\t\tissuer https://i.example\n\t\t\taudiences y\n\t\t}\n\t}\n}\n",
			`identity_provider b: issuer "https://i.example" is identity_provider a's too: a token's iss must say which one verifies it, at Caddyfile:7`},
		{"a route naming an unknown provider", route("\t\tbearer_token_format jwt\n\t\tidentity_providers gitlab\n"), `identity_providers: "gitlab" is not an identity_provider of the global iap option (["ci" "k8s"]), at Caddyfile:24`},
		{"identity_providers on a route without jwt", route("\t\tidentity_providers ci\n"), `identity_providers: only routes whose bearer_token_format is jwt read workload JWTs (this one's is ""), at Caddyfile:23`},
		{"jwt on a server without a sign-in idp", "{\n\tiap {\n\t\tidentity_provider ci {\n\t\t\tissuer https://i.example\n\t\t\taudiences x\n\t\t}\n\t}\n}\napp.example {\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t\tbearer_token_format jwt\n\t\tallow_any_authenticated_user\n\t}\n}",
			"bearer_token_format jwt: caddy-iap reads workload JWTs on servers with a sign-in identity provider (idp in the global iap option), whose keys sign the identity assertion, at Caddyfile:12"},
		{"iap_authenticate naming an unknown provider", workloadGlobals + "site.example {\n\tiap_authenticate {\n\t\tbearer_token_format jwt\n\t\tidentity_providers gitlab\n\t}\n\trespond ok\n}",
			`identity_providers: "gitlab" is not an identity_provider of the global iap option (["ci" "k8s"]), at Caddyfile:21`},
		{"iap_authenticate with identity_providers but not jwt", workloadGlobals + "site.example {\n\tiap_authenticate {\n\t\tidentity_providers ci\n\t}\n\trespond ok\n}",
			`identity_providers: only routes whose bearer_token_format is jwt read workload JWTs (this one's is ""), at Caddyfile:21`},
		{"identity_providers without a name", route("\t\tbearer_token_format jwt\n\t\tidentity_providers\n"), "identity_providers takes one or more names"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := adapt(t, c.src)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want %q", err, c.want)
			}
		})
	}
}
