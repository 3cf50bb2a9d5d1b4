// Package taskerhttp serves a tasker.Engine over HTTP: Tasker's REST API
// (tasks, workflow steps and their audit trail, the dead-letter list,
// templates, handlers, health), as an http.Handler that an application
// mounts on its own server.
//
// Every route is served under /api/v1 (the prefix of Tasker's guide) and
// under /v1 (where Tasker's own server puts it); /api/v1/openapi.json is an
// OpenAPI 3.1 description of all of them. Bodies are JSON, decoded strictly
// (an unknown field is a 400 naming it) and limited in size (413 beyond);
// every error has one shape:
//
//	{"error": {"code": "task_not_found", "message": "…", "details": {…}}}
//
// Authentication is off unless Options.Keys lists keys: a request then
// presents one as "X-API-Key: KEY" or "Authorization: Bearer KEY"; a read
// key may GET, a write key may do everything. Health routes and the OpenAPI
// document need no key.
package taskerhttp

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gotasker/tasker"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes
// is zero: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Prefixes are the path prefixes every route is served under.
var Prefixes = [...]string{"/api/v1", "/v1"}

// Scope is what a key may do.
type Scope string

// The scopes of a Key.
const (
	ScopeRead  Scope = "read"  // GET routes
	ScopeWrite Scope = "write" // every route
)

// Key is an API key or bearer token that the handler accepts.
type Key struct {
	// Name identifies the key in the audit trail: an operator action that
	// names no "by" is recorded as by "key:NAME".
	Name   string
	Secret string // the key itself, compared in constant time
	Scope  Scope
}

// Options configures a Handler. A nil *Options means the defaults.
type Options struct {
	// MaxBodyBytes limits request bodies; a larger one is refused with 413.
	// Zero means DefaultMaxBodyBytes; negative is an error.
	MaxBodyBytes int64
	// Keys turns authentication on when not empty (see the package comment).
	Keys []Key
}

// Handler is the REST API of one engine. Create it with New.
type Handler struct {
	eng     *tasker.Engine
	maxBody int64
	keys    []Key
	mux     *http.ServeMux
	openapi []byte // the document, as JSON
}

// New returns the API of eng. eng may be started before or after; until it
// is, /health/ready answers 503.
func New(eng *tasker.Engine, opts *Options) (*Handler, error) {
	if eng == nil {
		return nil, errors.New("taskerhttp: New needs an engine")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("taskerhttp: Options.MaxBodyBytes must not be negative, got %d", o.MaxBodyBytes)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	for i, k := range o.Keys {
		if k.Secret == "" || (k.Scope != ScopeRead && k.Scope != ScopeWrite) {
			return nil, fmt.Errorf("taskerhttp: Options.Keys[%d] (%q): want a Secret and Scope read or write", i, k.Name)
		}
	}
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	h := &Handler{eng: eng, maxBody: o.MaxBodyBytes, keys: slices.Clone(o.Keys), mux: http.NewServeMux(), openapi: doc}
	for _, prefix := range Prefixes {
		for _, rt := range h.routes() {
			h.mux.Handle(prefix+rt.path, h.dispatch(prefix, rt))
		}
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, code: "route_not_found",
			message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
	})
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// endpoint is one method of a route: what it needs and what it does. A
// handler returns an error to answer with it instead of writing.
type endpoint struct {
	scope Scope // "" for a public route
	serve func(w http.ResponseWriter, r *http.Request, prefix string) error
}

// route is a path and its methods.
type route struct {
	path    string
	methods map[string]endpoint
}

func (h *Handler) routes() []route {
	read := func(f func(http.ResponseWriter, *http.Request, string) error) endpoint {
		return endpoint{scope: ScopeRead, serve: f}
	}
	write := func(f func(http.ResponseWriter, *http.Request, string) error) endpoint {
		return endpoint{scope: ScopeWrite, serve: f}
	}
	public := func(f func(http.ResponseWriter, *http.Request, string) error) endpoint { return endpoint{serve: f} }
	return []route{
		{"/tasks", map[string]endpoint{"GET": read(h.listTasks), "POST": write(h.createTask)}},
		{"/tasks/{id}", map[string]endpoint{"GET": read(h.getTask), "DELETE": write(h.cancelTask)}},
		{"/tasks/{id}/retry", map[string]endpoint{"POST": write(h.retryTask)}},
		{"/tasks/{id}/workflow_steps", map[string]endpoint{"GET": read(h.listSteps)}},
		{"/tasks/{id}/workflow_steps/{step}", map[string]endpoint{"GET": read(h.getStep), "PATCH": write(h.patchStep)}},
		{"/tasks/{id}/workflow_steps/{step}/audit", map[string]endpoint{"GET": read(h.stepAudit)}},
		{"/dlq", map[string]endpoint{"GET": read(h.listDLQ)}},
		{"/dlq/task/{id}", map[string]endpoint{"GET": read(h.taskDLQ)}},
		{"/dlq/entry/{id}", map[string]endpoint{"PATCH": write(h.patchDLQ)}},
		{"/templates", map[string]endpoint{"GET": read(h.listTemplates)}},
		{"/templates/validate", map[string]endpoint{"POST": read(h.validateTemplate)}},
		{"/templates/{namespace}/{name}/{version}", map[string]endpoint{"GET": read(h.getTemplate)}},
		{"/handlers", map[string]endpoint{"GET": read(h.listHandlers)}},
		{"/health", map[string]endpoint{"GET": public(h.health)}},
		{"/health/live", map[string]endpoint{"GET": public(h.live)}},
		{"/health/ready", map[string]endpoint{"GET": public(h.ready)}},
		{"/openapi.json", map[string]endpoint{"GET": public(h.serveOpenAPI)}},
	}
}

// dispatch serves rt: a method it lacks is a 405 naming those it has; then
// the key is checked and the endpoint runs.
func (h *Handler) dispatch(prefix string, rt route) http.Handler {
	allowed := make([]string, 0, len(rt.methods))
	for m := range rt.methods {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep, ok := rt.methods[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
				message: fmt.Sprintf("%s %s: allowed: %s", r.Method, r.URL.Path, allow)})
			return
		}
		r, err := h.authenticate(r, ep.scope)
		if err == nil {
			r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
			err = ep.serve(w, r, prefix)
		}
		if err != nil {
			writeError(w, asAPIError(err))
		}
	})
}
