package taskerhttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gotasker/tasker"
)

// List page sizes: GET /tasks returns DefaultPageSize tasks unless limit
// says otherwise, and at most MaxPageSize.
const (
	DefaultPageSize = 25
	MaxPageSize     = 100
)

// CreateTaskRequest is the body of POST /tasks: the guide's, field for
// field.
type CreateTaskRequest struct {
	Name           string          `json:"name"`
	Namespace      string          `json:"namespace"`
	Version        string          `json:"version"` // "" for the highest loaded
	Initiator      string          `json:"initiator"`
	SourceSystem   string          `json:"source_system"`
	Reason         string          `json:"reason"`
	Context        json.RawMessage `json:"context"`
	Tags           []string        `json:"tags"`
	IdempotencyKey string          `json:"idempotency_key"`
	// Priority is accepted for compatibility with Tasker's requests and
	// stored nowhere: this engine runs ready steps in the order they become
	// ready.
	Priority *int `json:"priority"`
}

// ActionRequest is the optional body of DELETE /tasks/{id} and POST
// /tasks/{id}/retry: who acts and why, for the audit trail.
type ActionRequest struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

func (h *Handler) createTask(w http.ResponseWriter, r *http.Request, prefix string) error {
	var req CreateTaskRequest
	if err := decodeBody(r, &req, false); err != nil {
		return err
	}
	var missing []tasker.Violation
	for _, f := range []struct{ path, value string }{{"$.name", req.Name}, {"$.namespace", req.Namespace}} {
		if f.value == "" {
			missing = append(missing, tasker.Violation{Path: f.path, Message: "required"})
		}
	}
	if len(missing) > 0 {
		return &apiError{status: http.StatusBadRequest, code: "invalid_request",
			message: "missing required fields", details: map[string]any{"violations": missing}}
	}
	sub := tasker.SubmitRequest{Namespace: req.Namespace, Name: req.Name, Version: req.Version,
		Initiator: req.Initiator, SourceSystem: req.SourceSystem, Reason: req.Reason,
		Tags: req.Tags, IdempotencyKey: req.IdempotencyKey}
	if len(req.Context) > 0 && string(req.Context) != "null" {
		sub.Context = req.Context
	}
	id, err := h.eng.SubmitUnique(r.Context(), sub)
	if errors.Is(err, tasker.ErrTemplateNotFound) {
		return h.templateNotFound(err, req.Namespace)
	}
	if err != nil {
		return err
	}
	task, err := h.eng.Get(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Location", prefix+"/tasks/"+id)
	writeJSON(w, http.StatusCreated, task)
	return nil
}

// templateNotFound is the 404 of a submission naming no loaded template; it
// lists what is loaded under the namespace.
func (h *Handler) templateNotFound(err error, namespace string) error {
	var loaded []string
	for _, t := range h.eng.Templates() {
		if t.Namespace == namespace {
			loaded = append(loaded, t.Name+"@"+t.Version)
		}
	}
	msg := err.Error() + "; loaded under namespace " + namespace + ": " + strings.Join(loaded, ", ")
	if len(loaded) == 0 {
		msg = err.Error() + "; no template is loaded under namespace " + namespace
		loaded = []string{}
	}
	return &apiError{status: http.StatusNotFound, code: "template_not_found", message: msg,
		details: map[string]any{"namespace": namespace, "loaded": loaded}}
}

// TaskPage is the answer of GET /tasks.
type TaskPage struct {
	Tasks []*tasker.Task `json:"tasks"`
	// NextCursor, when set, is the cursor of the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

func (h *Handler) listTasks(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := parseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	tasks, err := h.eng.List(r.Context(), f)
	if err != nil {
		return err
	}
	page := TaskPage{Tasks: tasks}
	if len(tasks) > limit {
		page.Tasks = tasks[:limit]
		page.NextCursor = tasks[limit-1].ID
	}
	if page.Tasks == nil {
		page.Tasks = []*tasker.Task{}
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// listParams are the query parameters of GET /tasks.
var listParams = []string{"namespace", "name", "state", "initiator", "source_system", "tag", "limit", "cursor"}

var taskStates = []tasker.TaskState{tasker.TaskPending, tasker.TaskInProgress, tasker.TaskComplete,
	tasker.TaskFailed, tasker.TaskCancelled}

// parseListQuery reads GET /tasks's filters. state and tag may repeat, and
// state may list several states separated by commas.
func parseListQuery(q url.Values) (tasker.TaskFilter, error) {
	for k := range q {
		if !slices.Contains(listParams, k) {
			return tasker.TaskFilter{}, badRequest("invalid_query", "unknown query parameter %q (known: %s)",
				k, strings.Join(listParams, ", "))
		}
	}
	f := tasker.TaskFilter{Namespace: q.Get("namespace"), Name: q.Get("name"), Initiator: q.Get("initiator"),
		SourceSystem: q.Get("source_system"), Tags: q["tag"], After: q.Get("cursor"), Limit: DefaultPageSize}
	for _, v := range q["state"] {
		for s := range strings.SplitSeq(v, ",") {
			if !slices.Contains(taskStates, tasker.TaskState(s)) {
				return f, badRequest("invalid_query", "state: unknown task state %q (known: %v)", s, taskStates)
			}
			f.States = append(f.States, tasker.TaskState(s))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return f, badRequest("invalid_query", "limit: want a whole number from 1 to %d, got %q", MaxPageSize, v)
		}
		f.Limit = n
	}
	return f, nil
}

// taskID returns the {id} of r's path, a 400 unless it has a task ID's
// form (a UUID, as the engine makes them).
func taskID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !isUUID(id) {
		return "", badRequest("invalid_id", "task id %q: want a UUID such as 0190f5e2-6a1b-7c3d-8e4f-5a6b7c8d9e0f", id)
	}
	return id, nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", c):
			return false
		}
	}
	return true
}

// task reads the task of r's path.
func (h *Handler) task(r *http.Request) (*tasker.Task, error) {
	id, err := taskID(r)
	if err != nil {
		return nil, err
	}
	return h.eng.Get(r.Context(), id)
}

func (h *Handler) getTask(w http.ResponseWriter, r *http.Request, _ string) error {
	task, err := h.task(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, task)
	return nil
}

// act runs an operator action on the task of r's path with the body's
// actor, and answers with the task as it then is.
func (h *Handler) act(w http.ResponseWriter, r *http.Request, status int,
	do func(id string, a tasker.Action) error) error {
	id, err := taskID(r)
	if err != nil {
		return err
	}
	var req ActionRequest
	if err := decodeBody(r, &req, true); err != nil {
		return err
	}
	if err := do(id, tasker.Action{By: actor(r, req.By), Reason: req.Reason}); err != nil {
		return err
	}
	task, err := h.eng.Get(r.Context(), id)
	if err != nil {
		return fmt.Errorf("taskerhttp: read task after action: %w", err)
	}
	writeJSON(w, status, task)
	return nil
}

// cancelTask is DELETE /tasks/{id}: 202, as the task ends once its running
// handlers return.
func (h *Handler) cancelTask(w http.ResponseWriter, r *http.Request, _ string) error {
	return h.act(w, r, http.StatusAccepted, func(id string, a tasker.Action) error {
		return h.eng.Cancel(r.Context(), id, a)
	})
}

func (h *Handler) retryTask(w http.ResponseWriter, r *http.Request, _ string) error {
	return h.act(w, r, http.StatusOK, func(id string, a tasker.Action) error {
		return h.eng.Retry(r.Context(), id, a)
	})
}
