package module

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
)

// decisionLine logs one decision with fields and returns the line's
// fields, as JSON would write them.
func decisionLine(t *testing.T, fields []string, r *http.Request, s *authn.Session) map[string]any {
	t.Helper()
	if err := CheckAuthorizeLogFields(fields); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	l := newAuthorizeLog(fields, zap.New(core))
	// As Caddy's server sets them up.
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.7"})
	r = r.WithContext(context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields)))
	caddyhttp.NewTestReplacer(r)
	l.log(r, &request{Session: s}, authz.Decision{Allow: true, Reason: authz.ReasonAllowed}, "app", 42)
	entries := logs.All()
	if len(entries) != 1 || entries[0].Message != "authorize check" {
		t.Fatalf("entries %v", entries)
	}
	return entries[0].ContextMap()
}

func keysOf(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestAuthorizeLogLine(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u1","email":"a@example.com","hd":"example.com"}`))
	idToken := "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
	alice := &authn.Session{ID: "sid-1", Subject: "u1", Email: "a@example.com", RawIDToken: idToken, RefreshToken: "refresh-secret"}
	req := func() *http.Request {
		r := httptest.NewRequest("GET", "https://app.example/p?q=1", nil)
		r.Header.Set("Cookie", "_iap=session-secret")
		r.Header.Set("Authorization", "Bearer bearer-secret")
		r.Header.Set("X-Trace", "t1")
		r.Header.Set("X-Forwarded-For", "203.0.113.66")
		return r
	}

	t.Run("Pomerium's default list holds no credential", func(t *testing.T) {
		m := decisionLine(t, DefaultAuthorizeLogFields, req(), alice)
		want := []string{"allow", "check-request-id", "deny", "email", "host", "ip", "method", "path", "reason", "request-id", "route-checksum", "route-id", "session-id", "user"}
		if got := keysOf(m); !slices.Equal(got, want) {
			t.Errorf("keys %v, want %v", got, want)
		}
		if m["ip"] != "192.0.2.7" || m["user"] != "u1" || m["session-id"] != "sid-1" || m["route-id"] != "app" || m["request-id"] != m["check-request-id"] {
			t.Errorf("line %v", m)
		}
	})

	t.Run("headers: every header, credentials redacted", func(t *testing.T) {
		m := decisionLine(t, []string{"headers"}, req(), alice)
		h := m["headers"].(map[string]string)
		if h["Cookie"] != "REDACTED" || h["Authorization"] != "REDACTED" || h["X-Trace"] != "t1" || h["X-Forwarded-For"] != "203.0.113.66" {
			t.Errorf("headers %v", h)
		}
	})

	t.Run("a credential named one by one is logged, as asked", func(t *testing.T) {
		m := decisionLine(t, []string{"headers", "headers.cookie"}, req(), alice)
		if h := m["headers"].(map[string]string); h["Cookie"] != "_iap=session-secret" || h["Authorization"] != "REDACTED" {
			t.Errorf("headers %v", h)
		}
	})

	t.Run("the ID token and its claims only when listed", func(t *testing.T) {
		m := decisionLine(t, []string{"user", "id-token", "id-token-claims"}, req(), alice)
		if m["id-token"] != idToken {
			t.Errorf("id-token %v", m["id-token"])
		}
		if c, _ := m["id-token-claims"].(map[string]any); c["hd"] != "example.com" {
			t.Errorf("id-token-claims %v", m["id-token-claims"])
		}
		for k, v := range m {
			if s, _ := v.(string); strings.Contains(s, "refresh-secret") {
				t.Errorf("%s holds the refresh token", k)
			}
		}
	})

	t.Run("a field listed twice is one key", func(t *testing.T) {
		core, logs := observer.New(zapcore.InfoLevel)
		r := req()
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
		newAuthorizeLog([]string{"method", "method", "headers.x-trace", "headers.X-Trace"}, zap.New(core)).log(r, &request{}, authz.Decision{}, "", 0)
		if f := logs.All()[0].Context; len(f) != 5 || f[0].Key != "method" || f[1].Key != "headers" {
			t.Errorf("fields %v", f)
		}
	})

	t.Run("fields without a value are left out; user and email stay, empty", func(t *testing.T) {
		m := decisionLine(t, []string{"user", "email", "session-id", "id-token", "impersonate-email", "body", "envoy-route-id"}, req(), nil)
		if got := keysOf(m); !slices.Equal(got, []string{"allow", "deny", "email", "reason", "user"}) {
			t.Errorf("keys %v", got)
		}
	})
}

func TestRouteChecksumLeavesOutTheKubernetesToken(t *testing.T) {
	a := &Authorize{Route: "k8s", KubernetesServiceAccountToken: "one"}
	b := &Authorize{Route: "k8s", KubernetesServiceAccountToken: "two"}
	if routeChecksum(a) != routeChecksum(b) {
		t.Error("the checksum depends on the token")
	}
	if routeChecksum(a) == routeChecksum(&Authorize{Route: "other"}) {
		t.Error("two routes, one checksum")
	}
}

// A JSON config naming an unknown field fails to provision, naming the
// option, the field and the nearest name; Pomerium's fields of no value
// here are accepted.
func TestAppChecksAuthorizeLogFields(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := (&App{AuthorizeLogFields: []string{"user", "sesion-id"}}).Provision(ctx)
	if err == nil || err.Error() != `iap: authorize_log_fields: unknown field "sesion-id" (did you mean "session-id"?); the fields are `+strings.Join(authorizeLogFieldNames, ", ")+" and headers.<Name>" {
		t.Errorf("error %v", err)
	}
	if err := (&App{AuthorizeLogFields: slices.Concat(authorizeLogFieldNames, []string{"headers.X-Anything"})}).Provision(ctx); err != nil {
		t.Errorf("every Pomerium field: %v", err)
	}
}
