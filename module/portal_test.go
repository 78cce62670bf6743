package module

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
)

func portalRoute(t *testing.T, name, url, idp, policy string) *Authorize {
	t.Helper()
	var p authz.Policy
	if err := json.Unmarshal([]byte(policy), &p); err != nil {
		t.Fatal(err)
	}
	e, err := authz.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return &Authorize{Route: name, URL: url, IDP: idp, Policy: p, eval: e}
}

func TestPortalListsTheUsersRoutesOnce(t *testing.T) {
	const anyUser, public = `{"allow":{"or":[{"authenticated_user":true}]}}`, `{"allow":{"or":[{"accept":true}]}}`
	p := new(portal)
	wiki := portalRoute(t, "wiki", "https://wiki.test", "", anyUser)
	wikiOtherPort := portalRoute(t, "wiki", "https://wiki.test", "", anyUser) // the same site in a second server
	admin := portalRoute(t, "Admin", "https://admin.test", "", `{"allow":{"or":[{"groups":{"has":"admins"}}]}}`)
	partner := portalRoute(t, "partner", "https://partner.test", "partner", anyUser)
	partnerPublic := portalRoute(t, "partner docs", "https://docs.partner.test", "partner", public)
	noURL := portalRoute(t, "no url", "", "", anyUser)
	for _, a := range []*Authorize{wiki, wikiOtherPort, admin, partner, partnerPublic, noURL} {
		p.add(a)
	}
	names := func(rs []authn.PortalRoute) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	alice := &authn.Session{Subject: "a", Email: "alice@example.com", Groups: []string{"admins"}}
	bob := &authn.Session{Subject: "b", Email: "bob@example.com"}
	for _, tc := range []struct {
		name    string
		s       *authn.Session
		idp     string
		want    []string
		removed *Authorize
	}{
		{"an admin of the default IdP: by name, once each, another IdP's public route too", alice, "", []string{"Admin", "partner docs", "wiki"}, nil},
		{"a user of the default IdP", bob, "", []string{"partner docs", "wiki"}, nil},
		{"a user of the partner IdP: its routes, and the default's public ones only", bob, "partner", []string{"partner", "partner docs"}, nil},
		{"a route removed at Cleanup is gone", alice, "", []string{"partner docs", "wiki"}, admin},
	} {
		if tc.removed != nil {
			p.remove(tc.removed)
		}
		if got := names(p.list(tc.s, tc.idp)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	var none *portal // no app: nothing to list, nothing to panic on
	none.add(wiki)
	if none.list(alice, "") != nil {
		t.Error("a nil portal lists routes")
	}
}

// A JSON config is checked as the Caddyfile and the Pomerium config are.
func TestAuthorizeValidatesThePortalFields(t *testing.T) {
	for _, tc := range []struct {
		a    Authorize
		want string
	}{
		{Authorize{Route: "wiki", LogoURL: "javascript:alert(1)"}, `route wiki: logo_url "javascript:alert(1)": scheme "javascript" is not allowed`},
		{Authorize{Route: "wiki", LogoURL: "data:text/html,x"}, `a data: URL must hold an image`},
		{Authorize{Route: "wiki", URL: "javascript:alert(1)"}, `route wiki: url "javascript:alert(1)": must be the route's http(s) URL`},
		{Authorize{Route: "wiki", URL: "https://wiki.test", LogoURL: "https://cdn.test/logo.png"}, ""},
	} {
		err := tc.a.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.a, err, tc.want)
		}
	}
}

// A refusal written outside a Caddy server (no access-log fields in the
// context, where Caddy's {http.request.uuid} would panic) has no request
// ID, and is still written.
func TestRequestIDOutsideCaddy(t *testing.T) {
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	caddyhttp.NewTestReplacer(r) // Caddy's HTTP placeholders, without a server's context
	if id := requestID(r); id != "" {
		t.Errorf("request ID %q", id)
	}
	rec := httptest.NewRecorder()
	if err := (refusal{Status: 403, Reason: "not-allowed", Message: "no"}).write(rec, r); err != nil || rec.Code != 403 || strings.Contains(rec.Body.String(), "request_id") {
		t.Errorf("%v %d %s", err, rec.Code, rec.Body)
	}
	r = caddyhttp.PrepareRequest(httptest.NewRequest("GET", "https://app.test/", nil), caddy.NewReplacer(), httptest.NewRecorder(), new(caddyhttp.Server))
	if id := requestID(r); len(id) != 36 || requestID(r) != id {
		t.Errorf("in a Caddy server: request ID %q, want one UUID, the same each time", id)
	}
}
