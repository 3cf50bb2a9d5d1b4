package taskerhttp

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gotasker/tasker"
)

// DLQActionRetry is the action of PATCH /dlq/entry/{id}: it retries the
// entry's task (tasker.Engine.Retry), which resolves every pending entry of
// the task. It is the only action: the engine resolves entries only through
// operator actions on their task, and the other one, resolving a failed
// step manually, needs a step and a result and resolves the entry only when
// it is the task's last failed step, so it is PATCH
// /tasks/{id}/workflow_steps/{step} with action_type resolve_manually.
const DLQActionRetry = "retry"

// DLQActionRequest is the body of PATCH /dlq/entry/{id}.
type DLQActionRequest struct {
	Action string `json:"action"` // DLQActionRetry
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// DeadLetterPage is the answer of GET /dlq.
type DeadLetterPage struct {
	Entries []tasker.DeadLetter `json:"entries"`
	// NextCursor, when set, is the cursor of the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// DeadLetterList is the answer of GET /dlq/task/{id}: every entry of one
// task, oldest first.
type DeadLetterList struct {
	TaskID  string              `json:"task_id"`
	Entries []tasker.DeadLetter `json:"entries"`
}

// The states of a dead-letter entry, as filters of GET /dlq.
const (
	dlqPending  = "pending"
	dlqResolved = "resolved"
)

// dlqParams are the query parameters of GET /dlq.
var dlqParams = []string{"status", "task_id", "limit", "cursor"}

// dlqQuery is GET /dlq's query: the engine's filter and the page's cursor.
type dlqQuery struct {
	filter tasker.DeadLetterFilter
	cursor string // the ID of the previous page's last entry; "" for the first page
}

// parseDLQQuery reads GET /dlq's filters: status (pending or resolved),
// task_id (a task ID), limit (DefaultPageSize unless given, at most
// MaxPageSize) and cursor.
func parseDLQQuery(q url.Values) (dlqQuery, error) {
	for k := range q {
		if !slices.Contains(dlqParams, k) {
			return dlqQuery{}, badRequest("invalid_query", "unknown query parameter %q (known: %s)",
				k, strings.Join(dlqParams, ", "))
		}
	}
	d := dlqQuery{filter: tasker.DeadLetterFilter{TaskID: q.Get("task_id"), Status: q.Get("status"),
		Limit: DefaultPageSize}, cursor: q.Get("cursor")}
	if s := d.filter.Status; s != "" && s != dlqPending && s != dlqResolved {
		return d, badRequest("invalid_query", "status: want %s or %s, got %q", dlqPending, dlqResolved, s)
	}
	if id := d.filter.TaskID; id != "" && !isUUID(id) {
		return d, badRequest("invalid_query", "task_id: want a task ID (a UUID), got %q", id)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return d, badRequest("invalid_query", "limit: want a whole number from 1 to %d, got %q", MaxPageSize, v)
		}
		d.filter.Limit = n
	}
	return d, nil
}

// listDLQ is GET /dlq: the entries that match, oldest first, a page at a
// time.
func (h *Handler) listDLQ(w http.ResponseWriter, r *http.Request, _ string) error {
	q, err := parseDLQQuery(r.URL.Query())
	if err != nil {
		return err
	}
	entries, err := h.dlqPage(r, q)
	if err != nil {
		return err
	}
	page := DeadLetterPage{Entries: entries}
	if limit := q.filter.Limit; len(entries) > limit {
		page.Entries = entries[:limit]
		page.NextCursor = entries[limit-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// dlqPage returns up to one entry more than q's limit, which tells whether
// there is a next page. The engine's filter has no cursor: after one, the
// entries of the task filter are read whole and the page is cut from those
// after the cursor, filtered by status there, so that a cursor entry
// resolved since still marks its place. Entries are never removed, so a
// cursor not among them is a 400.
func (h *Handler) dlqPage(r *http.Request, q dlqQuery) ([]tasker.DeadLetter, error) {
	f := q.filter
	f.Limit++
	if q.cursor == "" {
		entries, err := h.eng.DeadLetters(r.Context(), f)
		return orEmpty(entries), err
	}
	all, err := h.eng.DeadLetters(r.Context(), tasker.DeadLetterFilter{TaskID: f.TaskID})
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(all, func(d tasker.DeadLetter) bool { return d.ID == q.cursor })
	if i < 0 {
		return nil, badRequest("invalid_query", "cursor: no entry %q matches the filters", q.cursor)
	}
	out := []tasker.DeadLetter{}
	for _, d := range all[i+1:] {
		if len(out) == f.Limit {
			break
		}
		if f.Status == "" || d.Status == f.Status {
			out = append(out, d)
		}
	}
	return out, nil
}

// taskDLQ is GET /dlq/task/{id}: every entry of a task that exists.
func (h *Handler) taskDLQ(w http.ResponseWriter, r *http.Request, _ string) error {
	task, err := h.task(r)
	if err != nil {
		return err
	}
	entries, err := h.eng.DeadLetters(r.Context(), tasker.DeadLetterFilter{TaskID: task.ID})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DeadLetterList{TaskID: task.ID, Entries: orEmpty(entries)})
	return nil
}

// patchDLQ is PATCH /dlq/entry/{id}: the body's action on the entry's task,
// answered with the entry as it then is. A resolved entry is a 409
// (already_resolved), and so is an action the task's state refuses.
func (h *Handler) patchDLQ(w http.ResponseWriter, r *http.Request, _ string) error {
	var req DLQActionRequest
	if err := decodeBody(r, &req, false); err != nil {
		return err
	}
	if req.Action != DLQActionRetry {
		return fieldError("$.action", fmt.Sprintf("want %q, got %q (to resolve a failed step manually, "+
			"PATCH /tasks/{id}/workflow_steps/{step} with action_type resolve_manually)", DLQActionRetry, req.Action))
	}
	d, err := h.deadLetter(r, "", r.PathValue("id"))
	if err != nil {
		return err
	}
	if d.Status != dlqPending {
		return &apiError{status: http.StatusConflict, code: "already_resolved",
			message: fmt.Sprintf("dead-letter entry %s is already resolved (by %q: %q)", d.ID, d.ResolvedBy, d.Resolution)}
	}
	if err := h.eng.Retry(r.Context(), d.TaskID, tasker.Action{By: actor(r, req.By), Reason: req.Reason}); err != nil {
		return err
	}
	if d, err = h.deadLetter(r, d.TaskID, d.ID); err != nil {
		return fmt.Errorf("taskerhttp: read dead-letter entry after action: %w", err)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// deadLetter returns the entry with ID id, looked for among taskID's
// entries, or among all of them when taskID is "". An entry ID is the
// store's: any string, so one that names no entry is a 404, never a 400.
func (h *Handler) deadLetter(r *http.Request, taskID, id string) (tasker.DeadLetter, error) {
	entries, err := h.eng.DeadLetters(r.Context(), tasker.DeadLetterFilter{TaskID: taskID})
	if err != nil {
		return tasker.DeadLetter{}, err
	}
	i := slices.IndexFunc(entries, func(d tasker.DeadLetter) bool { return d.ID == id })
	if i < 0 {
		return tasker.DeadLetter{}, &apiError{status: http.StatusNotFound, code: "dead_letter_not_found",
			message: fmt.Sprintf("no dead-letter entry %q", id)}
	}
	return entries[i], nil
}
