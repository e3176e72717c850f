package user

import (
	"context"

	"github.com/agentguard/agentguard/internal/audit"
)

// adminEvent records an allowed admin change with a reason (audit.Admin has none):
// membership changes name the users they added or removed.
func adminEvent(ctx context.Context, rec audit.Recorder, action, resourceType, resource, reason string) error {
	e := audit.Event{
		Category: audit.CategoryAdmin, Action: action, Decision: audit.Allow, Reason: reason,
		User: audit.RequestFrom(ctx).Actor, ResourceType: resourceType, Resource: resource,
	}
	audit.Fill(ctx, &e)
	return rec.Record(ctx, e)
}
