package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// /.iap/user names the plugin's version the module passes in, and leaves
// the field out when there is none.
func TestUserInfoShowsTheVersion(t *testing.T) {
	for _, version := range []string{"v0.1.0", "(devel)", ""} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		a, err := New(Config{ProviderURL: "https://idp.test", ClientID: "caddy", CookieSecret: secret(t), SigningKey: key, Version: version})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(a.userInfo(httptest.NewRequest("GET", "https://app.test/.iap/user", nil), &Session{Subject: "alice"}))
		var u map[string]any
		_ = json.Unmarshal(b, &u)
		got, present := u["version"]
		if version == "" && present || version != "" && got != version {
			t.Errorf("Version %q: /.iap/user is %s", version, b)
		}
	}
}
