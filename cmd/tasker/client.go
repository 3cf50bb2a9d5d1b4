package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/sqlite"
	"github.com/gotasker/tasker/taskerhttp"
)

// source is where the task commands read tasks: a server, or a SQLite file.
type source interface {
	list(ctx context.Context, f tasker.TaskFilter) (*taskerhttp.TaskPage, error)
	get(ctx context.Context, id string) (*tasker.Task, error)
	close() error
}

// client is a taskerhttp server's API.
type client struct {
	base, key string // base ends in /api/v1
	http      *http.Client
}

func newClient(rawURL, key string) (*client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q: want http://HOST:PORT", rawURL)
	}
	return &client{base: strings.TrimSuffix(rawURL, "/") + "/api/v1", key: key, http: &http.Client{}}, nil
}

// do sends a request with a JSON body (nil for none) and decodes the answer
// into out (nil to discard it); an error answer is an error naming its code.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("X-API-Key", c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return answerError(resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not what this command expects: %w", method, path, err)
	}
	return nil
}

// answerError is the error of an error answer, with its details.
func answerError(status int, body []byte) error {
	var e taskerhttp.ErrorResponse
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(body))
	}
	msg := fmt.Sprintf("HTTP %d %s: %s", status, e.Error.Code, e.Error.Message)
	if d, ok := e.Error.Details.(map[string]any); ok {
		if vs, ok := d["violations"].([]any); ok {
			for _, v := range vs {
				if m, ok := v.(map[string]any); ok {
					msg += fmt.Sprintf("\n  %v: %v", m["path"], m["message"])
				}
			}
		}
	}
	return errors.New(msg)
}

func (c *client) list(ctx context.Context, f tasker.TaskFilter) (*taskerhttp.TaskPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"namespace": f.Namespace, "name": f.Name, "initiator": f.Initiator,
		"source_system": f.SourceSystem, "cursor": f.After} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for _, s := range f.States {
		q.Add("state", string(s))
	}
	for _, t := range f.Tags {
		q.Add("tag", t)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var page taskerhttp.TaskPage
	return &page, c.do(ctx, "GET", "/tasks?"+q.Encode(), nil, &page)
}

func (c *client) get(ctx context.Context, id string) (*tasker.Task, error) {
	var t tasker.Task
	return &t, c.do(ctx, "GET", "/tasks/"+url.PathEscape(id), nil, &t)
}

func (c *client) close() error { c.http.CloseIdleConnections(); return nil }

// dbSource reads an engine's SQLite file, read-only, through an engine that
// is never started.
type dbSource struct {
	st  *sqlite.Store
	eng *tasker.Engine
}

func openDB(path string) (*dbSource, error) {
	st, err := sqlite.OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	eng, err := tasker.New(st, nil)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return &dbSource{st: st, eng: eng}, nil
}

func (d *dbSource) list(ctx context.Context, f tasker.TaskFilter) (*taskerhttp.TaskPage, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = taskerhttp.DefaultPageSize
	}
	f.Limit = limit + 1
	tasks, err := d.eng.List(ctx, f)
	if err != nil {
		return nil, err
	}
	page := &taskerhttp.TaskPage{Tasks: tasks}
	if len(tasks) > limit {
		page.Tasks, page.NextCursor = tasks[:limit], tasks[limit-1].ID
	}
	return page, nil
}

func (d *dbSource) get(ctx context.Context, id string) (*tasker.Task, error) {
	return d.eng.Get(ctx, id)
}

func (d *dbSource) close() error {
	return errors.Join(d.eng.Stop(context.Background()), d.st.Close())
}
