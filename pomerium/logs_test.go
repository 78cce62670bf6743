package pomerium

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/module"
)

// logConfig is what the adapter makes of the log settings.
type logConfig struct {
	Apps struct {
		IAP struct {
			AuthorizeLogFields *[]string `json:"authorize_log_fields"`
		} `json:"iap"`
		HTTP struct {
			Servers map[string]struct {
				Logs   map[string]any `json:"logs"`
				Routes []struct {
					Match  []any            `json:"match"`
					Handle []map[string]any `json:"handle"`
				} `json:"routes"`
			} `json:"servers"`
		} `json:"http"`
	} `json:"apps"`
	Logging struct {
		Logs map[string]struct {
			Include []string `json:"include"`
			Exclude []string `json:"exclude"`
			Level   string   `json:"level"`
			Encoder struct {
				Format string                     `json:"format"`
				Fields map[string]json.RawMessage `json:"fields"`
			} `json:"encoder"`
		} `json:"logs"`
	} `json:"logging"`
}

const logRoute = "routes:\n  - from: https://a.example\n    to: http://127.0.0.1:9\n    allow_public_unauthenticated_access: true\n"

func adaptLogs(t *testing.T, src string, env ...string) (logConfig, []string) {
	t.Helper()
	out, warnings, err := adaptWithEnv([]byte(src), map[string]any{"filename": "config.yaml"}, envOf(env...))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	var cfg logConfig
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var ws []string
	for _, w := range warnings {
		ws = append(ws, w.String())
	}
	return cfg, ws
}

// kept lists the Caddy access log fields the filter leaves alone, and
// describes the others' filters.
func (cfg logConfig) filters(t *testing.T) map[string]string {
	t.Helper()
	l, ok := cfg.Logging.Logs["pomerium_access"]
	if !ok || l.Encoder.Format != "filter" || !slices.Equal(l.Include, []string{"http.log.access.pomerium"}) {
		t.Fatalf("no pomerium_access log through a filter: %+v", cfg.Logging.Logs)
	}
	if d := cfg.Logging.Logs["default"]; !slices.Contains(d.Exclude, "http.log.access.pomerium") {
		t.Errorf("the default log writes the access log too: %+v", d)
	}
	out := map[string]string{}
	for k, v := range l.Encoder.Fields {
		out[k] = string(v)
	}
	return out
}

func (cfg logConfig) appended() []string {
	var keys []string
	for _, r := range cfg.Apps.HTTP.Servers["pomerium"].Routes {
		for _, h := range r.Handle {
			if h["handler"] == "log_append" && len(r.Match) == 0 {
				keys = append(keys, h["key"].(string))
			}
		}
	}
	return keys
}

func TestAuthorizeLogFieldsDefaultToPomeriums(t *testing.T) {
	cfg, warnings := adaptLogs(t, logRoute)
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if got := cfg.Apps.IAP.AuthorizeLogFields; got == nil || !slices.Equal(*got, module.DefaultAuthorizeLogFields) {
		t.Errorf("authorize_log_fields %v, want Pomerium's default %v", got, module.DefaultAuthorizeLogFields)
	}
}

func TestAuthorizeLogFieldsAreRead(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{"a list", "authorize_log_fields: [user, email, headers.x-trace, id-token-claims]\n", nil, []string{"user", "email", "headers.x-trace", "id-token-claims"}},
		{"values separated by commas", "authorize_log_fields: user,ip\n", nil, []string{"user", "ip"}},
		{"the environment variable wins", "authorize_log_fields: [user]\n", []string{"AUTHORIZE_LOG_FIELDS=method,path"}, []string{"method", "path"}},
		// Pomerium then logs the decision alone; omitempty must not turn
		// the empty list into no line.
		{"an empty list is kept", "authorize_log_fields: []\n", nil, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, warnings := adaptLogs(t, c.yaml+logRoute, c.env...)
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			if got := cfg.Apps.IAP.AuthorizeLogFields; got == nil || !slices.Equal(*got, c.want) {
				t.Errorf("authorize_log_fields %v, want %v", got, c.want)
			}
		})
	}
}

