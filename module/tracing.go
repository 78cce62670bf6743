package module

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(TracingHandler{})
}

// TracingHandler is the `iap_tracing` handler: it makes each request a
// span of the iap app's tracing (its `tracing` settings: the collector,
// the sampler, the resource), with the route's decision in it, and sends
// the upstream a traceparent header naming that span. A traceparent the
// client sent becomes the span's parent (with its tracestate, which goes
// on as W3C Trace Context asks); the upstream never gets the client's
// traceparent itself, nor a tracestate that did not parse. Put it first
// in a site (the Caddyfile's `iap_tracing` directive is ordered so) to
// trace refusals as well. Like Caddy's own
// `tracing` handler, it sets the {http.vars.trace_id} and
// {http.vars.span_id} placeholders and adds traceID and spanID to the
// access log; unlike it, its settings come from the config, not from
// OTEL_* environment variables.
type TracingHandler struct {
	// The span's name. Placeholders are replaced per request. Default: the
	// request's method (GET, POST, ...; HTTP for other methods), as
	// OpenTelemetry names HTTP server spans without a route.
	SpanName string `json:"span,omitempty"`

	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// CaddyModule returns the Caddy module information.
func (TracingHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.iap_tracing", New: func() caddy.Module { return new(TracingHandler) }}
}

// Provision takes the tracer of the iap app's tracing settings.
func (h *TracingHandler) Provision(ctx caddy.Context) error {
	v, err := ctx.AppIfConfigured("iap")
	if err != nil && !errors.Is(err, caddy.ErrNotConfigured) {
		return fmt.Errorf("iap_tracing: %v", err) // the app's own error, such as a bad tracing setting
	}
	app, _ := v.(*App)
	if app == nil || app.tracer == nil {
		return errors.New("iap_tracing: the iap app has no tracing settings: add tracing { endpoint ... } to the global iap option (or \"tracing\" to the iap app's JSON)")
	}
	h.tracer = app.tracer.Tracer("github.com/caddy-iap/caddy-iap", trace.WithInstrumentationVersion(Version()))
	h.propagator = propagation.TraceContext{}
	return nil
}

// ServeHTTP runs the rest of the route inside the request's span.
func (h *TracingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	parent := h.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := h.tracer.Start(parent, h.spanName(r), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(requestAttributes(r)...))
	defer span.End()
	r = r.WithContext(ctx)

	// The upstream (and every later handler) sees this span as the parent,
	// never what the client sent.
	r.Header.Del("Traceparent")
	r.Header.Del("Tracestate")
	h.propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
	if sc := span.SpanContext(); sc.IsValid() {
		caddyhttp.SetVar(ctx, "trace_id", sc.TraceID().String())
		caddyhttp.SetVar(ctx, "span_id", sc.SpanID().String())
		if extra, ok := ctx.Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
			extra.Set(zap.String("traceID", sc.TraceID().String()))
			extra.Set(zap.String("spanID", sc.SpanID().String()))
		}
	}

	rec := &statusRecorder{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := next.ServeHTTP(rec, r)
	if !span.IsRecording() {
		return err
	}
	status := rec.status
	if err != nil {
		// A refusal or failure: Caddy writes its response after the
		// handlers return, with this status.
		status = http.StatusInternalServerError
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode != 0 {
			status = he.StatusCode
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if route, ok := caddyhttp.GetVar(ctx, routeVar).(string); ok && route != "" {
		span.SetAttributes(attribute.String("iap.route", route))
	}
	if st := requestOf(r); st != nil && st.Reason != "" {
		span.SetAttributes(attribute.String("iap.reason", string(st.Reason)))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, fmt.Sprintf("%d %s", status, http.StatusText(status)))
	}
	return err
}

// spanName is SpanName with its placeholders replaced, or the method.
func (h *TracingHandler) spanName(r *http.Request) string {
	if h.SpanName != "" {
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			return repl.ReplaceAll(h.SpanName, "")
		}
		return h.SpanName
	}
	if knownMethod(r.Method) {
		return r.Method
	}
	return "HTTP"
}

// knownMethod reports whether m is one of HTTP's own methods; others are
// a client's word, kept out of span names and attributes.
func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// requestAttributes are the span's attributes from the request, by
// OpenTelemetry's HTTP server conventions. The query string is left out:
// it may carry tokens.
func requestAttributes(r *http.Request) []attribute.KeyValue {
	method := r.Method
	if !knownMethod(method) {
		method = "_OTHER"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("url.scheme", scheme),
		attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", strings.ToLower(r.Host)),
		attribute.String("network.protocol.version", fmt.Sprintf("%d.%d", r.ProtoMajor, r.ProtoMinor)),
	}
	if r.ProtoMajor >= 2 {
		attrs[len(attrs)-1] = attribute.String("network.protocol.version", fmt.Sprint(r.ProtoMajor))
	}
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		attrs = append(attrs, attribute.String("client.address", ip))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	return attrs
}

// statusRecorder remembers the status the response was written with; the
// wrapper keeps flushing, hijacking and the rest working.
type statusRecorder struct {
	*caddyhttp.ResponseWriterWrapper
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	// 101 ends a WebSocket's handshake; 100 and 103 come before the status.
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.ResponseWriterWrapper.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriterWrapper.Write(b)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*TracingHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*TracingHandler)(nil)
)
