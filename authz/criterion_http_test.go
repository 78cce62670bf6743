package authz

import (
	"net/http"
	"testing"
)

// Pomerium's TestHTTPMethod, TestHTTPPath and TestCORSPreflight.
func TestPomeriumHTTP(t *testing.T) {
	const get = "allow:\n  and:\n    - http_method:\n        is: GET\n"
	const path = "allow:\n  and:\n    - http_path:\n        is: /test\n"
	const cors = "allow:\n  and:\n    - cors_preflight: 1\n"
	req := func(method, path string, h http.Header) Input {
		return Input{Request: Request{Method: method, Path: path, Header: h}}
	}
	runPomeriumCases(t, []pomeriumCase{
		{name: "http_method ok", policy: get, in: req("GET", "", nil), want: ReasonAllowed},
		{name: "http_method unauthorized", policy: get, in: req("POST", "", nil), want: ReasonNotAllowed},
		{name: "http_path ok", policy: path, in: req("", "/test", nil), want: ReasonAllowed},
		{name: "http_path unauthorized", policy: path, in: req("", "/not-test", nil), want: ReasonNotAllowed},
		{name: "cors_preflight true", policy: cors, in: req("OPTIONS", "", http.Header{
			"Access-Control-Request-Method": {"GET"}, "Origin": {"example.com"}}), want: ReasonAllowed},
		{name: "cors_preflight false", policy: cors, in: req("OPTIONS", "", nil), want: ReasonNotAllowed},
	})
}

// Where authz keeps to the sane reading and Pomerium does not. Pomerium's
// generator reads the method and the path as input[http][method] and
// input[http][path] with variables, so its operators hold when any field
// of any part of the input satisfies them: `not` always holds (some other
// field differs), ends_with and contains also look at the host and the
// URL, and not_in does not compile (unsafe variables). And Pomerium
// compares the method as sent, where authz ignores its case.
func TestHTTPWhereAuthzIsSane(t *testing.T) {
	req := func(method, path string) Input { return Input{Request: Request{Method: method, Path: path}} }
	runPomeriumCases(t, []pomeriumCase{
		{name: "http_method not GET does not match GET (always true in Pomerium)", policy: "allow: {or: [http_method: {not: GET}]}", in: req("GET", "/"), want: ReasonNotAllowed},
		{name: "http_path not does not match that path (always true in Pomerium)", policy: "allow: {or: [http_path: {not: /admin}]}", in: req("GET", "/admin"), want: ReasonNotAllowed},
		{name: "http_path ends_with reads the path only (Pomerium: also the host)", policy: "allow: {or: [http_path: {ends_with: .com}]}", in: req("GET", "/x"), want: ReasonNotAllowed},
		{name: "http_method not_in compiles and holds", policy: "allow: {or: [http_method: {not_in: [DELETE, PUT]}]}", in: req("GET", "/"), want: ReasonAllowed},
		{name: "http_path not_in compiles and holds", policy: "allow: {or: [http_path: {not_in: [/admin]}]}", in: req("GET", "/x"), want: ReasonAllowed},
		{name: "a deny on DELETE refuses delete sent in lower case", policy: "deny: {or: [http_method: {is: DELETE}]}", in: req("delete", "/"), want: ReasonDenied},
		{name: "the policy's method may be in lower case", policy: "deny: {or: [http_method: {in: [delete]}]}", in: req("DELETE", "/"), want: ReasonDenied},
		{name: "case is ignored by every operator", policy: "deny: {or: [http_method: {starts_with: DEL}]}", in: req("Delete", "/"), want: ReasonDenied},
		{name: "the path keeps its case", policy: "deny: {or: [http_path: {starts_with: /Admin}]}", in: req("GET", "/admin"), want: ReasonNoPolicy},
	})
}
