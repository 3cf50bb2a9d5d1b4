package taskerhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gotasker/tasker"
)

// apiError is an error answer: {"error": {"code", "message", "details"}}.
type apiError struct {
	status  int
	code    string
	message string
	details any               // nil for none
	header  map[string]string // extra response headers
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: Code is stable, for programs (such as
// "task_not_found", "invalid_input", "duplicate_task"); Message is for
// people; Details, when present, is an object whose form depends on Code
// (violations with their JSON paths, the existing task's id, the templates
// loaded under a namespace).
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// fieldError is a 400 naming a body field by its JSON path.
func fieldError(path, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", message: path + ": " + msg,
		details: map[string]any{"violations": []tasker.Violation{{Path: path, Message: msg}}}}
}

// asAPIError maps an engine error to its answer.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var in *tasker.InputError
	var dup *tasker.DuplicateTaskError
	switch {
	case errors.As(err, &in):
		return &apiError{status: http.StatusBadRequest, code: "invalid_input", message: err.Error(), details: in}
	case errors.As(err, &dup):
		return &apiError{status: http.StatusConflict, code: "duplicate_task", message: err.Error(),
			details: map[string]string{"task_id": dup.ID}}
	}
	for _, m := range []struct {
		target error
		status int
		code   string
	}{
		{tasker.ErrTemplateNotFound, http.StatusNotFound, "template_not_found"},
		{tasker.ErrTaskNotFound, http.StatusNotFound, "task_not_found"},
		{tasker.ErrStepNotFound, http.StatusNotFound, "step_not_found"},
		{tasker.ErrTemplateMismatch, http.StatusConflict, "template_mismatch"},
		{tasker.ErrIllegalTransition, http.StatusConflict, "illegal_transition"},
		{tasker.ErrEngineStopped, http.StatusServiceUnavailable, "engine_stopped"},
		{tasker.ErrNotStarted, http.StatusServiceUnavailable, "engine_not_started"},
	} {
		if errors.Is(err, m.target) {
			return &apiError{status: m.status, code: m.code, message: err.Error()}
		}
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal", message: "internal error"}
}

func writeError(w http.ResponseWriter, e *apiError) {
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	writeJSON(w, e.status, ErrorResponse{Error: ErrorDetail{Code: e.code, Message: e.message, Details: e.details}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // our own types: a bug, answered as one
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readBody reads r's whole body within the handler's limit: 413 beyond it.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
			message: fmt.Sprintf("the request body exceeds %d bytes", tooBig.Limit)}
	}
	if err != nil {
		return nil, badRequest("unreadable_body", "reading the request body: %v", err)
	}
	return b, nil
}

// decodeBody decodes r's JSON body into v strictly: one JSON object, no
// unknown field. An empty body leaves v as it is when optional.
func decodeBody(r *http.Request, v any, optional bool) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return badRequest("invalid_json", "the request needs a JSON object body")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_json", "the body holds more than one JSON value")
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("invalid_json", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ) && typ.Field != "":
		return fieldError("$."+typ.Field, "want "+jsonType(typ.Type.Kind().String())+", got "+typ.Value)
	case errors.As(err, &typ):
		return badRequest("invalid_json", "the body must be a JSON object, got %s", typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldError("$."+field, "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid_json", "malformed JSON: unexpected end of the body")
	}
	return badRequest("invalid_json", "malformed JSON: %v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return "a number"
}
