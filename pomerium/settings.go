package pomerium

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/caddy-iap/caddy-iap/internal/suggest"
)

// support says what the adapter does with a Pomerium setting.
type support string

const (
	// works: the setting is read and mapped onto Caddy.
	works support = "works"
	// warned: ignored, with a warning that names its line and says why.
	// Only for settings that have no bearing on who gets in or where
	// requests go (metrics, tracing, DNS tuning, Envoy internals, the
	// addresses of Pomerium's split services).
	warned support = "warned"
	// refused: an error. Ignoring the setting would change who gets in or
	// where requests go, and the adapter cannot do what it asks.
	refused support = "error"
)

// knownSetting is one setting of Pomerium's config structs (config.Options
// for global settings, config.Policy for route settings), by its
// mapstructure name.
type knownSetting struct {
	name    string
	support support
	// why says, for warned and error settings, what the warning or error
	// says after the setting's name; for settings that work, what they
	// become (README's coverage table shows it).
	why string
	// dflt, when set, is Pomerium's default value: a warned or error
	// setting written with exactly that value asks for nothing different
	// and is accepted silently (matched without case).
	dflt string
}

// The reasons shared by several settings.
const (
	whyDNS        = "DNS tuning of Envoy; Caddy looks upstreams up with the system resolver, or those of dns_resolvers"
	whyEnvoy      = "an Envoy internal; there is no Envoy"
	whySplit      = "the address of one of Pomerium's split services; caddy-iap runs as one process"
	whyDatabroker = "Pomerium's databroker; sessions live in cookies and revocations in Caddy's storage"
	whySSH        = "Pomerium's SSH proxy; ssh routes are refused"
	whyZero       = "Pomerium Zero and Enterprise console features"
)

