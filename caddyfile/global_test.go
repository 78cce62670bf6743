package caddyfile_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The key rotation options of the global `iap` option become the app's
// JSON fields of the same names.
func TestGlobalKeyRotationOptions(t *testing.T) {
	out, err := adapt(t, `{
	iap {
		cookie_secret bmV3bmV3bmV3bmV3bmV3bmV3bmV3bmV3bmV3bmV3bmU=
		cookie_secret_previous b2xkMW9sZDFvbGQxb2xkMW9sZDFvbGQxb2xkMW9sZDE= b2xkMm9sZDJvbGQyb2xkMm9sZDJvbGQyb2xkMm9sZDI=
		cookie_secret_previous b2xkM29sZDNvbGQzb2xkM29sZDNvbGQzb2xkM29sZDM=
		signing_key_rotate 24h
	}
}
app.example.com {
	respond ok
}`)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			IAP struct {
				Previous []string `json:"cookie_secret_previous"`
				Rotate   int64    `json:"signing_key_rotate"`
			} `json:"iap"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps.IAP.Previous) != 3 || !strings.HasPrefix(cfg.Apps.IAP.Previous[2], "b2xkM") || cfg.Apps.IAP.Rotate != int64(24*60*60*1e9) {
		t.Errorf("got %+v from:\n%s", cfg.Apps.IAP, out)
	}

	for _, tc := range []struct{ name, option, want string }{
		{"cookie_secret_previous needs a secret", "cookie_secret_previous", "cookie_secret_previous takes one or more secrets"},
		{"signing_key_rotate needs a duration", "signing_key_rotate soon", "signing_key_rotate takes a positive duration"},
		{"signing_key_rotate must be positive", "signing_key_rotate 0s", "signing_key_rotate takes a positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adapt(t, "{\n\tiap {\n\t\t"+tc.option+"\n\t}\n}\napp.example.com {\n\trespond ok\n}")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v", err)
			}
		})
	}
}
