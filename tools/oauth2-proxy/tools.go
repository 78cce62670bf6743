//go:build tools

// Package tools pins oauth2-proxy, a contender of bench/run.sh (older
// versions are not served by the module proxy here). The bench builds it
// with:
//
//	go build -o ../../bin/oauth2-proxy github.com/oauth2-proxy/oauth2-proxy/v7
package tools

import _ "github.com/oauth2-proxy/oauth2-proxy/v7"