// globalSettings are the settings of Pomerium's config.Options, as of the
// commit named in testdata/pomerium-settings.txt.
var globalSettings = []knownSetting{
	{"access_log_fields", works, "the server's access log (logger http.log.access.pomerium, on for every request as in Pomerium) through a `filter` encoder that keeps the listed fields' Caddy counterparts (method: request>method, authority: request>host, path: request>uri, response-code: status, ...), the headers of user-agent, referer, forwarded-for and headers.<Name> (`iap_headers`), and adds request_id (request-id: Caddy's {http.request.uuid}, as the authorize log's) and upstream (upstream-cluster: the upstream's host:port); cluster-stat-name and response-code-details have none and client-certificate only the certificate's common name and serial (a warning when listed); iap_decision, iap_reason and iap_route_description are always kept", ""},
	{"address", works, "the server's listener and `https_port`", ""},
	{"allow_upgrades", works, "`websocket` turns WebSockets on for every route, `spdy/3.1` SPDY upgrades; other upgrades are refused, with a warning", ""},
	{"authenticate_internal_service_url", warned, whySplit, ""},
	{"authenticate_service_url", works, "the iap app's `authenticate_url`: users sign in on that one host, whose callback (`https://<host>/oauth2/callback`) is the only one the IdP lists; route hosts take the session in a one-time hand-off", ""},
	{"authorize_internal_service_url", warned, whySplit, ""},
	{"authorize_log_fields", works, "the iap app's `authorize_log_fields`: each decision is logged as \"authorize check\" with those fields, by Pomerium's names (Pomerium's default list when unset), then allow, deny and reason; fields caddy-iap has no value for (impersonation, service accounts, Envoy's route, MCP) are never logged", ""},
	{"authorize_service_url", warned, whySplit, ""},
	{"authorize_service_urls", warned, whySplit, ""},
	{"auto_apply_changesets", warned, whyZero, ""},
	{"autocert", works, "Caddy's automatic HTTPS (ACME) for the route hosts", ""},
	{"autocert_ca", works, "the ACME issuer's `ca`", ""},
	{"autocert_dir", works, "with autocert, Caddy's `storage` (`file_system` at that folder): certificates, and the iap app's keys and revocations, live there", ""},
	{"autocert_eab_key_id", works, "the ACME issuer's `external_account.key_id`", ""},
	{"autocert_eab_mac_key", works, "the ACME issuer's `external_account.mac_key`", ""},
	{"autocert_email", works, "the ACME issuer's `email`", ""},
	{"autocert_must_staple", works, "the automation policy's `must_staple`", ""},
	{"autocert_trusted_ca", refused, "Caddy's ACME issuer reads its trusted roots from files: use autocert_trusted_ca_file", ""},
	{"autocert_trusted_ca_file", works, "the ACME issuer's `trusted_roots_pem_files`", ""},
	{"autocert_use_staging", works, "Let's Encrypt's staging directory as the ACME issuer's `ca`", ""},
	{"bearer_token_format", works, "the iap app's `bearer_token_format`: `default` (or unset) passes bearer tokens to the upstream unread; `idp_access_token` verifies them with the IdP's userinfo endpoint, `idp_identity_token` as ID tokens, `jwt` as workload JWTs of identity_providers, and each then reaches the upstream too", ""},
	{"blob_storage", warned, "session recordings are not kept", ""},
	{"certificate", works, "a loaded certificate (`load_pem`)", ""},
	{"certificate_authority", works, "CAs added to the system roots for upstreams", ""},
	{"certificate_authority_file", works, "CAs added to the system roots for upstreams", ""},
	{"certificate_file", works, "a loaded certificate (`load_files`)", ""},
	{"certificate_key", works, "the key of `certificate`", ""},
	{"certificate_key_file", works, "the key of `certificate_file`", ""},
	{"certificates", works, "loaded certificates (`load_files`)", ""},
	{"circuit_breaker_thresholds", works, "the default of every route's circuit_breaker_thresholds (a route's own fields win), also from CIRCUIT_BREAKER_THRESHOLDS as a JSON map", ""},
	{"codec_type", works, "the server's `protocols` (`http1`: h1; `http2`: h2; `auto`: Caddy's default); `http3` is an error", ""},
	{"cookie_domain", works, "the iap app's `cookie_domain`", ""},
	{"cookie_expire", works, "the iap app's `cookie_expire`", ""},
	{"cookie_http_only", works, "always HttpOnly; `false` is ignored with a warning", ""},
	{"cookie_name", works, "the iap app's `cookie_name`", ""},
	{"cookie_same_site", works, "the iap app's `cookie_same_site`", ""},
	{"cookie_secret", works, "the iap app's `cookie_secret`", ""},
	{"cookie_secret_file", works, "the iap app's `cookie_secret`, read from the file", ""},
	{"databroker_cluster_leader_id", warned, whyDatabroker, ""},
	{"databroker_cluster_node_id", warned, whyDatabroker, ""},
	{"databroker_cluster_nodes", warned, whyDatabroker, ""},
	{"databroker_internal_service_url", warned, whyDatabroker, ""},
	{"databroker_raft_bind_address", warned, whyDatabroker, ""},
	{"databroker_service_url", warned, whyDatabroker, ""},
	{"databroker_service_urls", warned, whyDatabroker, ""},
	{"databroker_storage_connection_string", warned, whyDatabroker, ""},
	{"databroker_storage_connection_string_file", warned, whyDatabroker, ""},
	{"databroker_storage_type", warned, whyDatabroker, "memory"},
	{"debug_address", warned, "Pomerium's debug endpoint is not served", ""},
	{"default_upstream_timeout", works, "the `response_header_timeout` of routes without `timeout` (30s when unset, as in Pomerium)", ""},
	{"dns_failure_refresh_rate", warned, whyDNS, ""},
	{"dns_lookup_family", warned, whyDNS, ""},
	{"dns_query_timeout", warned, whyDNS, ""},
	{"dns_query_tries", warned, whyDNS, ""},
	{"dns_refresh_rate", warned, whyDNS, ""},
	{"dns_resolvers", works, "the upstream resolver (`resolver.addresses`) of every route's transport: udp://10.0.0.2:53 becomes udp/10.0.0.2:53", ""},
	{"dns_udp_max_queries", warned, whyDNS, ""},
	{"dns_use_tcp", works, "the resolvers of dns_resolvers over TCP; without dns_resolvers, a warning (the system resolver is used)", ""},
	{"downstream_mtls", works, "a TLS connection policy for every route host plus `iap_mtls` first on each route", ""},
	{"envoy_admin_access_log_path", warned, whyEnvoy, ""},
	{"envoy_admin_address", warned, whyEnvoy, ""},
	{"envoy_admin_profile_path", warned, whyEnvoy, ""},
	{"envoy_bind_config_freebind", warned, whyEnvoy, ""},
	{"envoy_bind_config_source_address", warned, whyEnvoy, ""},
	{"envoy_dynamic_extensions", warned, whyEnvoy, ""},
	{"google_cloud_serverless_authentication_service_account", warned, "Google Cloud serverless authentication is not offered (routes asking for it are warned too; their upstream refuses the requests)", ""},
	{"grpc_address", warned, whySplit, ""},
	{"grpc_client_timeout", warned, whySplit, ""},
	{"grpc_insecure", warned, whySplit, ""},
	{"headers_with_underscores_action", works, "Caddy drops request headers with underscores (DROP_HEADER); REJECT_REQUEST (Pomerium's default) and ALLOW are served so too, with a warning", ""},
	{"health_check_addr", works, "a server of its own on that address answering the health checks (/healthz, /ping), which every route host answers too", ""},
	{"health_check_systemd_disabled", warned, "there is no systemd health notifier", ""},
	{"http_redirect_addr", works, "`http_port` (Caddy redirects HTTP to HTTPS there)", ""},
	{"identity_providers", works, "the iap app's `identity_providers`: issuers of workload JWTs (issuer, jwks_url, supported_algs, audiences), verified against their keys on routes with bearer_token_format jwt; the user is `<name>/<sub>` with the token's claims for PPL; https only but on loopback, no HS*/none, audiences required; `kubernetes:///` is an error", ""},
	{"idp_access_token_allowed_audiences", works, "the iap app's `idp_access_token_allowed_audiences`: userinfo's `aud` must be one of them; an empty list is an error", ""},
	{"idp_client_id", works, "the iap app's `idp.client_id`", ""},
	{"idp_client_secret", works, "the iap app's `idp.client_secret`", ""},
	{"idp_client_secret_file", works, "the iap app's `idp.client_secret`, read from the file", ""},
	{"idp_provider", works, "OIDC providers (`oidc`, `google`, `gitlab`, `apple`, `azure`, `okta`, `onelogin`, `ping`, `auth0`, `keycloak`, `cognito`); `github` and other non-OIDC ones are an error", ""},
	{"idp_provider_url", works, "the iap app's `idp.provider_url`", ""},
	{"idp_request_params", works, "the iap app's `idp.request_params`: extra parameters of the authorization request", ""},
	{"idp_scopes", works, "the iap app's `idp.scopes`", ""},
	{"insecure_server", works, "plain HTTP on `address`, with no certificates (behind a proxy that terminates TLS)", ""},
	{"installation_id", warned, whyZero, ""},
	{"jwt_claims_headers", works, "the iap app's `jwt_claims_headers` (a map or a list)", ""},
	{"jwt_issuer_format", works, "the iap app's `jwt_issuer_format`: the assertion's `iss` as the host (hostOnly) or https://<host>/ (uri)", ""},
	{"log_level", works, "Caddy's default log level", ""},
	{"mcp_allowed_as_metadata_domains", warned, "MCP routes are refused, so nothing reads it", ""},
	{"mcp_allowed_client_id_domains", warned, "MCP routes are refused, so nothing reads it", ""},
	{"merge_slashes", works, "always on: repeated slashes are merged before the policy decides; `false` is a warning (the path is still cleaned)", ""},
	{"metrics_address", works, "a server of its own on that address with Caddy's Prometheus metrics (`metrics` handler): plain HTTP, or HTTPS with a metrics certificate", ""},
	{"metrics_basic_auth", works, "HTTP basic authentication (bcrypt) before the metrics", ""},
	{"metrics_certificate", works, "with metrics_certificate_key, the metrics server's certificate (`load_pem`, tagged `pomerium_metrics`, which only that server's connection policy selects): the endpoint is HTTPS; one without the other is ignored with a warning, as Pomerium ignores it", ""},
	{"metrics_certificate_file", works, "with metrics_certificate_key_file, the metrics server's certificate (`load_files`, tagged `pomerium_metrics`), when metrics_certificate is not set; read at adapt too, so a bad pair fails there", ""},
	{"metrics_certificate_key", works, "the key of metrics_certificate", ""},
	{"metrics_certificate_key_file", works, "the key of metrics_certificate_file", ""},
	{"metrics_client_ca", works, "the metrics server's `client_authentication` (`require_and_verify`, an `inline` CA pool): the handshake fails without a valid certificate it issued; without a metrics certificate, ignored with a warning (plain HTTP, as in Pomerium)", ""},
	{"metrics_client_ca_file", works, "as metrics_client_ca, from the file (a `file` CA pool), when metrics_client_ca is not set", ""},
	{"normalize_path", works, "always on: dot segments are removed before the policy decides; `false` is a warning (the path is still cleaned)", ""},
	{"otel_attribute_value_length_limit", works, "the iap app's `tracing.attribute_value_length_limit`: span attribute values are cut there (64 to 32768, as Pomerium bounds it)", ""},
	{"otel_bsp_max_export_batch_size", works, "`tracing.max_export_batch_size`: the most spans per export (at least 1)", ""},
	{"otel_bsp_schedule_delay", works, "`tracing.schedule_delay`, from integer milliseconds: how long spans wait to be batched (at least 100ms)", ""},
	{"otel_exporter_otlp_endpoint", works, "`tracing.endpoint`: the collector's base URL; over http/protobuf spans go to /v1/traces under it", ""},
	{"otel_exporter_otlp_headers", works, "`tracing.headers` (key=value list or comma-separated), unless otel_exporter_otlp_traces_headers is set", ""},
	{"otel_exporter_otlp_protocol", works, "`tracing.protocol`: grpc or http/protobuf; unset, guessed from the endpoint as Pomerium does (4317 grpc, 4318 http/protobuf)", ""},
	{"otel_exporter_otlp_timeout", works, "`tracing.timeout`, from integer milliseconds, unless otel_exporter_otlp_traces_timeout is set", ""},
	{"otel_exporter_otlp_traces_endpoint", works, "`tracing.endpoint` as written (the traces URL), over otel_exporter_otlp_endpoint", ""},
	{"otel_exporter_otlp_traces_headers", works, "`tracing.headers`, over otel_exporter_otlp_headers", ""},
	{"otel_exporter_otlp_traces_protocol", works, "`tracing.protocol`, over otel_exporter_otlp_protocol", ""},
	{"otel_exporter_otlp_traces_timeout", works, "`tracing.timeout`, over otel_exporter_otlp_timeout", ""},
	{"otel_log_level", works, "`tracing.log_level`: the least level of the iap.tracing logs (failed exports at error, each export at debug)", ""},
	{"otel_resource_attributes", works, "`tracing.resource_attributes` (key=value list or comma-separated): service.name and the rest of every span's resource", ""},
	{"otel_traces_exporter", works, "`otlp` turns tracing on: the iap app's `tracing` and an `iap_tracing` handler before every route (not the health checks); `none` or unset: no tracing", ""},
	{"otel_traces_sampler_arg", works, "`tracing.sampler_arg`: the share of requests traced (parent-based: a sampled traceparent from the client is followed)", ""},
	{"override_certificate_name", warned, "the name Pomerium's split services expect on each other's certificates; caddy-iap runs as one process", ""},
	{"pass_identity_headers", works, "the iap app's `pass_identity_headers`, a route's own value winning", ""},
	{"path_with_escaped_slashes_action", works, "`REJECT_REQUEST` (Pomerium's default) is what caddy-iap does: 400 ambiguous-path; `KEEP_UNCHANGED`, `UNESCAPE_AND_REDIRECT` and `UNESCAPE_AND_FORWARD` are errors (they need a weaker path rule)", ""},
	{"policy", works, "routes, before those of `routes`", ""},
	{"policy_file", refused, "Pomerium refuses it too (deprecated): put the routes under routes", ""},
	{"programmatic_redirect_domain_whitelist", works, "the iap app's `programmatic_redirect_domain_whitelist`: the hosts a programmatic login may send its token to (`localhost`: any loopback URL; other hosts over https only)", ""},
	{"proxy_log_level", warned, "the log level of Envoy; Caddy's log level is log_level", ""},
	{"routes", works, "the routes, after those of `policy`", ""},
	{"runtime_flags", warned, "Pomerium's feature flags; caddy-iap has none", ""},
	{"services", works, "`all` (the default); a single service (`authenticate`, `authorize`, `proxy`, `databroker`) is an error: caddy-iap runs as one process", ""},
	{"session_recording_concurrency", warned, whySSH, ""},
	{"set_response_headers", works, "a `headers` handler on every route's response; a route's own `set_response_headers` wins. Unset, Pomerium's defaults: X-Frame-Options SAMEORIGIN, X-XSS-Protection 1; mode=block, and Strict-Transport-Security when the config names certificates of its own (not autocert alone, nor its staging CA); `disable` turns them all off", ""},
	{"shared_secret", works, "when there is no `cookie_secret`, the cookie key is derived from it (HKDF)", ""},
	{"shared_secret_file", works, "as shared_secret, read from the file", ""},
	{"signing_key", works, "the iap app's `signing_key`", ""},
	{"signing_key_file", works, "the iap app's `signing_key_file`", ""},
	{"signout_redirect_url", works, "the iap app's `sign_out_redirect_url`: where sign-out ends when no return URL is given", ""},
	{"skip_xff_append", works, "`true`: each `reverse_proxy` sends the client's X-Forwarded-For unchanged, or none (`header_up` with a `map` first on the server); source_ip still sees the TCP peer. `false` (the default): Caddy sends the peer's address, dropping an untrusted client's list, where Envoy appends the peer to it", ""},
	{"ssh_address", refused, "Pomerium's SSH proxy is not offered: no SSH listener would start", ""},
	{"ssh_host_key_files", warned, whySSH, ""},
	{"ssh_host_keys", warned, whySSH, ""},
	{"ssh_rls_additional_entries", warned, whySSH, ""},
	{"ssh_rls_enabled", warned, whySSH, ""},
	{"ssh_user_ca_key", warned, whySSH, ""},
	{"ssh_user_ca_key_file", warned, whySSH, ""},
	{"timeout_idle", works, "the server's `idle_timeout` (5m when unset, as in Pomerium)", ""},
	{"timeout_read", works, "the server's `read_timeout` (30s when unset, as in Pomerium)", ""},
	{"timeout_write", works, "the server's `write_timeout` (none when unset, as in Pomerium)", ""},
	{"tls_derive", warned, "certificates for Pomerium's internal service names; caddy-iap runs as one process", ""},
	{"use_proxy_protocol", works, "a `proxy_protocol` listener wrapper before TLS", ""},
	{"xff_num_trusted_hops", warned, "Caddy decides which X-Forwarded-For entries to trust by its `trusted_proxies` ranges, not a count of hops", "0"},
}

