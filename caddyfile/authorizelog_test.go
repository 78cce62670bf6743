package caddyfile_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// authorize_log_fields: repeatable, Pomerium's names, an unknown one an
// error naming the option, the field and the nearest name.
func TestGlobalAuthorizeLogFields(t *testing.T) {
	out, err := adapt(t, "{\n\tiap {\n\t\tauthorize_log_fields request-id method path\n\t\tauthorize_log_fields user headers.X-Trace\n\t}\n}\napp.example.com {\n\trespond ok\n}")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			IAP struct {
				Fields []string `json:"authorize_log_fields"`
			} `json:"iap"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{"request-id", "method", "path", "user", "headers.X-Trace"}; !slices.Equal(cfg.Apps.IAP.Fields, want) {
		t.Errorf("authorize_log_fields %v, want %v", cfg.Apps.IAP.Fields, want)
	}

	for _, c := range []struct{ line, want string }{
		{"authorize_log_fields user emial", `authorize_log_fields: unknown field "emial" (did you mean "email"?)`},
		{"authorize_log_fields", "authorize_log_fields takes the fields"},
		{"authorize_log_fields headers.", `"headers.": headers.<Name> needs a header name`},
	} {
		_, err := adapt(t, "{\n\tiap {\n\t\t"+c.line+"\n\t}\n}\napp.example.com {\n\trespond ok\n}")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), ":3") {
			t.Errorf("%s: error %v, want %q at line 3", c.line, err, c.want)
		}
	}
}
