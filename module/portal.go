package module

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
)

// portal is the app's list of the routes of this Caddy, for the routes
// portal: each iap_authorize adds itself at Provision and removes itself
// at Cleanup, so a reload's new config lists its own routes only.
type portal struct {
	mu     sync.Mutex
	routes map[*Authorize]struct{}
}

func (p *portal) add(a *Authorize) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.routes == nil {
		p.routes = map[*Authorize]struct{}{}
	}
	p.routes[a] = struct{}{}
}

func (p *portal) remove(a *Authorize) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.routes, a)
}

// list returns the routes the routes portal shows a signed-in user of
// the IdP named idp ("" the default), by name: those whose policy lists
// them to the user (authz's Lists, Pomerium's CheckRouteAccess rules) and
// that have a URL. A route of another IdP is listed only when it is open
// to everyone, since the user's identity is not that IdP's. A route in
// several servers (one site on two ports) is listed once per URL.
func (p *portal) list(s *authn.Session, idp string) []authn.PortalRoute {
	if p == nil {
		return nil
	}
	user := &authz.User{ID: s.Subject, Email: s.Email, Groups: s.Groups, Claim: s.Claim}
	p.mu.Lock()
	var out []authn.PortalRoute
	seen := map[authn.PortalRoute]bool{}
	for a := range p.routes {
		if a.URL == "" || a.eval == nil {
			continue
		}
		u := user
		if a.IDP != idp {
			u = nil
		}
		if !a.eval.Lists(u) {
			continue
		}
		r := authn.PortalRoute{Name: a.Route, Type: "http", From: a.URL, Description: a.Description, LogoURL: a.LogoURL}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(x, y authn.PortalRoute) int {
		return cmp.Or(cmp.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)), cmp.Compare(x.From, y.From))
	})
	return out
}

// portalRoutes is authn's Config.Routes.
func (a *App) portalRoutes(_ *http.Request, s *authn.Session, idp string) []authn.PortalRoute {
	return a.portal.list(s, idp)
}
