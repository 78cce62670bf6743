package pomerium

import "testing"

// FuzzAdapt feeds config.yaml text to the adapter: nothing may panic.
func FuzzAdapt(f *testing.F) {
	f.Add("routes:\n  - from: https://a.example\n    to: [http://b:1,2, http://c:2,1]\n    prefix: /x/\n    prefix_rewrite: /y/\n    allow_public_unauthenticated_access: true\n")
	f.Add("idp_provider: google\nidp_client_id: x\ncookie_secret: V2JBZk0zWGtsL29UcFUvWjVDWC9qK1JKS3Jhc0RaSmQ=\nroutes:\n  - from: https://a.example\n    to: http://b\n    policy:\n      - allow:\n          or:\n            - groups: {has: admins}\n")
	f.Add("downstream_mtls:\n  ca: Zm9v\n  enforcement: policy\nroutes: []\n")
	f.Add("jwt_claims_headers: [email]\naddress: :1\nhttp_redirect_addr: :2\n")
	f.Fuzz(func(t *testing.T, src string) {
		_, _, _ = Adapter{}.Adapt([]byte(src), map[string]any{"filename": "fuzz.yaml"})
	})
}
