package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type auditEventJSON struct {
	Seq          int64     `json:"seq"`
	Time         time.Time `json:"time"`
	Category     string    `json:"category"`
	Action       string    `json:"action"`
	Decision     string    `json:"decision"`
	Reason       string    `json:"reason"`
	AgentID      string    `json:"agent_id"`
	User         string    `json:"user"`
	ClientID     string    `json:"client_id"`
	ResourceType string    `json:"resource_type"`
	Resource     string    `json:"resource"`
	SourceIP     string    `json:"source_ip"`
}

var auditEventView = view[auditEventJSON]{
	header: []string{"SEQ", "TIME", "CATEGORY", "ACTION", "DECISION", "AGENT", "USER", "RESOURCE", "SOURCE_IP", "REASON"},
	row: func(e auditEventJSON) []string {
		res := e.Resource
		if e.ResourceType != "" {
			res = e.ResourceType + ":" + e.Resource
		}
		reason := e.Reason
		if len(reason) > 80 {
			reason = reason[:77] + "..."
		}
		return []string{strconv.FormatInt(e.Seq, 10), timeCell(&e.Time), e.Category, e.Action, e.Decision, e.AgentID, e.User, res, e.SourceIP, reason}
	},
}

// auditFilters are the search filters shared by search and tail.
type auditFilters struct {
	agent, user, client, category, action, resourceType, resource, decision, from, to string
	since                                                                             time.Duration
}

func (f *auditFilters) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.agent, "agent", "", "only events of this agent id")
	fs.StringVar(&f.user, "user", "", "only events for this user (or admin actor)")
	fs.StringVar(&f.client, "client", "", "only events of this client id")
	fs.StringVar(&f.category, "category", "", "inbound, outbound, credential, token or admin")
	fs.StringVar(&f.action, "action", "", "only this action, e.g. token.issue")
	fs.StringVar(&f.resourceType, "resource-type", "", "e.g. resource_server, agent, api_key")
	fs.StringVar(&f.resource, "resource", "", "identifier or audience of the resource")
	fs.StringVar(&f.decision, "decision", "", "allow or deny")
	fs.StringVar(&f.from, "from", "", "only events at or after this RFC 3339 time")
	fs.StringVar(&f.to, "to", "", "only events before this RFC 3339 time")
	fs.DurationVar(&f.since, "since", 0, "only events of the last duration, e.g. 1h (instead of --from)")
}

func (f *auditFilters) query() (url.Values, error) {
	q := url.Values{}
	for k, v := range map[string]string{"agent_id": f.agent, "user": f.user, "client_id": f.client, "category": f.category,
		"action": f.action, "resource_type": f.resourceType, "resource": f.resource, "decision": f.decision, "from": f.from, "to": f.to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.since < 0 {
		return nil, fmt.Errorf("--since %s must be positive, e.g. 1h", f.since)
	}
	if f.since > 0 {
		if f.from != "" {
			return nil, fmt.Errorf("use --since or --from, not both")
		}
		q.Set("from", time.Now().Add(-f.since).UTC().Format(time.RFC3339))
	}
	return q, nil
}

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Search, follow and verify the audit log",
		Long: `Every decision agentguard makes is an audit event in a hash chain: token issued or
refused, introspection, revocation, every management change. Search it, follow it as it
grows, and verify that no event was changed, removed or reordered.`,
	}
	cmd.AddCommand(newAuditSearchCmd(g), newAuditTailCmd(g), newAuditVerifyCmd(g))
	return cmd
}

func newAuditSearchCmd(g *globals) *cobra.Command {
	var f auditFilters
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:     "search",
		Short:   "Search audit events, newest first",
		Example: "  agentguard audit search --agent agt_… --since 1h\n  agentguard audit search --category token --decision deny -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.query()
			if err != nil {
				return err
			}
			q.Set("limit", strconv.Itoa(limit))
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("audit", "events"), q, nil)
			if err != nil {
				return err
			}
			return printList(cmd, g, raw, auditEventView)
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 50, "events per page (1-500)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "next page: the cursor the previous page printed")
	return cmd
}

