package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Hydra is a running Ory Hydra, a real OpenID Connect provider with what
// Dex lacks: an end_session_endpoint (RP-initiated logout) and
// Back-Channel Logout. It keeps its data in memory. Its login, consent and
// logout pages are a small app of the test's own (Go handlers calling
// Hydra's admin API), which signs in one user without asking and accepts
// every consent and logout: a scripted browser goes through the real
// authorization code flow without any form.
type Hydra struct {
	// Issuer is Hydra's public URL (http://127.0.0.1:<port>), its issuer.
	Issuer string
	// AdminURL is Hydra's admin API.
	AdminURL string
	// User is whom the login app signs in.
	User HydraUser
	// Logins and Logouts count the login and logout requests the app
	// accepted.
	Logins, Logouts atomic.Int64

	out *syncBuffer
}

// HydraUser is the user the login app signs in.
type HydraUser struct {
	Subject, Email, Name string
}

// HydraOptions configure the test IdP.
type HydraOptions struct {
	// Port is Hydra's public port; default a free one.
	Port int
	// User the login app signs in; default alice.
	User HydraUser
	// RootsFile, a PEM file, replaces the system's roots for Hydra's own
	// outgoing TLS calls (back-channel logout requests): Caddy's local CA,
	// so that Hydra reaches a test site's backchannel_logout_uri.
	RootsFile string
	// JWTAccessTokens makes Hydra issue its access tokens as JWTs signed
	// with its keys (strategies.access_token: jwt), as a workload's
	// issuer does; by default they are opaque.
	JWTAccessTokens bool
}

// HydraClient is an OAuth 2.0 client registered at Hydra.
type HydraClient struct {
	ID                     string   `json:"client_id"`
	Secret                 string   `json:"client_secret"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// BackchannelLogoutURI is where Hydra POSTs logout tokens.
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired: logout tokens carry a sid.
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required,omitempty"`
	GrantTypes                       []string `json:"grant_types"`
	ResponseTypes                    []string `json:"response_types"`
	Scope                            string   `json:"scope"`
	TokenEndpointAuthMethod          string   `json:"token_endpoint_auth_method"`
	// Audience lists the audiences the client may ask tokens for.
	Audience []string `json:"audience,omitempty"`
}

// HydraBinary returns the path of bin/hydra, which scripts/test.sh builds
// from tools/hydra (scripts/build-hydra.sh), or $HYDRA_BIN.
func HydraBinary(t testing.TB) string {
	t.Helper()
	return builtTool(t, "hydra", "Ory Hydra", "HYDRA_BIN", "scripts/build-hydra.sh")
}

// StartHydra runs Hydra (`hydra serve all --dev`, DSN=memory) on loopback
// with its login, consent and logout pages served by the test's login
// app, and waits until its discovery document answers. It is stopped when
// the test ends.
func StartHydra(t testing.TB, o HydraOptions) *Hydra {
	t.Helper()
	if o.Port == 0 {
		o.Port = FreePort(t)
	}
	if o.User.Subject == "" {
		o.User = HydraUser{Subject: "alice", Email: "alice@example.com", Name: "Alice Liddell"}
	}
	adminPort := FreePort(t)
	h := &Hydra{
		Issuer:   fmt.Sprintf("http://127.0.0.1:%d", o.Port),
		AdminURL: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		User:     o.User,
		out:      new(syncBuffer),
	}
	app := httptest.NewServer(h.loginApp())
	t.Cleanup(app.Close)

	cmd := exec.Command(HydraBinary(t), "serve", "all", "--dev")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		fmt.Sprintf("SERVE_PUBLIC_PORT=%d", o.Port), "SERVE_PUBLIC_HOST=127.0.0.1",
		fmt.Sprintf("SERVE_ADMIN_PORT=%d", adminPort), "SERVE_ADMIN_HOST=127.0.0.1",
		"URLS_SELF_ISSUER="+h.Issuer,
		"URLS_LOGIN="+app.URL+"/login",
		"URLS_CONSENT="+app.URL+"/consent",
		"URLS_LOGOUT="+app.URL+"/logout",
		"URLS_POST_LOGOUT_REDIRECT="+app.URL+"/logged_out",
		"SECRETS_SYSTEM=caddy-iap-test-secret-0123456789ab",
		"OAUTH2_EXPOSE_INTERNAL_ERRORS=true",
		"SQA_OPT_OUT=true",
		"HOME="+cmd.Dir,
	)
	if o.JWTAccessTokens {
		cmd.Env = append(cmd.Env, "STRATEGIES_ACCESS_TOKEN=jwt")
	}
	if o.RootsFile != "" {
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+o.RootsFile, "SSL_CERT_DIR="+cmd.Dir)
	}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	exited := start(t, cmd, "hydra", h.out)
	waitOK(t, "hydra", h.Issuer+"/.well-known/openid-configuration", time.Minute, exited, h.out)
	return h
}

// Log returns what Hydra has logged so far.
func (h *Hydra) Log() string { return h.out.String() }