func TestLogFieldErrorsNameTheFieldAndLine(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"a misspelt authorize field", "cookie_name: x\nauthorize_log_fields: [user, emial]\n", nil,
			`config.yaml:2: authorize_log_fields: unknown field "emial" (did you mean "email"?)`},
		{"an access log field in the authorize log", "authorize_log_fields: [response-code]\n", nil,
			`authorize_log_fields: unknown field "response-code"`},
		{"a header without a name", "authorize_log_fields: [headers.]\n", nil,
			`authorize_log_fields: "headers.": headers.<Name> needs a header name`},
		{"a misspelt access field", "access_log_fields:\n  - method\n  - response_code\n", nil,
			`config.yaml:3: access_log_fields: unknown field "response_code" (did you mean "response-code"?)`},
		// Pomerium's access log has headers.<Name> only.
		{"all headers in the access log", "access_log_fields: [headers]\n", nil, `access_log_fields: unknown field "headers"`},
		{"a header name with a space", "access_log_fields: [\"headers.X Y\"]\n", nil, `headers.<Name> needs a header name`},
		{"from the environment", "", []string{"ACCESS_LOG_FIELDS=ip,nope"}, `config.yaml: access_log_fields (from the environment variable ACCESS_LOG_FIELDS): access_log_fields: unknown field "nope"`},
		{"not a list", "authorize_log_fields: {user: true}\n", nil, "config.yaml:1: authorize_log_fields: a list of field names"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := adaptWithEnv([]byte(c.yaml+logRoute), map[string]any{"filename": "config.yaml"}, envOf(c.env...))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestAccessLogFieldsBecomeCaddysAccessLog(t *testing.T) {
	del := `{"filter":"delete"}`
	// Caddy's fields no Pomerium field names: always deleted.
	always := []string{"request>remote_port", "request>proto", "request>transfer_encoding", "bytes_read", "user_id", "resp_headers", "uuid"}
	for _, c := range []struct {
		name, yaml string
		kept       []string          // Caddy fields without a filter
		filtered   map[string]string // field: substring of its filter
		appended   []string
		warning    string
	}{
		{
			name: "Pomerium's default list",
			kept: []string{"request>method", "request>host", "duration", "size", "status"},
			filtered: map[string]string{
				"request>uri":     `"regexp":"\\?.*$"`,
				"request>headers": `{"filter":"iap_headers","keep":["User-Agent","Referer","X-Forwarded-For"],"strip_query":["Referer"]}`,
			},
			appended: []string{"upstream", "request_id"},
		},
		{
			name:     "ip, a header and the status",
			yaml:     "access_log_fields: [ip, headers.x-trace, response-code]\n",
			kept:     []string{"request>remote_ip", "request>client_ip", "status"},
			filtered: map[string]string{"request>headers": `"keep":["x-trace"]`, "request>uri": del, "request>method": del, "duration": del},
		},
		{
			name:     "the query without the path",
			yaml:     "access_log_fields: [query]\n",
			filtered: map[string]string{"request>uri": `"regexp":"^[^?]*\\??"`, "request>headers": del},
		},
		{
			name:    "path and query keep the whole uri; the certificate is logged in part",
			yaml:    "access_log_fields: [path, query, client-certificate]\n",
			kept:    []string{"request>uri", "request>tls"},
			warning: "config.yaml:1: access_log_fields: client-certificate is logged in part: Caddy's request>tls names the client certificate by its common name and serial only",
		},
		{
			name:     "fields with no counterpart warn",
			yaml:     "access_log_fields: [method, cluster-stat-name]\n",
			kept:     []string{"request>method"},
			filtered: map[string]string{"status": del},
			warning:  "config.yaml:1: access_log_fields: cluster-stat-name is not logged: Envoy's cluster statistics name",
		},
		{
			name:     "an empty list logs caddy-iap's fields only",
			yaml:     "access_log_fields: []\n",
			filtered: map[string]string{"request>uri": del, "request>headers": del, "status": del, "request>method": del},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, warnings := adaptLogs(t, c.yaml+logRoute)
			if c.warning == "" && len(warnings) > 0 || c.warning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], c.warning)) {
				t.Errorf("warnings %v, want %q", warnings, c.warning)
			}
			f := cfg.filters(t)
			for _, k := range always {
				if f[k] != del {
					t.Errorf("%s: %s, want deleted", k, f[k])
				}
			}
			for _, k := range c.kept {
				if v, ok := f[k]; ok {
					t.Errorf("%s is filtered (%s), want kept", k, v)
				}
			}
			for k, want := range c.filtered {
				if !strings.Contains(f[k], want) {
					t.Errorf("%s: %s, want %s", k, f[k], want)
				}
			}
			if got := cfg.appended(); !slices.Equal(got, c.appended) {
				t.Errorf("log_append keys %v, want %v", got, c.appended)
			}
			if logs := cfg.Apps.HTTP.Servers["pomerium"].Logs; logs["default_logger_name"] != "pomerium" {
				t.Errorf("server logs %v", logs)
			}
		})
	}
}

// log_level applies to the access log too: Pomerium writes no access log
// above info.
func TestLogLevelAppliesToTheAccessLog(t *testing.T) {
	cfg, _ := adaptLogs(t, "log_level: warn\n"+logRoute)
	if got := cfg.Logging.Logs["pomerium_access"].Level; got != "WARN" {
		t.Errorf("access log level %q", got)
	}
	if got := cfg.Logging.Logs["default"].Level; got != "WARN" {
		t.Errorf("default log level %q", got)
	}
}
