package caddyfile_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// The revocation and session_store options of the global `iap` option become the app's JSON
// fields of the same names.
func TestGlobalRevocationOptions(t *testing.T) {
	out, err := adapt(t, `{
	iap {
		revocation_refresh 1s
		revocation_fail_closed_after 1m
		session_store storage
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
				Refresh    int64  `json:"revocation_refresh"`
				FailClosed int64  `json:"revocation_fail_closed_after"`
				Store      string `json:"session_store"`
			} `json:"iap"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Apps.IAP.Refresh != 1e9 || cfg.Apps.IAP.FailClosed != 60e9 || cfg.Apps.IAP.Store != "storage" {
		t.Errorf("got %+v from:\n%s", cfg.Apps.IAP, out)
	}
	for _, option := range []string{"revocation_refresh soon", "revocation_fail_closed_after 0s", "revocation_refresh", "session_store redis"} {
		_, err := adapt(t, "{\n\tiap {\n\t\t"+option+"\n\t}\n}\napp.example.com {\n\trespond ok\n}")
		if err == nil || !strings.Contains(err.Error(), strings.Fields(option)[0]) {
			t.Errorf("%s: got %v", option, err)
		}
	}
}
