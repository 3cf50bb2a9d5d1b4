package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/taskerhttp"
	"github.com/spf13/cobra"
)

// conn is the task commands' connection flags.
type conn struct {
	url, key, db string
}

func (a *app) taskCmd() *cobra.Command {
	c := &conn{}
	cmd := &cobra.Command{Use: "task", Short: "Create, list, show, cancel, retry and resolve tasks"}
	cmd.PersistentFlags().StringVar(&c.url, "url", "http://localhost:8080", "the server mounting taskerhttp")
	cmd.PersistentFlags().StringVar(&c.key, "api-key", "", "API key (default $TASKER_API_KEY)")
	cmd.AddCommand(a.createCmd(c), a.listCmd(c), a.showCmd(c), a.cancelCmd(c), a.retryCmd(c), a.resolveCmd(c))
	return cmd
}

func (a *app) client(c *conn) (*client, error) {
	key := c.key
	if key == "" {
		key = a.getenv("TASKER_API_KEY")
	}
	return newClient(c.url, key)
}

// call sends one request to the server of c: see client.do.
func (a *app) call(ctx context.Context, c *conn, method, path string, body, out any) error {
	cl, err := a.client(c)
	if err != nil {
		return err
	}
	defer cl.close()
	return cl.do(ctx, method, path, body, out)
}

// source returns the SQLite file of --db, or the server.
func (a *app) source(c *conn) (source, error) {
	if c.db != "" {
		return openDB(c.db)
	}
	return a.client(c)
}

// jsonArg reads a JSON flag value: inline JSON, or @FILE.
func jsonArg(flag, v string) (json.RawMessage, error) {
	b := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		var err error
		if b, err = os.ReadFile(name); err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("--%s: not valid JSON", flag)
	}
	return b, nil
}

