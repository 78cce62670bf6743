package authn

import (
	"html/template"
	"net/http"
)

// pages are the HTML pages a person sees: errors, the user page and the
// sign-out confirmation. No script, no external resource.
var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#222}
code{background:#eee;padding:.1rem .3rem;border-radius:3px}th{text-align:left;padding-right:1rem;vertical-align:top}
button{font-size:1rem;padding:.4rem 1rem}</style></head><body>{{end}}

{{define "error"}}{{template "head" (printf "%d %s" .Status .Text)}}
<h1>{{.Status}} {{.Text}}</h1><p>{{.Message}}</p><p>Reason: <code>{{.Reason}}</code></p></body></html>
{{end}}

{{define "user"}}{{template "head" "Signed in"}}
<h1>Signed in</h1>
<table>
<tr><th>Email</th><td id="email">{{.Email}}</td></tr>
<tr><th>Name</th><td>{{.Name}}</td></tr>
<tr><th>User ID</th><td><code>{{.Subject}}</code></td></tr>
<tr><th>Groups</th><td id="groups">{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{else}}none{{end}}</td></tr>
{{range $k, $v := .Claims}}<tr><th>{{$k}}</th><td>{{$v}}</td></tr>{{end}}
<tr><th>Session expires</th><td>{{.SessionExpires.UTC.Format "2006-01-02 15:04:05 MST"}}</td></tr>
{{with .ClientCert}}<tr><th>Client certificate</th><td>{{.Subject}}<br>issued by {{.Issuer}}<br>SHA-256 <code>{{.Fingerprint}}</code><br>valid until {{.NotAfter.UTC.Format "2006-01-02"}}</td></tr>{{end}}
</table>
{{if eq .AuthenticatedVia "cookie"}}<form method="post" action="{{.SignOutURL}}"><input type="hidden" name="csrf_token" value="{{.CSRFToken}}"><p><button type="submit">Sign out</button></p></form>{{end}}
</body></html>
{{end}}

{{define "routes"}}{{template "head" "Routes"}}
<h1>Routes</h1>
<p>Signed in as <strong id="email">{{.Email}}</strong> (<a href="{{.UserPage}}">your session</a>).</p>
{{if .Routes}}<ul id="routes" style="list-style:none;padding:0">
{{range .Routes}}<li class="route" style="display:flex;gap:1rem;align-items:flex-start;margin:0 0 1.2rem">
{{if .Logo}}<img class="logo" src="{{.Logo}}" alt="" width="48" height="48" referrerpolicy="no-referrer" style="object-fit:contain">{{else}}<span style="display:inline-block;width:48px"></span>{{end}}
<div><div class="name">{{if .Link}}<a href="{{.Link}}">{{.Name}}</a>{{else}}{{.Name}}{{end}}</div>
{{if .Description}}<div class="description">{{.Description}}</div>{{end}}
<div><code class="from">{{.From}}</code></div></div></li>
{{end}}</ul>
{{else}}<p id="no-routes">There are no routes for you here.</p>{{end}}
</body></html>
{{end}}

{{define "sign_out"}}{{template "head" "Sign out"}}
<h1>Sign out</h1>
{{if .Session}}<p>You are signed in as <strong>{{.Session.Email}}</strong>.</p>
<form method="post" action="{{.Action}}"><input type="hidden" name="csrf_token" value="{{.CSRFToken}}"><p><button type="submit">Sign out</button></p></form>
{{else}}<p>You are not signed in.</p>{{end}}
</body></html>
{{end}}
`))

// setPageHeaders marks a response as one of authn's HTML pages: no framing
// by other sites (a framed sign-out form would post same-origin with a
// valid token), no sniffing, no caching.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
}