// routeSettings are the settings of Pomerium's config.Policy (a route).
var routeSettings = []knownSetting{
	{"allow_any_authenticated_user", works, "the policy shortcut", ""},
	{"allow_public_unauthenticated_access", works, "the policy shortcut", ""},
	{"allow_spdy", works, "SPDY/3.1 upgrades (kubectl exec, attach, port-forward) are proxied after the policy (`allow_spdy` on the route's iap_authenticate and iap_authorize); off by default, and on for Kubernetes routes, as in Pomerium", ""},
	{"allow_upgrades", works, "`websocket` turns WebSockets on, `spdy/3.1` SPDY upgrades; other upgrades are refused, with a warning", ""},
	{"allow_websockets", works, "WebSockets are proxied (off by default, as in Pomerium)", ""},
	{"allowed_domains", works, "the policy shortcut", ""},
	{"allowed_idp_claims", works, "the policy shortcut", ""},
	{"allowed_users", works, "the policy shortcut", ""},
	{"bearer_token_format", works, "the route's `bearer_token_format`, overriding the global one", ""},
	{"circuit_breaker_thresholds", works, "`max_requests`: the passive health check's `unhealthy_request_count` (503 when every upstream is full); `max_connections`: the transport's `max_conns_per_host`; both per upstream (a warning with several); `max_retries`: nothing to limit (no retries); `max_pending_requests` and `max_connection_pools` warn", ""},
	{"cors_allow_preflight", works, "CORS preflight requests pass without a user", ""},
	{"depends_on", works, "the route's `depends_on`: a sign-in here goes through those hosts' sign-ins too", ""},
	{"description", works, "the route's description in the routes portal, and the access log field `iap_route_description` of each request the route takes (`log_append`)", ""},
	{"enable_google_cloud_serverless_authentication", warned, "no Google ID token is added for Cloud Run upstreams, which then refuse the requests", "false"},
	{"from", works, "the host matcher", ""},
	{"health_checks", works, "`reverse_proxy` active health checks from the first HTTP check (path, host, interval, timeout, thresholds, expected status); TCP and gRPC checks warn", ""},
	{"healthy_panic_threshold", works, "the `iap_healthy_panic` selection policy around the route's own: below that percentage of healthy upstreams it chooses among all of them; Envoy's default of 50 on routes with health checks or outlier detection; 0 turns it off", ""},
	{"host_path_regex_rewrite_pattern", works, "the upstream Host from a regular expression on the path", ""},
	{"host_path_regex_rewrite_substitution", works, "the upstream Host from a regular expression on the path", ""},
	{"host_rewrite", works, "the upstream Host header", ""},
	{"host_rewrite_header", works, "the upstream Host from a request header", ""},
	{"identity_providers", works, "the route's `identity_providers`: the names whose workload JWTs it accepts (empty: all); only with bearer_token_format jwt", ""},
	{"idle_timeout", works, "the upstream transport's keep-alive idle timeout", ""},
	{"idp_access_token_allowed_audiences", works, "the route's `idp_access_token_allowed_audiences`, overriding the global list", ""},
	{"idp_client_id", works, "a named IdP of the iap app: the global idp_provider_url with this client (`idp NAME`); routes with the same client share its sessions, and no other route accepts them", ""},
	{"idp_client_secret", works, "that named IdP's client secret", ""},
	{"jwt_issuer_format", works, "the route's `jwt_issuer_format`, overriding the global one", ""},
	{"kubernetes_service_account_token", works, "the route's `kubernetes_service_account_token`: Authorization and Impersonate-User/-Group upstream for signed-in users; client Impersonate-* headers removed", ""},
	{"kubernetes_service_account_token_file", works, "the same, from a file read again when it changes", ""},
	{"load_balancing_policy", works, "the `reverse_proxy` selection policy: `round_robin`, `least_conn`, `random`; RING_HASH and MAGLEV: `client_ip_hash`", ""},
	{"logo_url", works, "the route's logo in the routes portal (`/.pomerium/routes`, JSON at `/.pomerium/api/v1/routes`): an http(s) or data:image URL; `javascript:` and other schemes are an error", ""},
	{"mcp", refused, "MCP routes are not supported", ""},
	{"name", works, "the route's name in logs, refusal pages and the routes portal", ""},
	{"outlier_detection", works, "passive health checks: `consecutive_5xx` (or, alone, `consecutive_gateway_failure`) as `max_fails` of 5xx (502-504) responses and connection failures, within `base_ejection_time` as `fail_duration`; none, with a warning, where `max_ejection_percent` lets Envoy eject none (its default 10% of fewer than 10 upstreams); the fields Caddy lacks (interval, success rate, ...) warn by name", ""},
	{"pass_identity_headers", works, "the assertion and claim headers go upstream", ""},
	{"path", works, "a `path_regexp` matcher for that exact path", ""},
	{"policy", works, "the route's policy (PPL)", ""},
	{"prefix", works, "a `path_regexp` matcher for paths under that prefix", ""},
	{"prefix_rewrite", works, "a `rewrite` of what the route matched", ""},
	{"preserve_host_header", works, "the client's Host goes upstream", ""},
	{"redirect", works, "a `static_response` with the Location Envoy would send", ""},
	{"regex", works, "a `path_regexp` matcher for the whole path", ""},
	{"regex_priority_order", warned, "Pomerium itself does not read it; routes are tried in config order", ""},
	{"regex_rewrite_pattern", works, "a `rewrite` of the path by regular expression", ""},
	{"regex_rewrite_substitution", works, "a `rewrite` of the path by regular expression", ""},
	{"remove_request_headers", works, "headers removed before proxying", ""},
	{"response", works, "a `static_response`", ""},
	{"rewrite_response_headers", works, "a `headers` replacement of a value's prefix", ""},
	{"session_recording", warned, whySSH, ""},
	{"set_request_headers", works, "headers set before proxying", ""},
	{"set_response_headers", works, "headers set on the response", ""},
	{"show_error_details", works, "the route's `show_error_details`: its 403 page and JSON list how the policy decided, each rule and criterion with its result (a warning says so: Pomerium's show Enterprise sub-policies only); without it they show the status, the reason and the request ID", ""},
	{"sub_policies", works, "their allowed_users, allowed_domains and allowed_idp_claims join the route's allow rule; a non-empty `rego` is an error (there is no Rego), explanation, remediation and source_ppl warn", ""},
	{"timeout", works, "the upstream transport's `response_header_timeout`", ""},
	{"tls_client_cert", works, "the upstream client certificate", ""},
	{"tls_client_cert_file", works, "the upstream client certificate", ""},
	{"tls_client_key", works, "the upstream client key", ""},
	{"tls_client_key_file", works, "the upstream client key", ""},
	{"tls_custom_ca", works, "the upstream's CA", ""},
	{"tls_custom_ca_file", works, "the upstream's CA", ""},
	{"tls_downstream_client_ca", works, "downstream mTLS for the route's host (deprecated in Pomerium; warned)", ""},
	{"tls_downstream_client_ca_file", works, "downstream mTLS for the route's host (deprecated in Pomerium; warned)", ""},
	{"tls_downstream_server_name", works, "a certificate for that name too (`tls.certificates.automate`), the route host's connection policy (client CA, downstream_mtls) for it, and `iap_mtls` `server_names`: a connection made for that name carries requests for the route's host", ""},
	{"tls_server_name", works, "the upstream's TLS server name", ""},
	{"tls_skip_verify", works, "the upstream's certificate is not verified", ""},
	{"tls_upstream_allow_renegotiation", works, "`renegotiation: freely`", ""},
	{"tls_upstream_server_name", works, "the upstream's TLS server name", ""},
	{"to", works, "`reverse_proxy` upstreams (weighted: `weighted_round_robin`)", ""},
	{"upstream_tunnel", refused, "upstream tunnels are not supported: the route's requests would go elsewhere", ""},
}

