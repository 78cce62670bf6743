package pomerium

import (
	"encoding/base64"
	"testing"
)

// fuzzEnvNames are the variables FuzzAdapt sets: every global setting's
// (envNames), the list and map ones with their own forms, and the old
// HEADERS.
func fuzzEnvNames() []string {
	return append(envNames(), "HEADERS", "POLICY", "ROUTES", "CERTIFICATES", "SET_RESPONSE_HEADERS")
}

// FuzzAdapt feeds config.yaml text to the adapter together with two
// environment variables (each a global setting's, by its index in
// fuzzEnvNames) set to fuzzed values: the environment path and the file
// path together. Nothing may panic.
func FuzzAdapt(f *testing.F) {
	routesB64 := base64.StdEncoding.EncodeToString([]byte(`[{"from":"https://a.example","to":"http://b/x","regex_rewrite_pattern":"^/(.*)$","regex_rewrite_substitution":"\\1"}]`))
	f.Add("routes:\n  - from: https://a.example\n    to: [http://b:1,2, http://c:2,1]\n    prefix: /x/\n    prefix_rewrite: /y/\n    allow_public_unauthenticated_access: true\n", uint(0), "", uint(1), "")
	f.Add("idp_provider: google\nidp_client_id: x\ncookie_secret: V2JBZk0zWGtsL29UcFUvWjVDWC9qK1JKS3Jhc0RaSmQ=\nroutes:\n  - from: https://a.example\n    to: http://b\n    policy:\n      - allow:\n          or:\n            - groups: {has: admins}\n", uint(3), "https://authenticate.example.com", uint(7), "x")
	f.Add("downstream_mtls:\n  ca: Zm9v\n  enforcement: policy\nroutes: []\n", uint(10), "false", uint(11), "true")
	f.Add("jwt_claims_headers: [email]\naddress: :1\nhttp_redirect_addr: :2\n", uint(20), "{", uint(21), "[")
	f.Add("routes:\n  - from: https://a.example\n    to: http://b\n    redirect: {https_redirect: true, host_redirect: c.example}\n", uint(30), "[]", uint(31), "{}")
	f.Add("routes:\n  - from: https://a.example\n    to: http://b\n    host_path_regex_rewrite_pattern: '^/(.+)/'\n    host_path_regex_rewrite_substitution: '\\1'\n    host_rewrite_header: X-H\n", uint(40), "1s", uint(41), "http3")
	f.Add("insecure_server: true\nuse_proxy_protocol: true\ncodec_type: http2\nautocert: true\nautocert_email: a@b\n", uint(50), "KEEP_UNCHANGED", uint(51), "x:y,z")
	f.Add("circuit_breaker_thresholds: {max_requests: 3}\nroutes:\n  - from: https://a.example\n    to: [http://b, http://c]\n    allow_public_unauthenticated_access: true\n    outlier_detection: {consecutive_5xx: 2, max_ejection_percent: 50, interval: 5s, always_eject_one_host: {value: true}}\n    circuit_breaker_thresholds: {max_connections: 1}\n    healthy_panic_threshold: 30\n", uint(0), "", uint(1), "")
	f.Add("idp_provider_url: https://i.example\nidp_client_id: x\nbearer_token_format: jwt\nidentity_providers:\n  ci: {issuer: https://t.example, audiences: [api], supported_algs: [RS256], jwks_url: https://t.example/k}\nroutes:\n  - from: https://a.example\n    to: http://b\n    identity_providers: [ci]\n    allow_any_authenticated_user: true\n", uint(0), "", uint(1), "")
	names := fuzzEnvNames()
	for i, n := range names {
		switch n {
		case "ROUTES", "POLICY":
			f.Add("{}\n", uint(i), routesB64, uint(i+1), "")
		case "CERTIFICATES":
			f.Add("{}\n", uint(i), `[{"cert":"/c","key":"/k"}]`, uint(0), "")
		case "IDENTITY_PROVIDERS":
			f.Add("routes: []\n", uint(i), `{"ci":{"issuer":"https://t.example","audiences":["api"]}}`, uint(0), "")
		case "HEADERS", "SET_RESPONSE_HEADERS", "JWT_CLAIMS_HEADERS":
			f.Add("routes: []\n", uint(i), `{"X-A":"1"}`, uint(0), "")
		}
	}
	f.Fuzz(func(t *testing.T, src string, which1 uint, value1 string, which2 uint, value2 string) {
		env := map[string]string{
			names[which1%uint(len(names))]: value1,
			names[which2%uint(len(names))]: value2,
		}
		_, _, _ = adaptWithEnv([]byte(src), map[string]any{"filename": "fuzz.yaml"}, func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok && v != ""
		})
	})
}
