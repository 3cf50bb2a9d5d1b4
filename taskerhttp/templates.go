package taskerhttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"

	"github.com/gotasker/tasker"
)

// TemplateInfo is a template as GET /templates lists it.
type TemplateInfo struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	StepCount   int    `json:"step_count"`
}

// TemplateDetail is a template as GET /templates/{namespace}/{name}/{version}
// shows it.
type TemplateDetail struct {
	TemplateInfo
	IdentityStrategy tasker.IdentityStrategy `json:"identity_strategy"`
	InputSchema      json.RawMessage         `json:"input_schema,omitempty"`
	Steps            []StepInfo              `json:"steps"`
}

// StepInfo is a template step.
type StepInfo struct {
	Name           string          `json:"name"`
	Description    string          `json:"description,omitempty"`
	Callable       string          `json:"handler_callable"`
	Type           tasker.StepType `json:"type"`
	Dependencies   []string        `json:"dependencies"`
	Retry          RetryInfo       `json:"retry"`
	TimeoutSeconds float64         `json:"timeout_seconds,omitempty"`
}

// RetryInfo is a step's retry block, in the template's terms.
type RetryInfo struct {
	Retryable     bool           `json:"retryable"`
	MaxAttempts   int            `json:"max_attempts"`
	Backoff       tasker.Backoff `json:"backoff"`
	BackoffBaseMS int64          `json:"backoff_base_ms"`
	MaxBackoffMS  int64          `json:"max_backoff_ms"`
}

// TemplateList is the answer of GET /templates.
type TemplateList struct {
	Templates []TemplateInfo `json:"templates"`
}

// HandlerList is the answer of GET /handlers.
type HandlerList struct {
	Handlers []string `json:"handlers"`
}

// ValidationResult is the answer of POST /templates/validate.
type ValidationResult struct {
	Valid    bool      `json:"valid"`
	Template string    `json:"template,omitempty"` // namespace/name@version, when valid
	Errors   []Problem `json:"errors"`
	Warnings []Problem `json:"warnings"`
}

// Problem is a template error or warning, located by file, line and field.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"` // 1-based; 0 when unknown
	Field   string `json:"field"`
	Message string `json:"message"`
}

func infoOf(t *tasker.Template) TemplateInfo {
	return TemplateInfo{Namespace: t.Namespace, Name: t.Name, Version: t.Version,
		Description: t.Description, StepCount: len(t.Steps)}
}

// DetailOf returns the JSON form of t.
func DetailOf(t *tasker.Template) TemplateDetail {
	d := TemplateDetail{TemplateInfo: infoOf(t), IdentityStrategy: t.IdentityStrategy,
		InputSchema: t.InputSchema, Steps: make([]StepInfo, len(t.Steps))}
	for i, s := range t.Steps {
		d.Steps[i] = StepInfo{Name: s.Name, Description: s.Description, Callable: s.Callable, Type: s.Type,
			Dependencies: orEmpty(s.Dependencies), TimeoutSeconds: s.Timeout.Seconds(),
			Retry: RetryInfo{Retryable: s.Retry.Retryable, MaxAttempts: s.Retry.Attempts(), Backoff: s.Retry.Backoff,
				BackoffBaseMS: s.Retry.BaseDelay.Milliseconds(), MaxBackoffMS: s.Retry.MaxDelay.Milliseconds()}}
	}
	return d
}

func (h *Handler) listTemplates(w http.ResponseWriter, _ *http.Request, _ string) error {
	list := TemplateList{Templates: []TemplateInfo{}}
	for _, t := range h.eng.Templates() {
		list.Templates = append(list.Templates, infoOf(t))
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// getTemplate serves one template; version "latest" is the highest loaded.
func (h *Handler) getTemplate(w http.ResponseWriter, r *http.Request, _ string) error {
	ns, name, version := r.PathValue("namespace"), r.PathValue("name"), r.PathValue("version")
	for _, t := range h.eng.Templates() { // highest version first
		if t.Namespace == ns && t.Name == name && (t.Version == version || version == "latest") {
			writeJSON(w, http.StatusOK, DetailOf(t))
			return nil
		}
	}
	return h.templateNotFound(fmt.Errorf("%w: %s/%s@%s", tasker.ErrTemplateNotFound, ns, name, version), ns)
}

// validateTemplate parses the YAML body as the loader does; ?file=NAME
// names it in the problems (default "template.yaml").
func (h *Handler) validateTemplate(w http.ResponseWriter, r *http.Request, _ string) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	file := path.Base(r.URL.Query().Get("file"))
	if file == "." || file == "/" {
		file = "template.yaml"
	}
	writeJSON(w, http.StatusOK, Validate(file, b))
	return nil
}

// Validate parses data as the template file named file, as the engine's
// loader does, and reports every error and warning.
func Validate(file string, data []byte) ValidationResult {
	res := ValidationResult{Errors: []Problem{}, Warnings: []Problem{}}
	t, err := tasker.ParseTemplate(file, data)
	res.Errors = append(res.Errors, Problems(err)...)
	if t != nil {
		res.Valid, res.Template = true, t.String()
		for _, w := range t.Warnings {
			res.Warnings = append(res.Warnings, Problem{File: w.File, Line: w.Line, Field: w.Field, Message: w.Msg})
		}
	}
	return res
}

// Problems lists the *tasker.TemplateErrors in err (joined or not); any
// other error becomes one Problem without a location.
func Problems(err error) []Problem {
	if err == nil {
		return nil
	}
	var te *tasker.TemplateError
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []Problem
		for _, e := range joined.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	if errors.As(err, &te) {
		return []Problem{{File: te.File, Line: te.Line, Field: te.Field, Message: te.Msg}}
	}
	return []Problem{{Message: err.Error()}}
}

func (h *Handler) listHandlers(w http.ResponseWriter, _ *http.Request, _ string) error {
	writeJSON(w, http.StatusOK, HandlerList{Handlers: orEmpty(h.eng.Handlers())})
	return nil
}