// CreateClient registers a client through Hydra's admin API, for the
// authorization code flow and refresh tokens, with a client secret sent
// by HTTP basic authentication, unless c says otherwise.
func (h *Hydra) CreateClient(t testing.TB, c HydraClient) {
	t.Helper()
	if c.GrantTypes == nil {
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	if c.ResponseTypes == nil {
		c.ResponseTypes = []string{"code"}
	}
	if c.Scope == "" {
		c.Scope = "openid offline_access offline email profile"
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if err := h.admin(http.MethodPost, "/admin/clients", c, nil, http.StatusCreated); err != nil {
		t.Fatalf("registering client %s at hydra: %v", c.ID, err)
	}
}

// SigningKey returns the private key Hydra signs ID tokens and logout
// tokens with (its key set hydra.openid.id-token, from the admin API), so
// that a test can mint tokens exactly as Hydra would.
func (h *Hydra) SigningKey(t testing.TB) jose.JSONWebKey {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := h.admin(http.MethodGet, "/admin/keys/hydra.openid.id-token", nil, &set, http.StatusOK); err != nil {
		t.Fatalf("hydra's signing key: %v", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() && k.Use == "sig" {
			return k
		}
	}
	t.Fatalf("hydra's key set has no private signing key: %d keys", len(set.Keys))
	return jose.JSONWebKey{}
}

// admin calls Hydra's admin API with a JSON body (nil: none) and decodes
// the JSON answer into out (nil: ignored).
func (h *Hydra) admin(method, path string, body, out any, want int) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.AdminURL+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// loginApp serves Hydra's login, consent and logout pages: each accepts
// its challenge through the admin API and redirects where Hydra says.
func (h *Hydra) loginApp() http.Handler {
	accept := func(w http.ResponseWriter, kind, challenge string, body any) {
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		path := fmt.Sprintf("/admin/oauth2/auth/requests/%s/accept?%s_challenge=%s", kind, kind, url.QueryEscape(challenge))
		if err := h.admin(http.MethodPut, path, body, &out, http.StatusOK); err != nil {
			http.Error(w, "accepting the "+kind+" request: "+err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Location", out.RedirectTo)
		w.WriteHeader(http.StatusFound)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		challenge := r.URL.Query().Get("login_challenge")
		var req struct {
			Skip    bool   `json:"skip"`
			Subject string `json:"subject"`
		}
		if err := h.admin(http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+url.QueryEscape(challenge), nil, &req, http.StatusOK); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		subject := h.User.Subject
		if req.Skip {
			subject = req.Subject // Hydra remembers who signed in
		}
		h.Logins.Add(1)
		accept(w, "login", challenge, map[string]any{"subject": subject, "remember": true, "remember_for": 0})
	})
	mux.HandleFunc("GET /consent", func(w http.ResponseWriter, r *http.Request) {
		challenge := r.URL.Query().Get("consent_challenge")
		var req struct {
			RequestedScope    []string `json:"requested_scope"`
			RequestedAudience []string `json:"requested_access_token_audience"`
		}
		if err := h.admin(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(challenge), nil, &req, http.StatusOK); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		accept(w, "consent", challenge, map[string]any{
			"grant_scope":                 req.RequestedScope,
			"grant_access_token_audience": req.RequestedAudience,
			"remember":                    true,
			"remember_for":                0,
			"session": map[string]any{
				"id_token": map[string]any{"email": h.User.Email, "email_verified": true, "name": h.User.Name},
			},
		})
	})
	mux.HandleFunc("GET /logout", func(w http.ResponseWriter, r *http.Request) {
		h.Logouts.Add(1)
		accept(w, "logout", r.URL.Query().Get("logout_challenge"), nil)
	})
	mux.HandleFunc("GET /logged_out", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "signed out at hydra\n")
	})
	return mux
}

// HydraTokens is what Hydra's token endpoint answered.
type HydraTokens struct {
	IDToken     string `json:"id_token"`
	AccessToken string `json:"access_token"`
}

// CodeFlowTokens gets tokens for the login app's user through the
// authorization code flow, as the client with this ID and secret (one
// that lists redirectURI), with no browser: a Go client follows Hydra's
// redirects through the login and consent pages and stops at the redirect
// URI, whose code it exchanges. Hydra's access tokens are opaque.
func (h *Hydra) CodeFlowTokens(t testing.TB, clientID, clientSecret, redirectURI, scope string) HydraTokens {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var code string
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			code = req.URL.Query().Get("code")
			return http.ErrUseLastResponse
		}
		return nil
	}}
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {scope},
		"redirect_uri": {redirectURI}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"}}
	resp, err := client.Get(h.Issuer + "/oauth2/auth?" + q.Encode())
	if err != nil {
		t.Fatalf("hydra authorization request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if code == "" {
		t.Fatalf("hydra gave no code: %d at %s: %s\n--- hydra ---\n%s", resp.StatusCode, resp.Request.URL, body, h.Log())
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	req, _ := http.NewRequest(http.MethodPost, h.Issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.SetBasicAuth(clientID, clientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("hydra token request: %v", err)
	}
	defer resp.Body.Close()
	var tok HydraTokens
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" || tok.IDToken == "" {
		t.Fatalf("hydra token answer: %d %v %+v", resp.StatusCode, err, tok)
	}
	return tok
}