func (a *app) createCmd(c *conn) *cobra.Command {
	var req taskerhttp.CreateTaskRequest
	var input string
	cmd := &cobra.Command{
		Use:   "create --name NAME --namespace NS [--version V] --input JSON|@FILE",
		Short: "Submit a task",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input != "" {
				var err error
				if req.Context, err = jsonArg("input", input); err != nil {
					return err
				}
			}
			var task tasker.Task
			if err := a.call(cmd.Context(), c, "POST", "/tasks", req, &task); err != nil {
				return err
			}
			return a.print(&task, func() { fmt.Fprintf(a.out, "created task %s (%s)\n", task.ID, task.State) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "template name (required)")
	f.StringVar(&req.Namespace, "namespace", "", "template namespace (required)")
	f.StringVar(&req.Version, "version", "", "template version (default: the highest loaded)")
	f.StringVar(&input, "input", "", "the task context: JSON, or @FILE")
	f.StringVar(&req.Initiator, "initiator", "cli", "who asks")
	f.StringVar(&req.SourceSystem, "source-system", "tasker-cli", "where from")
	f.StringVar(&req.Reason, "reason", "", "why")
	f.StringArrayVar(&req.Tags, "tag", nil, "a tag (repeat for several)")
	f.StringVar(&req.IdempotencyKey, "idempotency-key", "", "a key an earlier task of the template holds is refused (409)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("namespace")
	return cmd
}

// print writes v as JSON with --json, or calls table.
func (a *app) print(v any, table func()) error {
	if !a.json {
		table()
		return nil
	}
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) listCmd(c *conn) *cobra.Command {
	var f tasker.TaskFilter
	var states []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tasks, oldest first, one page at a time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range states {
				f.States = append(f.States, tasker.TaskState(s))
			}
			src, err := a.source(c)
			if err != nil {
				return err
			}
			defer src.close()
			page, err := src.list(cmd.Context(), f)
			if err != nil {
				return err
			}
			return a.print(page, func() { a.taskTable(page) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Namespace, "namespace", "", "only this namespace")
	fl.StringVar(&f.Name, "name", "", "only this template name")
	fl.StringArrayVar(&states, "state", nil, "only these states (repeat): pending, in_progress, complete, error, cancelled")
	fl.StringVar(&f.Initiator, "initiator", "", "only this initiator")
	fl.StringVar(&f.SourceSystem, "source-system", "", "only this source system")
	fl.StringArrayVar(&f.Tags, "tag", nil, "only tasks with every one of these tags")
	fl.IntVar(&f.Limit, "limit", taskerhttp.DefaultPageSize, fmt.Sprintf("page size, at most %d", taskerhttp.MaxPageSize))
	fl.StringVar(&f.After, "cursor", "", "the next page's cursor, as the previous page printed it")
	fl.StringVar(&c.db, "db", "", "read this SQLite file directly, read-only, instead of a server")
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(
		[]string{"pending", "in_progress", "complete", "error", "cancelled"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) taskTable(page *taskerhttp.TaskPage) {
	w := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTEMPLATE\tSTATE\tINITIATOR\tCREATED")
	for _, t := range page.Tasks {
		fmt.Fprintf(w, "%s\t%s/%s@%s\t%s\t%s\t%s\n", t.ID, t.Namespace, t.Name, t.Version, t.State,
			t.Initiator, t.CreatedAt.Local().Format(time.DateTime))
	}
	w.Flush()
	if page.NextCursor != "" {
		fmt.Fprintf(a.out, "more: --cursor %s\n", page.NextCursor)
	}
}

func (a *app) showCmd(c *conn) *cobra.Command {
	var watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a task and its steps; --watch redraws them as they change, until the task ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := a.source(c)
			if err != nil {
				return err
			}
			defer src.close()
			if watch {
				return a.watch(cmd.Context(), src, args[0], every)
			}
			task, err := src.get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.print(task, func() { a.stepTable(task) })
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw whenever a state changes, until the task ends")
	cmd.Flags().DurationVar(&every, "interval", 250*time.Millisecond, "how often --watch reads the task")
	cmd.Flags().StringVar(&c.db, "db", "", "read this SQLite file directly, read-only, instead of a server")
	return cmd
}

func (a *app) stepTable(t *tasker.Task) {
	fmt.Fprintf(a.out, "task %s  %s/%s@%s  %s\n", t.ID, t.Namespace, t.Name, t.Version, t.State)
	w := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STEP\tSTATE\tATTEMPTS\tLAST ERROR")
	for _, s := range t.Steps {
		last := "-"
		if e := s.LastError; e != nil {
			last = fmt.Sprintf("%s [%s]: %s", e.Type, e.Code, e.Message)
		}
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\n", s.Name, s.State, s.Attempts, s.MaxAttempts, last)
	}
	w.Flush()
}

// watch reads the task every interval and prints it whenever a state
// changed, until it ends or ctx does; on a terminal each print replaces the
// last.
func (a *app) watch(ctx context.Context, src source, id string, every time.Duration) error {
	if every <= 0 {
		return errors.New("--interval must be positive")
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := ""
	for {
		task, err := src.get(ctx, id)
		if err != nil {
			return err
		}
		if key := states(task); key != last {
			if last != "" && !a.json && isTerminal(a.out) {
				fmt.Fprint(a.out, "\033[H\033[2J")
			}
			if err := a.print(task, func() { a.stepTable(task) }); err != nil {
				return err
			}
			last = key
		}
		if task.State.Ended() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// states is the task's and its steps' states and attempts, to see a change.
func states(t *tasker.Task) string {
	var b strings.Builder
	b.WriteString(string(t.State))
	for _, s := range t.Steps {
		fmt.Fprintf(&b, " %s:%s:%d", s.Name, s.State, s.Attempts)
	}
	return b.String()
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// actionCmd is a command that posts an operator action on task ID.
func (a *app) actionCmd(c *conn, use, short, method, suffix string) *cobra.Command {
	var req taskerhttp.ActionRequest
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var task tasker.Task
			if err := a.call(cmd.Context(), c, method, "/tasks/"+args[0]+suffix, req, &task); err != nil {
				return err
			}
			return a.print(&task, func() { fmt.Fprintf(a.out, "task %s: %s\n", task.ID, task.State) })
		},
	}
	cmd.Flags().StringVar(&req.By, "by", "", "who acts, for the audit trail (default: the key's name)")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why, for the audit trail")
	return cmd
}

func (a *app) cancelCmd(c *conn) *cobra.Command {
	return a.actionCmd(c, "cancel ID", "Cancel a pending or running task", "DELETE", "")
}

func (a *app) retryCmd(c *conn) *cobra.Command {
	return a.actionCmd(c, "retry ID", "Run a task that ended in error again", "POST", "/retry")
}

func (a *app) resolveCmd(c *conn) *cobra.Command {
	var req taskerhttp.StepActionRequest
	var result string
	cmd := &cobra.Command{
		Use:   "resolve ID STEP [--result JSON|@FILE]",
		Short: "Mark a failed step resolved_manually, with the result its dependents read",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.ActionType = taskerhttp.ActionResolve
			if result != "" {
				var err error
				if req.Result, err = jsonArg("result", result); err != nil {
					return err
				}
			}
			var s tasker.Step
			if err := a.call(cmd.Context(), c, "PATCH", "/tasks/"+args[0]+"/workflow_steps/"+args[1], req, &s); err != nil {
				return err
			}
			return a.print(&s, func() { fmt.Fprintf(a.out, "step %s of task %s: %s\n", s.Name, args[0], s.State) })
		},
	}
	cmd.Flags().StringVar(&result, "result", "", "the step's result: JSON, or @FILE")
	cmd.Flags().StringVar(&req.By, "by", "", "who acts, for the audit trail")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why, for the audit trail")
	return cmd
}
