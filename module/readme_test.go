package module

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/upstreamtls"
)

// jsonNames lists the JSON names of a config struct's fields, descending
// into embedded structs.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, jsonNames(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// The README's option tables must name every option the config structs
// have, so the docs cannot drift from the code.
func TestREADMEListsEveryOption(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []reflect.Type{reflect.TypeOf(Route{}), reflect.TypeOf(upstreamtls.Defaults{}), reflect.TypeOf(MTLS{}), reflect.TypeOf(App{}), reflect.TypeOf(IDP{})} {
		for _, name := range jsonNames(typ) {
			if name == "policy" {
				continue // documented with the policy language
			}
			if !strings.Contains(string(readme), "`"+name) {
				t.Errorf("README.md does not document %s's option %q", typ.Name(), name)
			}
		}
	}
}
