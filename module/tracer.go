package module

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/http/httpguts"
)

// Tracing is the iap app's `tracing`: each request that passes an
// iap_tracing handler becomes an OpenTelemetry span, sent over OTLP to a
// collector or trace backend (Jaeger, Tempo, an OpenTelemetry Collector),
// and the upstream gets a traceparent header naming it. It is Pomerium's
// otel_* settings. Everything comes from this config, not from OTEL_*
// environment variables, so a reload with other settings takes effect and
// nothing is process-wide; only the OTLP exporter's own TLS and
// compression variables (OTEL_EXPORTER_OTLP_CERTIFICATE, ..._COMPRESSION)
// in Caddy's environment still apply, as the OpenTelemetry SDK reads them.
type Tracing struct {
	// Where spans are sent: an http:// or https:// URL. Over
	// http/protobuf spans are posted to the URL's path, /v1/traces when it
	// has none; over grpc the path is ignored. https checks the
	// collector's certificate against the system roots. Default:
	// http://localhost:4318/v1/traces, or http://localhost:4317 over grpc.
	Endpoint string `json:"endpoint,omitempty"`

	// The OTLP transport: "http/protobuf" (the default) or "grpc".
	Protocol string `json:"protocol,omitempty"`

	// Headers sent with every export, such as an Authorization header the
	// collector requires. {env.NAME} and {file.path} placeholders are
	// replaced at provision, so a token need not be in the config.
	Headers map[string]string `json:"headers,omitempty"`

	// How long one export may take. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// The attributes of the resource the spans belong to, such as
	// service.name (what the trace backend lists them under; default
	// caddy-iap) or deployment.environment.
	ResourceAttributes map[string]string `json:"resource_attributes,omitempty"`

	// The share of requests traced, from 0 (none) to 1 (all, the default).
	// A request that comes with a traceparent header follows its sampled
	// flag instead, so a trace that a client or another proxy started
	// stays whole (OpenTelemetry's parentbased_traceidratio sampler).
	SamplerArg *float64 `json:"sampler_arg,omitempty"`

	// How long a span waits to be exported with others. Default: 5s.
	ScheduleDelay caddy.Duration `json:"schedule_delay,omitempty"`

	// The most spans sent in one export. Default: 512.
	MaxExportBatchSize int `json:"max_export_batch_size,omitempty"`

	// Attribute values longer than this many characters are cut, so that
	// a client's long path or User-Agent cannot make the spans waiting
	// for export large. Default: 256, Envoy's limit on the path in
	// Pomerium's spans.
	AttributeValueLengthLimit int `json:"attribute_value_length_limit,omitempty"`

	// The least level of the tracing logs (logger iap.tracing): a failed
	// export is logged at error, each export at debug. "debug", "info",
	// "warn" or "error"; it can only raise Caddy's own log level. Default:
	// Caddy's level.
	LogLevel string `json:"log_level,omitempty"`
}

// The OTLP protocols.
const (
	protocolHTTP = "http/protobuf"
	protocolGRPC = "grpc"
)

// defaultServiceName is service.name unless resource_attributes sets it.
const defaultServiceName = "caddy-iap"

// defaultAttributeValueLengthLimit bounds attribute values unless
// attribute_value_length_limit says otherwise.
const defaultAttributeValueLengthLimit = 256

// validate checks the settings and fills in the defaults: Endpoint,
// Protocol and Timeout are set afterwards. Errors name the option.
func (t *Tracing) validate() error {
	switch t.Protocol {
	case "":
		t.Protocol = protocolHTTP
	case protocolHTTP, protocolGRPC:
	case "http/json":
		return errors.New("protocol: http/json is not supported by OpenTelemetry's Go exporter; use http/protobuf or grpc")
	default:
		return fmt.Errorf("protocol: %q is not http/protobuf or grpc", t.Protocol)
	}
	if t.Endpoint == "" {
		t.Endpoint = "http://localhost:4318/v1/traces"
		if t.Protocol == protocolGRPC {
			t.Endpoint = "http://localhost:4317"
		}
	}
	u, err := url.Parse(t.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("endpoint: %q is not a collector's URL such as http://localhost:4318/v1/traces (http or https, a host, no user, query or fragment)", t.Endpoint)
	}
	if t.Protocol == protocolHTTP && (u.Path == "" || u.Path == "/") {
		u.Path = "/v1/traces"
		t.Endpoint = u.String()
	}
	for name, value := range t.Headers {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("headers: %q is not a header name", name)
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			return fmt.Errorf("headers: the value of %s has a character a header cannot carry (a line break or control character)", name)
		}
	}
	if t.Timeout < 0 {
		return errors.New("timeout: must not be negative")
	}
	if t.Timeout == 0 {
		t.Timeout = caddy.Duration(10 * time.Second)
	}
	for key := range t.ResourceAttributes {
		if strings.TrimSpace(key) == "" {
			return errors.New("resource_attributes: an attribute has no name")
		}
	}
	if a := t.SamplerArg; a != nil && (math.IsNaN(*a) || *a < 0 || *a > 1) {
		return fmt.Errorf("sampler_arg: %v is not between 0 and 1", *a)
	}
	if t.ScheduleDelay < 0 || t.MaxExportBatchSize < 0 || t.AttributeValueLengthLimit < 0 {
		return errors.New("schedule_delay, max_export_batch_size and attribute_value_length_limit must not be negative")
	}
	if _, err := t.logLevel(); err != nil {
		return err
	}
	return nil
}

