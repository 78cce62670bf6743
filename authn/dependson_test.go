package authn

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// ChallengeThrough chains the sign-ins of the hosts a route depends on into
// the return URL; one that is not a host of this server (a typo, or a
// config pointing elsewhere) is never redirected to: the return URL rules
// drop the chain and the browser lands on the route host's root.
func TestChallengeThroughDependsOn(t *testing.T) {
	op := startTestOP(t)
	a := startAuthenticatorAt(t, op, &fakeClock{now: time.Now()}, func(c *Config) {
		c.AllowedRedirectHosts = func(h string) bool { return h == "api.test:8443" }
	})
	for _, c := range []struct {
		hosts []string
		want  string
	}{
		{[]string{"api.test"}, "https://api.test:8443/.iap/sign_in?redirect_uri=" + url.QueryEscape("https://app.test:8443/page?x=1")},
		{[]string{"evil.example"}, "https://app.test:8443/"},
		{[]string{"api.test:9443"}, "https://app.test:8443/"},
	} {
		req := httptest.NewRequest("GET", "https://app.test:8443/page?x=1", nil)
		req.Header.Set("Accept", "text/html")
		rec := httptest.NewRecorder()
		a.ChallengeThrough(rec, req, nil, c.hosts)
		if rec.Code != http.StatusFound {
			t.Fatalf("%v: %d", c.hosts, rec.Code)
		}
		var ls loginState
		for _, ck := range rec.Result().Cookies() {
			if a.isLoginName(ck.Name) {
				if _, err := a.login.open(ck.Name, ck.Value, &ls); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := a.returnURL(ls.ReturnTo, "app.test:8443"); got != c.want {
			t.Errorf("%v: after sign-in the browser goes to %q, want %q", c.hosts, got, c.want)
		}
	}
}
