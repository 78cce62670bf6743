// Command caddy is Caddy with the standard modules and caddy-iap, the same
// set that xcaddy.sh builds. The tests build and run it as the real binary.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-iap/caddy-iap"
)

func main() {
	caddycmd.Main()
}
