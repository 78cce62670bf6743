package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-iap/caddy-iap/authz"
)

// portalAPIPath is the routes portal's JSON, under the prefix, as
// Pomerium's /.pomerium/api/v1/routes.
const portalAPIPath = "api/v1/routes"

// PortalRoute is one route of the routes portal, in the JSON form of
// Pomerium's portal.Route.
type PortalRoute struct {
	// Name is the route's name.
	Name string `json:"name"`
	// Type is always "http".
	Type string `json:"type"`
	// From is the route's URL (Pomerium's from).
	From string `json:"from"`
	// Description is the route's description, as text.
	Description string `json:"description"`
	// LogoURL is an http(s) or data:image URL, checked when the config
	// was loaded; "" for none.
	LogoURL string `json:"logo_url"`
}

// portalEntry is a PortalRoute for the page: its link, when it has one
// a browser can follow (not a wildcard host), and its logo as a URL the
// template may put in src (a data:image URL would otherwise be blanked).
type portalEntry struct {
	PortalRoute
	Link string
	Logo template.URL
}

// servePortal answers the routes portal: the routes the user may use, as
// a page at <prefix>routes (JSON there too for clients that ask for it)
// and as JSON at <prefix>api/v1/routes.
func (a *Authenticator) servePortal(w http.ResponseWriter, r *http.Request, s *Session) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		a.errorPage(w, r, http.StatusMethodNotAllowed, string(authz.ReasonMethodNotAllowed), "The routes portal answers GET only.")
		return
	}
	routes := a.cfg.Routes(r, s, a.cfg.IDPName)
	if routes == nil {
		routes = []PortalRoute{}
	}
	if strings.TrimPrefix(r.URL.Path, a.names.prefix) == portalAPIPath || !WantsHTML(r) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = json.NewEncoder(w).Encode(map[string]any{"routes": routes})
		return
	}
	entries := make([]portalEntry, len(routes))
	for i, rt := range routes {
		entries[i] = portalEntry{PortalRoute: rt, Link: followable(rt.From)}
		if SafeLogoURL(rt.LogoURL) == nil {
			entries[i].Logo = template.URL(rt.LogoURL) // #nosec: http(s) or data:image only, checked again here
		}
	}
	setPageHeaders(w)
	// The page loads the routes' logos (img-src), nothing else: no script,
	// no style sheet but its own, no form, no frame.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_ = pages.ExecuteTemplate(w, "routes", map[string]any{"Email": s.Email, "Routes": entries, "UserPage": a.names.prefix})
}

// followable returns from when it is an http(s) URL of a host a browser
// can open (no wildcard), else "".
func followable(from string) string {
	u, err := url.Parse(from)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Contains(u.Host, "*") {
		return ""
	}
	return u.String()
}

// maxLogoURL bounds a logo_url (a data: URL holds the image itself).
const maxLogoURL = 64 << 10

// logoTypes are the image types a data: logo_url may hold. An SVG shown
// by <img> runs no script.
var logoTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"image/avif": true, "image/svg+xml": true, "image/x-icon": true, "image/vnd.microsoft.icon": true}

// SafeLogoURL checks a route's logo_url: "" (none), an http or https URL
// with a host, or a data: URL of an image (data:image/png;base64,...). Any
// other scheme (javascript:, vbscript:, file:, ...), spaces, control
// characters and URLs over 64 KiB are refused, with the reason.
func SafeLogoURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxLogoURL {
		return fmt.Errorf("is %d bytes, over the limit of %d", len(s), maxLogoURL)
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return errors.New("holds a space or a control character")
		}
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return errors.New("must be an http(s) URL or a data:image URL")
	}
	switch strings.ToLower(scheme) {
	case "http", "https":
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			return errors.New("must be an http(s) URL with a host (and no user info)")
		}
		return nil
	case "data":
		mediaType, _, ok := strings.Cut(rest, ",")
		mt, _, _ := strings.Cut(mediaType, ";")
		if !ok || !logoTypes[strings.ToLower(mt)] {
			return fmt.Errorf("a data: URL must hold an image (data:image/png;base64,...; png, jpeg, gif, webp, avif, svg+xml or x-icon), not %q", mt)
		}
		return nil
	}
	return fmt.Errorf("scheme %q is not allowed: only http, https and data:image", scheme)
}
