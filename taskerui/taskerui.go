// Package taskerui serves a live web page over a tasker engine's REST API
// (package taskerhttp): the tasks, filtered, and for one task its DAG drawn
// as a graph, each step's attempts on a timeline, and each step's result,
// error and audit trail on click.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary: no
// build step, nothing fetched from anywhere but the server it came from, so
// it works offline. It reads everything from the REST API mounted beside
// it (Options.API), as any other client does, so the API's authentication
// applies to it unchanged: when the API answers 401 or 403 the page asks
// for a key and sends it as X-API-Key, keeping it in the tab's
// sessionStorage only.
//
// The graph lays the template's steps out in columns by topological depth
// (GET /templates/{namespace}/{name}/{version} gives each step's type and
// dependencies) and colours each step by its state: pending grey,
// in_progress blue, waiting_for_retry amber, complete green,
// resolved_manually teal, error red, cancelled dark grey, not_created a
// dashed outline (a decision's branch not chosen, or not yet decided). A
// batch worker template is drawn as its instances once its batchable step
// has run. Each step's node is an SVG group with id "step-NAME" and
// attributes data-state and data-type; each edge is a path with data-from
// and data-to.
//
// While a task has not ended the page reads it again every Options.Refresh
// (one second by default), and stops once it ends; the task list is read
// again at the same interval while the browser tab is visible.
//
// The page is read-only unless Options.Operator is set: then it shows
// buttons to cancel a task, retry a task in error and resolve a step in
// error, which call the REST API's own routes (DELETE /tasks/{id}, POST
// /tasks/{id}/retry, PATCH /tasks/{id}/workflow_steps/{step}) and so need a
// write key when the API has keys.
//
// Mount the handler under a path of its own, with the prefix stripped:
//
//	ui, err := taskerui.Handler(taskerui.Options{API: "/api/v1", Operator: false})
//	mux.Handle("/ui/", http.StripPrefix("/ui", ui))
package taskerui

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// DefaultAPI is the path of the REST API when Options.API is empty: where
// taskerhttp serves it in Tasker's guide.
const DefaultAPI = "/api/v1"

// DefaultRefresh is how often the page reads a running task (and the task
// list) again when Options.Refresh is zero.
const DefaultRefresh = time.Second

// minRefresh is the shortest Options.Refresh accepted.
const minRefresh = 100 * time.Millisecond

// Options configures the page.
type Options struct {
	// API is the path the REST API is served under on the same origin, such
	// as "/api/v1"; empty means DefaultAPI. It must start with "/".
	API string
	// Operator shows the operator buttons (cancel, retry, resolve). Without
	// it the page is read-only: it shows no control that changes anything.
	Operator bool
	// Refresh is the polling interval while a task runs; zero means
	// DefaultRefresh, and it may not be shorter than 100 ms.
	Refresh time.Duration
	// Title is the page's title; empty means "tasker".
	Title string
}

//go:embed assets
var assets embed.FS

// contentSecurityPolicy lets the page load and fetch from its own origin
// only: no inline script, nothing from elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// page is the handler: the rendered index and the static assets.
type page struct {
	index  []byte
	static map[string]asset
}

type asset struct {
	contentType string
	body        []byte
}

// Handler returns the page's http.Handler. It serves the page at "/" and
// its two assets (app.js, style.css) beside it, by relative URLs, so it
// works under any mount point that strips its prefix and keeps the
// trailing slash ("/ui/").
func Handler(opts Options) (http.Handler, error) {
	if opts.API == "" {
		opts.API = DefaultAPI
	}
	if !strings.HasPrefix(opts.API, "/") || strings.HasPrefix(opts.API, "//") {
		return nil, fmt.Errorf("taskerui: Options.API must be a path on this server starting with one \"/\", got %q", opts.API)
	}
	opts.API = strings.TrimRight(opts.API, "/")
	if opts.Refresh == 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.Refresh < minRefresh {
		return nil, fmt.Errorf("taskerui: Options.Refresh must be at least %v, got %v", minRefresh, opts.Refresh)
	}
	if opts.Title == "" {
		opts.Title = "tasker"
	}
	index, err := renderIndex(opts)
	if err != nil {
		return nil, err
	}
	p := &page{index: index, static: make(map[string]asset)}
	for name, ctype := range map[string]string{"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			return nil, fmt.Errorf("taskerui: %w", err)
		}
		p.static["/"+name] = asset{contentType: ctype, body: b}
	}
	return p, nil
}

// renderIndex fills the page's template with opts, which the script reads
// from the body's data attributes.
func renderIndex(opts Options) ([]byte, error) {
	t, err := template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("taskerui: %w", err)
	}
	var buf bytes.Buffer
	err = t.Execute(&buf, map[string]any{"API": opts.API, "Operator": opts.Operator,
		"RefreshMS": opts.Refresh.Milliseconds(), "Title": opts.Title})
	if err != nil {
		return nil, errors.Join(errors.New("taskerui: render the page"), err)
	}
	return buf.Bytes(), nil
}

// ServeHTTP serves the page and its assets to GET and HEAD; anything else
// is a 405, an unknown path a 404.
func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := p.static[r.URL.Path]
	switch {
	case r.URL.Path == "/" || r.URL.Path == "" || r.URL.Path == "/index.html":
		a, ok = asset{contentType: "text/html; charset=utf-8", body: p.index}, true
	case !ok:
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", fmt.Sprint(len(a.body)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(a.body)
	}
}