// legacyGlobal are global settings of older Pomerium releases that
// today's config structs no longer have. Pomerium refuses the removed ones
// (config.removedConfigFields) and ignores the others with a warning
// ("unknown config option"); the adapter does the same, so that an old
// config adapts as it still runs.
var legacyGlobal = []knownSetting{
	{"client_ca", refused, "client_ca has been removed: use downstream_mtls.ca", ""},
	{"client_ca_file", refused, "client_ca_file has been removed: use downstream_mtls.ca_file", ""},
	{"client_crl", refused, "client_crl has been removed: use downstream_mtls.crl", ""},
	{"idp_service_account", refused, "idp_service_account has been removed from Pomerium (directory sync): use claims from the IdP's ID token", ""},
	{"idp_refresh_directory_timeout", refused, "idp_refresh_directory_timeout has been removed from Pomerium (directory sync)", ""},
	{"idp_refresh_directory_interval", refused, "idp_refresh_directory_interval has been removed from Pomerium (directory sync)", ""},
	{"idp_qps", refused, "idp_qps has been removed from Pomerium (directory sync)", ""},
	{"tracing_provider", warned, "an old tracing setting (Pomerium now refuses it; use the otel_* settings)", ""},
	{"tracing_sample_rate", warned, "an old tracing setting (Pomerium now refuses it; use the otel_* settings)", ""},
	{"tracing_datadog_address", warned, "an old tracing setting (Pomerium now refuses it; use the otel_* settings)", ""},
	{"tracing_jaeger_collector_endpoint", warned, "an old tracing setting (Pomerium now refuses it; use the otel_* settings)", ""},
	{"tracing_jaeger_agent_endpoint", warned, "an old tracing setting (Pomerium now refuses it; use the otel_* settings)", ""},
	{"tracing_zipkin_endpoint", warned, "an old tracing setting (Pomerium now refuses it; use the otel_* settings)", ""},
	{"forward_auth_url", warned, "Pomerium removed forward-auth mode (v0.23) and ignores it; Caddy proxies the routes itself", ""},
	{"pomerium_debug", warned, "an old logging setting that Pomerium ignores", ""},
	{"debug", warned, "an old logging setting that Pomerium ignores", ""},
	{"headers", warned, "an old name of set_response_headers that Pomerium ignores", ""},
	{"secondary_signing_key", warned, "an old setting that Pomerium ignores: list several keys in signing_key instead", ""},
	{"jwt_groups_filter", warned, "an Enterprise setting that Pomerium ignores", ""},
	{"branding", warned, "an Enterprise setting that Pomerium ignores", ""},
	{"http3_advertise", warned, "an old setting that Pomerium ignores", ""},
	{"timeout", warned, "not a Pomerium global setting (Pomerium ignores it): routes have timeout, the server timeout_read, timeout_write and timeout_idle", ""},
	{"request_params", warned, "an old name of idp_request_params that Pomerium ignores", ""},
	{"autocert_use_staging_dir", warned, "an old setting that Pomerium ignores", ""},
}

