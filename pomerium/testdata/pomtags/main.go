// Command pomtags lists the settings of Pomerium's config structs, the
// oracle of TestEverySettingIsKnown (../pomerium-settings.txt): the
// mapstructure names of config.Options (global) and config.Policy (route),
// following squashed embeds (GlobalOptions, RouteOptions, DNSOptions,
// AutocertOptions, DataBrokerOptions, otelconfig.Config). Names starting
// with an underscore are internal (_to_weights) and left out; the global
// set_response_headers, which Pomerium reads through viper rather than a
// mapstructure tag, is added.
//
// Run it on the config directory of a Pomerium checkout:
//
//	go run ./pomerium/testdata/pomtags /path/to/pomerium/config > pomerium/testdata/pomerium-settings.txt
//
// and put the commit in the file's header.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

func main() {
	dir := os.Args[1]
	types := map[string]*ast.StructType{}
	for _, sub := range []string{"", "otelconfig"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
			if err != nil {
				panic(err)
			}
			pkg := ""
			if sub != "" {
				pkg = sub + "."
			}
			ast.Inspect(af, func(n ast.Node) bool {
				if ts, ok := n.(*ast.TypeSpec); ok {
					if st, ok := ts.Type.(*ast.StructType); ok {
						types[pkg+ts.Name.Name] = st
					}
				}
				return true
			})
		}
	}
	var walk func(name string) []string
	walk = func(name string) []string {
		st := types[name]
		if st == nil {
			panic("no struct " + name)
		}
		var out []string
		for _, f := range st.Fields.List {
			if f.Tag == nil {
				continue
			}
			tag := reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("mapstructure")
			key, opts, _ := strings.Cut(tag, ",")
			if key == "-" || strings.HasPrefix(key, "_") || (key == "" && !strings.Contains(opts, "squash")) {
				continue
			}
			if key == "" {
				var tn string
				switch t := f.Type.(type) {
				case *ast.Ident:
					tn = t.Name
				case *ast.SelectorExpr:
					tn = t.X.(*ast.Ident).Name + "." + t.Sel.Name
				}
				out = append(out, walk(tn)...)
				continue
			}
			out = append(out, key)
		}
		return out
	}
	for _, k := range []string{"Options", "Policy"} {
		keys := walk(k)
		if k == "Options" {
			keys = append(keys, "set_response_headers")
		}
		sort.Strings(keys)
		for _, key := range keys {
			fmt.Printf("%s %s\n", map[string]string{"Options": "global", "Policy": "route"}[k], key)
		}
	}
}
