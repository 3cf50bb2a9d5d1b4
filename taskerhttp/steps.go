package taskerhttp

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gotasker/tasker"
)

// Step actions of PATCH /tasks/{id}/workflow_steps/{step}.
const (
	// ActionResolve marks a failed step resolved_manually with the body's
	// result, which its dependents read (tasker.Engine.Resolve).
	ActionResolve = "resolve_manually"
	// ActionReset runs a failed step again. The engine retries whole tasks:
	// every failed step of the task is reset and runs again
	// (tasker.Engine.Retry).
	ActionReset = "reset_for_retry"
)

// StepActionRequest is the body of PATCH /tasks/{id}/workflow_steps/{step}.
type StepActionRequest struct {
	ActionType string          `json:"action_type"`
	Result     json.RawMessage `json:"result"` // resolve_manually only; absent or null for none
	By         string          `json:"by"`
	Reason     string          `json:"reason"`
}

// StepList is the answer of GET /tasks/{id}/workflow_steps.
type StepList struct {
	TaskID string        `json:"task_id"`
	Steps  []tasker.Step `json:"steps"`
}

// StepAudit is the answer of GET /tasks/{id}/workflow_steps/{step}/audit.
type StepAudit struct {
	TaskID      string              `json:"task_id"`
	Step        string              `json:"step"`
	Attempts    []tasker.Attempt    `json:"attempts"`
	Transitions []tasker.Transition `json:"transitions"` // every move, operator actions included
}

// taskStep reads the task and step of r's path.
func (h *Handler) taskStep(r *http.Request) (*tasker.Task, *tasker.Step, error) {
	task, err := h.task(r)
	if err != nil {
		return nil, nil, err
	}
	name := r.PathValue("step")
	s := task.Step(name)
	if s == nil {
		return nil, nil, fmt.Errorf("%w: task %s has no step %q", tasker.ErrStepNotFound, task.ID, name)
	}
	return task, s, nil
}

func (h *Handler) listSteps(w http.ResponseWriter, r *http.Request, _ string) error {
	task, err := h.task(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, StepList{TaskID: task.ID, Steps: orEmpty(task.Steps)})
	return nil
}

func (h *Handler) getStep(w http.ResponseWriter, r *http.Request, _ string) error {
	_, s, err := h.taskStep(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

func (h *Handler) stepAudit(w http.ResponseWriter, r *http.Request, _ string) error {
	task, s, err := h.taskStep(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, StepAudit{TaskID: task.ID, Step: s.Name,
		Attempts: orEmpty(s.History()), Transitions: orEmpty(s.Transitions)})
	return nil
}

func (h *Handler) patchStep(w http.ResponseWriter, r *http.Request, _ string) error {
	var req StepActionRequest
	if err := decodeBody(r, &req, false); err != nil {
		return err
	}
	if req.ActionType != ActionResolve && req.ActionType != ActionReset {
		return fieldError("$.action_type", fmt.Sprintf("want %q or %q, got %q", ActionResolve, ActionReset, req.ActionType))
	}
	if req.ActionType == ActionReset && len(req.Result) > 0 {
		return fieldError("$.result", "only resolve_manually takes a result")
	}
	task, s, err := h.taskStep(r)
	if err != nil {
		return err
	}
	a := tasker.Action{By: actor(r, req.By), Reason: req.Reason}
	if req.ActionType == ActionResolve {
		var result any
		if len(req.Result) > 0 && string(req.Result) != "null" {
			result = req.Result
		}
		err = h.eng.Resolve(r.Context(), task.ID, s.Name, result, a)
	} else if s.State != tasker.StepFailed {
		err = fmt.Errorf("%w: step %s is %s; only a step in error can be reset", tasker.ErrIllegalTransition, s.Name, s.State)
	} else {
		err = h.eng.Retry(r.Context(), task.ID, a)
	}
	if err != nil {
		return err
	}
	if _, s, err = h.taskStep(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

// orEmpty returns xs, or an empty slice for nil, so that lists encode as [].
func orEmpty[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
