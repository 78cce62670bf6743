package authz

import (
	"encoding/json"
	"net/http"
	"strings"
)

// http_method and http_path test the request with a string matcher.
//
// http_method ignores case on both sides: `http_method: {is: DELETE}` also
// matches a request sent with the method "delete", which many frameworks
// (Flask, Express) serve as DELETE. Pomerium compares the method as sent.
//
// cors_preflight matches a CORS preflight: OPTIONS with Origin and
// Access-Control-Request-Method.
func init() {
	methodSyntax := stringSyntax
	methodSyntax.BareExample = "GET"
	register(CriterionInfo{Name: "http_method", Syntax: methodSyntax},
		func(_ string, data json.RawMessage) (matcher, error) {
			m, err := compileStringMatcher(data, strings.ToUpper)
			if err != nil {
				return nil, err
			}
			// ToUpper returns a method already in upper case as it is,
			// without allocating.
			return func(in *Input) bool { return m(strings.ToUpper(in.Request.Method)) }, nil
		})
	pathSyntax := stringSyntax
	pathSyntax.BareExample = "/admin"
	register(CriterionInfo{Name: "http_path", Syntax: pathSyntax},
		func(_ string, data json.RawMessage) (matcher, error) {
			m, err := compileStringMatcher(data, nil)
			if err != nil {
				return nil, err
			}
			return func(in *Input) bool { return m(in.Request.Path) }, nil
		})
	flagCriterion("cors_preflight", false, func(in *Input) bool {
		return in.Request.Method == http.MethodOptions &&
			in.Request.Header.Get("Origin") != "" &&
			in.Request.Header.Get("Access-Control-Request-Method") != ""
	})
}
