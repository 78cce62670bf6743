package module

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/internal/filestate"
)

// A route to the Kubernetes API (Pomerium's
// kubernetes_service_account_token(_file)): the upstream gets the route's
// service-account token as its credential, and the signed-in user as the
// one to impersonate, so the cluster's RBAC decides for that user:
//
//	Authorization: Bearer <token>
//	Impersonate-User: <email>
//	Impersonate-Group: <group>   (one header per group)
//
// Impersonate-* headers the client sent never pass on such a route: with
// the service account's rights they would act as anyone. Nor does the
// token go with a request the policy let in without a user: it would act
// as the service account itself. Pomerium does both, and joins the groups
// into one header, which the API server reads as one group; here each
// group is a header of its own.

// kubernetesToken is a route's service-account token, inline or from a
// file read again when it changes (projected tokens rotate).
type kubernetesToken struct {
	inline string
	file   string

	mu    sync.Mutex
	token string
	stat  os.FileInfo // the file's state when token was read
}

// newKubernetesToken returns nil when the route has no token.
func newKubernetesToken(inline, file string) (*kubernetesToken, error) {
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("kubernetes_service_account_token and kubernetes_service_account_token_file are both set: use one")
	case inline == "" && file == "":
		return nil, nil
	}
	k := &kubernetesToken{inline: strings.TrimSpace(inline), file: file}
	if _, err := k.get(); err != nil {
		return nil, err
	}
	return k, nil
}

// get returns the token, reading the file again when it changed.
func (k *kubernetesToken) get() (string, error) {
	if k.file == "" {
		return k.inline, nil
	}
	fi, err := os.Stat(k.file)
	if err != nil {
		return "", fmt.Errorf("kubernetes_service_account_token_file: %v", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.token != "" && !filestate.Changed(k.stat, fi) {
		return k.token, nil
	}
	b, err := os.ReadFile(k.file)
	if err != nil {
		return "", fmt.Errorf("kubernetes_service_account_token_file: %v", err)
	}
	token := string(bytes.TrimSpace(b))
	if token == "" || !httpguts.ValidHeaderFieldValue(token) {
		return "", fmt.Errorf("kubernetes_service_account_token_file %s: not a token", k.file)
	}
	k.token, k.stat = token, fi
	return token, nil
}

// setKubernetesHeaders gives an allowed request of a signed-in user the
// route's token and the user to impersonate, after removing every
// Impersonate-* header and the Authorization the client sent. Without a
// user with an email, or without a token (its file unreadable), the
// request goes on with no credential: the API server refuses it.
func setKubernetesHeaders(h http.Header, token string, s *authn.Session) {
	for name := range h {
		if len(name) >= len("Impersonate-") && strings.EqualFold(name[:len("Impersonate-")], "Impersonate-") {
			delete(h, name)
		}
	}
	h.Del("Authorization")
	if token == "" || s == nil || s.Email == "" || !httpguts.ValidHeaderFieldValue(s.Email) {
		return
	}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Impersonate-User", s.Email)
	for _, g := range s.Groups {
		if g != "" && httpguts.ValidHeaderFieldValue(g) {
			h.Add("Impersonate-Group", g)
		}
	}
}