// logLevel returns LogLevel as a zap level: debug when unset, which
// leaves Caddy's level alone.
func (t *Tracing) logLevel() (zapcore.Level, error) {
	switch strings.ToLower(t.LogLevel) {
	case "":
		return zapcore.DebugLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("log_level: %q is not debug, info, warn or error", t.LogLevel)
}

// expandPlaceholders replaces {env.*} and {file.*} in the endpoint and the
// header values.
func (t *Tracing) expandPlaceholders() error {
	repl := caddy.NewReplacer()
	v, err := repl.ReplaceOrErr(t.Endpoint, true, true)
	if err != nil {
		return fmt.Errorf("endpoint: %v", err)
	}
	t.Endpoint = v
	headers := make(map[string]string, len(t.Headers))
	for name, value := range t.Headers {
		v, err := repl.ReplaceOrErr(value, true, true)
		if err != nil {
			return fmt.Errorf("headers: %s: %v", name, err)
		}
		headers[name] = v
	}
	t.Headers = headers
	return nil
}

// newProvider builds the tracer provider of these settings: an OTLP
// exporter behind a batch span processor. It reads no OTEL_* variable but
// the exporter's TLS and compression ones.
func (t *Tracing) newProvider(logger *zap.Logger) (*sdktrace.TracerProvider, error) {
	if lvl, _ := t.logLevel(); zapcore.LevelOf(logger.Core()) < lvl {
		logger = logger.WithOptions(zap.IncreaseLevel(lvl))
	}
	var client otlptrace.Client
	if t.Protocol == protocolGRPC {
		client = otlptracegrpc.NewClient(otlptracegrpc.WithEndpointURL(t.Endpoint),
			otlptracegrpc.WithHeaders(t.Headers), otlptracegrpc.WithTimeout(time.Duration(t.Timeout)))
	} else {
		client = otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(t.Endpoint),
			otlptracehttp.WithHeaders(t.Headers), otlptracehttp.WithTimeout(time.Duration(t.Timeout)))
	}
	exporter, err := otlptrace.New(context.Background(), client)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter for %s: %v", t.Endpoint, err)
	}

	attrs := []attribute.KeyValue{
		attribute.String("service.name", defaultServiceName),
		attribute.String("service.version", Version()),
		attribute.String("telemetry.sdk.language", "go"),
		attribute.String("telemetry.sdk.name", "opentelemetry"),
	}
	for k, v := range t.ResourceAttributes {
		attrs = append(attrs, attribute.String(k, v)) // later keys win
	}
	res := resource.NewSchemaless(attrs...)

	ratio := 1.0
	if t.SamplerArg != nil {
		ratio = *t.SamplerArg
	}
	limits := sdktrace.SpanLimits{
		AttributeValueLengthLimit:   sdktrace.DefaultAttributeValueLengthLimit,
		AttributeCountLimit:         sdktrace.DefaultAttributeCountLimit,
		EventCountLimit:             sdktrace.DefaultEventCountLimit,
		LinkCountLimit:              sdktrace.DefaultLinkCountLimit,
		AttributePerEventCountLimit: sdktrace.DefaultAttributePerEventCountLimit,
		AttributePerLinkCountLimit:  sdktrace.DefaultAttributePerLinkCountLimit,
	}
	limits.AttributeValueLengthLimit = defaultAttributeValueLengthLimit
	if t.AttributeValueLengthLimit > 0 {
		limits.AttributeValueLengthLimit = t.AttributeValueLengthLimit
	}
	delay := time.Duration(t.ScheduleDelay)
	if delay == 0 {
		delay = sdktrace.DefaultScheduleDelay * time.Millisecond
	}
	batch := t.MaxExportBatchSize
	if batch == 0 {
		batch = sdktrace.DefaultMaxExportBatchSize
	}
	// Every batch option is given, so that no OTEL_BSP_* variable applies.
	bsp := sdktrace.NewBatchSpanProcessor(&loggingExporter{SpanExporter: exporter, logger: logger, endpoint: t.Endpoint},
		sdktrace.WithBatchTimeout(delay),
		sdktrace.WithMaxExportBatchSize(batch),
		sdktrace.WithMaxQueueSize(max(sdktrace.DefaultMaxQueueSize, batch)),
		sdktrace.WithExportTimeout(max(time.Duration(t.Timeout), sdktrace.DefaultExportTimeout*time.Millisecond)))
	logger.Info("tracing", zap.String("endpoint", t.Endpoint), zap.String("protocol", t.Protocol), zap.Float64("sampler_arg", ratio))
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithRawSpanLimits(limits),
		sdktrace.WithSpanProcessor(bsp),
	), nil
}

// loggingExporter logs each export: failures at error (with the
// collector's answer), successes at debug. A failure is not returned to
// the batch span processor, which would hand it to OpenTelemetry's
// process-wide error handler (standard error) a second time.
type loggingExporter struct {
	sdktrace.SpanExporter
	logger   *zap.Logger
	endpoint string
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.logger.Error("exporting spans failed; they are dropped",
			zap.String("endpoint", e.endpoint), zap.Int("spans", len(spans)), zap.Error(err))
		return nil
	}
	e.logger.Debug("exported spans", zap.String("endpoint", e.endpoint), zap.Int("spans", len(spans)))
	return nil
}

// Check reports what provision would refuse in these settings, for
// adapters to name the line; it fills in nothing. An endpoint with a
// placeholder is checked once the placeholder is replaced, at provision.
func (t Tracing) Check() error {
	if strings.Contains(t.Endpoint, "{") {
		t.Endpoint = ""
	}
	return t.validate()
}
