package authz

import (
	"encoding/json"
	"net/http"
	"strings"
)

// http_method and http_path test the request with a string matcher.
// cors_preflight matches a CORS preflight: OPTIONS with Origin and
// Access-Control-Request-Method.
func init() {
	register("http_method", func(_ string, data json.RawMessage) (matcher, error) {
		m, err := compileStringMatcher(upper(data))
		if err != nil {
			return nil, err
		}
		return func(in *Input) bool { return m(in.Request.Method) }, nil
	})
	register("http_path", func(_ string, data json.RawMessage) (matcher, error) {
		m, err := compileStringMatcher(data)
		if err != nil {
			return nil, err
		}
		return func(in *Input) bool { return m(in.Request.Path) }, nil
	})
	boolCriterion("cors_preflight", func(in *Input) bool {
		return in.Request.Method == http.MethodOptions &&
			in.Request.Header.Get("Origin") != "" &&
			in.Request.Header.Get("Access-Control-Request-Method") != ""
	})
}

// upper makes the method names in a matcher upper case, as methods are,
// leaving its operators alone.
func upper(data json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return data
	}
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case string:
			return strings.ToUpper(v)
		case []any:
			for i := range v {
				v[i] = walk(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = walk(v[k])
			}
		}
		return v
	}
	b, err := json.Marshal(walk(v))
	if err != nil {
		return data
	}
	return b
}
