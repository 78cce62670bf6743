package pomerium

import "testing"

// FuzzAdapt feeds config.yaml text to the adapter, with one environment
// variable (a global setting's, by its index in envNames) set to a fuzzed
// value: nothing may panic.
func FuzzAdapt(f *testing.F) {
	f.Add("routes:\n  - from: https://a.example\n    to: [http://b:1,2, http://c:2,1]\n    prefix: /x/\n    prefix_rewrite: /y/\n    allow_public_unauthenticated_access: true\n", uint(0), "")
	f.Add("idp_provider: google\nidp_client_id: x\ncookie_secret: V2JBZk0zWGtsL29UcFUvWjVDWC9qK1JKS3Jhc0RaSmQ=\nroutes:\n  - from: https://a.example\n    to: http://b\n    policy:\n      - allow:\n          or:\n            - groups: {has: admins}\n", uint(3), "https://authenticate.example.com")
	f.Add("downstream_mtls:\n  ca: Zm9v\n  enforcement: policy\nroutes: []\n", uint(10), "false")
	f.Add("jwt_claims_headers: [email]\naddress: :1\nhttp_redirect_addr: :2\n", uint(20), "{")
	f.Add("routes:\n  - from: https://a.example\n    to: http://b\n    redirect: {https_redirect: true, host_redirect: c.example}\n", uint(30), "[]")
	names := envNames()
	f.Fuzz(func(t *testing.T, src string, which uint, value string) {
		name := names[which%uint(len(names))]
		_, _, _ = adaptWithEnv([]byte(src), map[string]any{"filename": "fuzz.yaml"}, func(k string) (string, bool) {
			return value, k == name && value != ""
		})
	})
}
