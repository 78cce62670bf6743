package pomerium

import (
	"encoding/json"
	"strings"
	"testing"
)

// proxyHeaderOps returns each reverse_proxy's request header operations,
// and whether the server's first routes have the X-Forwarded-For map.
func proxyHeaderOps(t *testing.T, src string) (ops []string, hasMap bool) {
	t.Helper()
	out, _, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	walk(cfg, func(o map[string]any) {
		switch o["handler"] {
		case "reverse_proxy":
			b, _ := json.Marshal(o["headers"])
			ops = append(ops, string(b))
		case "map":
			hasMap = hasMap || o["source"] == "{http.request.header.X-Forwarded-For}"
		}
	})
	return ops, hasMap
}

func TestSkipXFFAppend(t *testing.T) {
	routes := "routes:\n  - from: https://a.example\n    to: http://127.0.0.1:9\n    allow_public_unauthenticated_access: true\n" +
		"  - from: https://b.example\n    to: http://127.0.0.1:9\n    allow_public_unauthenticated_access: true\n    set_request_headers:\n      x-forwarded-for: 10.0.0.1\n"
	keep := `"X-Forwarded-For":["{http.request.header.X-Forwarded-For}"]`
	del := `"delete":["{iap.xff_absent}"]`

	ops, hasMap := proxyHeaderOps(t, "skip_xff_append: true\n"+routes)
	if !hasMap || len(ops) != 2 {
		t.Fatalf("map %v, proxies %v", hasMap, ops)
	}
	if !strings.Contains(ops[0], keep) || !strings.Contains(ops[0], del) {
		t.Errorf("the proxy does not send the client's X-Forwarded-For: %s", ops[0])
	}
	// A route that sets the header itself keeps its value, even when the
	// client sent none.
	if strings.Contains(ops[1], "xff_absent") || strings.Contains(ops[1], keep) {
		t.Errorf("set_request_headers' X-Forwarded-For is overridden: %s", ops[1])
	}

	for _, src := range []string{"skip_xff_append: false\n" + routes, routes} {
		ops, hasMap := proxyHeaderOps(t, src)
		if hasMap || strings.Contains(strings.Join(ops, " "), "xff_absent") {
			t.Errorf("without skip_xff_append: map %v, proxies %v", hasMap, ops)
		}
	}

	if _, _, err := adapt(t, "skip_xff_append: maybe\n"+routes, "config.yaml"); err == nil || !strings.Contains(err.Error(), `skip_xff_append: "maybe" is not true or false`) {
		t.Errorf("error %v", err)
	}
	out, _, err := adaptWithEnv([]byte(routes), map[string]any{"filename": "config.yaml"}, envOf("SKIP_XFF_APPEND=true"))
	if err != nil || !strings.Contains(string(out), "xff_absent") {
		t.Errorf("SKIP_XFF_APPEND=true is not read: %v", err)
	}
}
