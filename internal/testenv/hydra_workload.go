package testenv

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// CreateWorkloadClient registers a client of the client_credentials grant
// (a workload, with no user) that may ask for tokens for these audiences.
func (h *Hydra) CreateWorkloadClient(t testing.TB, id, secret string, audiences ...string) {
	t.Helper()
	h.CreateClient(t, HydraClient{ID: id, Secret: secret, RedirectURIs: []string{},
		GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"token"},
		Scope: "read write", Audience: audiences})
}

// ClientCredentials gets an access token through the client_credentials
// grant for the given audiences (none: Hydra's default, no audience). With
// HydraOptions.JWTAccessTokens it is a JWT: iss Hydra's issuer, sub the
// client ID, aud the audiences, signed with Hydra's access-token key.
func (h *Hydra) ClientCredentials(t testing.TB, id, secret string, audiences ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	if len(audiences) > 0 {
		form.Set("audience", strings.Join(audiences, " "))
	}
	req, _ := http.NewRequest(http.MethodPost, h.Issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("hydra token request: %v", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("hydra client_credentials answer: %d %v %s %s\n--- hydra ---\n%s", resp.StatusCode, err, tok.Error, tok.Description, h.Log())
	}
	return tok.AccessToken
}

// AccessTokenKey returns the private key Hydra signs JWT access tokens
// with (its key set hydra.jwt.access-token, from the admin API), so that a
// test can mint a token exactly as Hydra would, such as one already
// expired.
func (h *Hydra) AccessTokenKey(t testing.TB) jose.JSONWebKey {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := h.admin(http.MethodGet, "/admin/keys/hydra.jwt.access-token", nil, &set, http.StatusOK); err != nil {
		t.Fatalf("hydra's access token key: %v", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() && k.Use == "sig" {
			return k
		}
	}
	t.Fatalf("hydra's access token key set has no private signing key: %d keys", len(set.Keys))
	return jose.JSONWebKey{}
}