// legacyRoute are route settings of older Pomerium releases.
var legacyRoute = []knownSetting{
	{"allowed_groups", refused, "allowed_groups has been removed from Pomerium: use a policy with groups", ""},
	{"set_authorization_header", refused, "set_authorization_header has been removed from Pomerium: use set_request_headers", ""},
	{"id", warned, "a route's console ID, which Pomerium does not read from a file", ""},
	{"tls_downstream_client_ca_file_deprecated", warned, "an old setting that Pomerium ignores", ""},
}

// lookupSetting finds a setting by name in a table.
func lookupSetting(table []knownSetting, name string) (knownSetting, bool) {
	i := slices.IndexFunc(table, func(s knownSetting) bool { return s.name == name })
	if i < 0 {
		return knownSetting{}, false
	}
	return table[i], true
}

// didYouMean returns ` (did you mean "x"?)` naming the setting of the
// tables closest to name, or "" when none is close.
func didYouMean(name string, tables ...[]knownSetting) string {
	var names []string
	for _, table := range tables {
		for _, s := range table {
			names = append(names, s.name)
		}
	}
	return suggest.DidYouMean(name, names)
}

// isDefault reports whether value is the setting's Pomerium default.
func (s knownSetting) isDefault(value string) bool {
	return s.dflt != "" && strings.EqualFold(strings.TrimSpace(value), s.dflt)
}

// isDefaultNode reports whether a YAML value is the setting's Pomerium
// default: a scalar, or a list of that one value (a list setting's
// default, such as [localhost]).
func (s knownSetting) isDefaultNode(n *yaml.Node) bool {
	if n.Kind == yaml.SequenceNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n.Kind == yaml.ScalarNode && s.isDefault(n.Value)
}

// refusal is the error for an error setting: its why, which names the
// setting itself when it begins with it, else "<name> is not supported: why".
func (s knownSetting) refusal() string {
	if strings.HasPrefix(s.why, s.name+" ") {
		return s.why
	}
	return s.name + " is not supported: " + s.why
}
