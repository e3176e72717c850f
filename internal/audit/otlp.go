package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
)

// EventName is the OpenTelemetry event name of every exported audit record.
const EventName = "agentguard.audit"

// OTLP exports events as OpenTelemetry log records over OTLP/HTTP (protobuf). Each
// record's body is the event's JSON; its attributes are the event's fields, named
// audit.<field> (audit.category, audit.agent_id, audit.hash …), so a collector can
// route and index them without parsing the body.
type OTLP struct {
	provider *sdklog.LoggerProvider
	logger   otellog.Logger
}

// NewOTLP sends to endpoint (e.g. http://collector:4318; the path /v1/logs is
// added) or, when it is empty, to what the OTEL_EXPORTER_OTLP_LOGS_ENDPOINT /
// OTEL_EXPORTER_OTLP_ENDPOINT environment variables name (default localhost:4318).
func NewOTLP(ctx context.Context, endpoint string) (*OTLP, error) {
	var opts []otlploghttp.Option
	if endpoint != "" {
		opts = append(opts, otlploghttp.WithEndpointURL(endpoint+"/v1/logs"))
	}
	exp, err := otlploghttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("--audit-export otlp: %w", err)
	}
	p := sdklog.NewLoggerProvider(
		sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, sdklog.WithExportInterval(time.Second))),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "agentguard"))),
	)
	return &OTLP{provider: p, logger: p.Logger("github.com/agentguard/agentguard/internal/audit")}, nil
}

// Export hands the events to the batch processor, which sends them in the
// background.
func (o *OTLP) Export(ctx context.Context, events []Event) error {
	for _, e := range events {
		body, err := json.Marshal(e)
		if err != nil {
			return err
		}
		var r otellog.Record
		r.SetEventName(EventName)
		r.SetTimestamp(e.Time)
		r.SetObservedTimestamp(time.Now())
		if e.Decision == Deny {
			r.SetSeverity(otellog.SeverityWarn)
			r.SetSeverityText("WARN")
		} else {
			r.SetSeverity(otellog.SeverityInfo)
			r.SetSeverityText("INFO")
		}
		r.SetBody(attribute.StringValue(string(body)))
		r.AddAttributes(
			attribute.String("audit.id", e.ID), attribute.Int64("audit.seq", e.Seq),
			attribute.String("audit.category", e.Category), attribute.String("audit.action", e.Action),
			attribute.String("audit.decision", e.Decision), attribute.String("audit.reason", e.Reason),
			attribute.String("audit.agent_id", e.AgentID), attribute.String("audit.user", e.User),
			attribute.String("audit.client_id", e.ClientID), attribute.String("audit.resource_type", e.ResourceType),
			attribute.String("audit.resource", e.Resource), attribute.String("audit.source_ip", e.SourceIP),
			attribute.String("audit.request_id", e.RequestID), attribute.String("audit.trace_id", e.TraceID),
			attribute.String("audit.prev_hash", e.PrevHash), attribute.String("audit.hash", e.Hash),
		)
		o.logger.Emit(ctx, r)
	}
	return nil
}

// Close sends what is buffered and stops.
func (o *OTLP) Close(ctx context.Context) error {
	if err := o.provider.ForceFlush(ctx); err != nil {
		o.provider.Shutdown(ctx)
		return err
	}
	return o.provider.Shutdown(ctx)
}