func newAuditTailCmd(g *globals) *cobra.Command {
	var f auditFilters
	var n int
	var follow bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Show the latest audit events, oldest first; -f keeps printing new ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || n > 500 {
				return fmt.Errorf("-n %d must be from 1 to 500", n)
			}
			if interval < 100*time.Millisecond {
				return fmt.Errorf("--interval %s must be at least 100ms", interval)
			}
			q, err := f.query()
			if err != nil {
				return err
			}
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			// fetch returns events newer than after (all of them, up to 10 pages),
			// oldest first, as raw JSON and decoded.
			fetch := func(after int64, max int) ([]json.RawMessage, []auditEventJSON, error) {
				var raws []json.RawMessage
				var evs []auditEventJSON
				cursor := ""
				for range 10 {
					pq := url.Values{}
					for k, v := range q {
						pq[k] = v
					}
					pq.Set("limit", strconv.Itoa(max))
					if cursor != "" {
						pq.Set("cursor", cursor)
					}
					raw, err := c.Do(cmd.Context(), "GET", apiPath("audit", "events"), pq, nil)
					if err != nil {
						return nil, nil, err
					}
					var page list[json.RawMessage]
					if err := json.Unmarshal(raw, &page); err != nil {
						return nil, nil, fmt.Errorf("the server's answer is not what this CLI expects: %w", err)
					}
					done := page.NextCursor == "" || after == 0
					for _, r := range page.Items {
						var e auditEventJSON
						if err := json.Unmarshal(r, &e); err != nil {
							return nil, nil, err
						}
						if e.Seq <= after {
							done = true
							break
						}
						raws, evs = append(raws, r), append(evs, e)
					}
					if done {
						break
					}
					cursor = page.NextCursor
				}
				slices.Reverse(raws)
				slices.Reverse(evs)
				return raws, evs, nil
			}
			show := func(raws []json.RawMessage, evs []auditEventJSON, header bool) error {
				out := cmd.OutOrStdout()
				if g.output == "json" {
					for _, r := range raws { // JSON lines, one event each
						fmt.Fprintf(out, "%s\n", r)
					}
					return nil
				}
				rows := make([][]string, 0, len(evs))
				for _, e := range evs {
					rows = append(rows, auditEventView.row(e))
				}
				if !header {
					for _, r := range rows {
						fmt.Fprintln(out, strings.Join(r, "  "))
					}
					return nil
				}
				return printTable(out, auditEventView.header, rows)
			}
			raws, evs, err := fetch(0, n)
			if err != nil {
				return err
			}
			if err := show(raws, evs, true); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			var last int64
			if len(evs) > 0 {
				last = evs[len(evs)-1].Seq
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-t.C:
				}
				raws, evs, err := fetch(last, 500)
				if err != nil {
					return err
				}
				if len(evs) > 0 {
					last = evs[len(evs)-1].Seq
				}
				if err := show(raws, evs, false); err != nil {
					return err
				}
			}
		},
	}
	f.add(cmd)
	cmd.Flags().IntVarP(&n, "lines", "n", 20, "how many of the latest events to show first (1-500)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep polling for new events until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often -f polls")
	return cmd
}

type auditReportJSON struct {
	OK         bool   `json:"ok"`
	Events     int64  `json:"events"`
	BrokenAt   int64  `json:"broken_at"`
	Reason     string `json:"reason"`
	Checkpoint int64  `json:"checkpoint"`
	Head       int64  `json:"head"`
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit hash chain; exits 1 and names the first broken link if it does not hold",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client(cmd)
			if err != nil {
				return err
			}
			raw, err := c.Do(cmd.Context(), "GET", apiPath("audit", "verify"), nil, nil)
			if err != nil {
				return err
			}
			var r auditReportJSON
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("the server's answer is not what this CLI expects: %w", err)
			}
			if g.output == "json" {
				if err := printJSON(cmd.OutOrStdout(), raw); err != nil {
					return err
				}
			} else if r.OK {
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %d events verified (head seq %d", r.Events, r.Head)
				if r.Checkpoint > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), ", after the retention checkpoint at seq %d", r.Checkpoint)
				}
				fmt.Fprintln(cmd.OutOrStdout(), ")")
			}
			if !r.OK {
				return fmt.Errorf("the audit chain is broken at seq %d: %s (%d events checked before it)", r.BrokenAt, r.Reason, r.Events)
			}
			return nil
		},
	}
}
