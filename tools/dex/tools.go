//go:build tools

// Package tools pins Dex, the OpenID Connect provider the tests sign in
// against. scripts/test.sh builds it with:
//
//	go build -o ../../bin/dex github.com/dexidp/dex/cmd/dex
package tools

import _ "github.com/dexidp/dex/cmd/dex"
