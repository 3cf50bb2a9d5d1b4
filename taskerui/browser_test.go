package taskerui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/taskerhttp"
	"github.com/gotasker/tasker/taskerui"
)

// The browser tests drive Debian's chromium (installed by .ci/run) from Go.
// Without it they fail in CI (CI=true) and skip elsewhere.
// TASKERUI_SCREENSHOTS=DIR copies the screenshots they take (always under
// the test's temp dir) to DIR, to look at after the run.

// pollTimeout bounds every wait for the page.
const pollTimeout = 15 * time.Second

// tab is a page of a headless browser for one test.
type tab struct {
	ctx context.Context

	mu         sync.Mutex
	exceptions []string // uncaught JavaScript exceptions
}

// newTab starts chromium with the flags this machine needs (no network:
// nothing may try to reach one) and a new profile, and opens a tab. The
// browser is closed, and its goroutines waited for, when the test ends.
func newTab(t *testing.T) *tab {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (.ci/run installs it): %v", err)
		}
		t.Skipf("chromium is not installed (apt-get install chromium): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	tb := &tab{}
	var cancelTab context.CancelFunc
	tb.ctx, cancelTab = chromedp.NewContext(alloc, chromedp.WithListener(tb.listen))
	t.Cleanup(func() {
		if err := chromedp.Cancel(tb.ctx); err != nil {
			t.Errorf("close the browser: %v", err)
		}
		cancelTab()
		cancelAlloc() // waits for the browser process and its readers
		cancel()
		if len(tb.exceptions) > 0 {
			t.Errorf("the page threw: %s", strings.Join(tb.exceptions, "; "))
		}
	})
	return tb
}

// listen records the page's uncaught exceptions; it runs on chromedp's
// reading goroutine, so it only appends.
func (tb *tab) listen(ev any) {
	if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		tb.mu.Lock()
		tb.exceptions = append(tb.exceptions, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
		tb.mu.Unlock()
	}
}

// do runs actions in the tab; what names them in the failure.
func (tb *tab) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor waits until the JavaScript expression js is true.
func (tb *tab) waitFor(t *testing.T, what, js string) {
	t.Helper()
	_, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		t.Fatalf("waiting %v for %s (%s): %v", pollTimeout, what, js, err)
	}
}

// eval returns the value of the JavaScript expression js.
func eval[T any](t *testing.T, tb *tab, js string) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// screenshot saves the whole page as dir/name, and copies it to
// $TASKERUI_SCREENSHOTS when set.
func (tb *tab) screenshot(t *testing.T, dir, name string) string {
	t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, not a PNG", len(png))
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if keep := os.Getenv("TASKERUI_SCREENSHOTS"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %s", file)
	return file
}

// nodeState is the JavaScript for the data-state of step's node.
func nodeState(step string) string {
	return fmt.Sprintf(`document.getElementById(%q)?.dataset.state`, "step-"+step)
}

// fill is the JavaScript for the computed fill of step's node.
func fill(step string) string {
	return fmt.Sprintf(`getComputedStyle(document.querySelector(%q)).fill`, "#step-"+step+" rect")
}

// The state colours of style.css, as getComputedStyle reports them.
const (
	blue  = "rgb(26, 115, 232)"
	green = "rgb(30, 142, 62)"
	white = "rgb(255, 255, 255)"
)

func TestBrowserDrawsTheRunningTaskAndFollowsIt(t *testing.T) {
	w := newWorld(t, nil, taskerui.Options{})
	task := w.submit(t)
	tb := newTab(t)
	shots := t.TempDir()
	tb.do(t, "open the task's page", chromedp.Navigate(w.srv.URL+"/ui/#/task/"+task.ID),
		chromedp.WaitVisible(chromedp.CSS("#step-hold")))
	tb.waitFor(t, "hold drawn running", nodeState("hold")+` === "in_progress"`)

	checkEveryStepDrawn(t, tb, task)
	checkEdges(t, tb)
	if got := eval[string](t, tb, fill("hold")); got != blue {
		t.Errorf("hold running is filled %s, want blue %s", got, blue)
	}
	if got := eval[string](t, tb, fill("freight")); got != white {
		t.Errorf("freight (never created) is filled %s, want %s: an outline", got, white)
	}
	if n := eval[int](t, tb, `document.querySelectorAll("#op-cancel, #op-retry, #op-resolve").length`); n != 0 {
		t.Errorf("a read-only page shows %d operator buttons", n)
	}
	checkTimeline(t, tb)
	tb.screenshot(t, shots, "running.png")
	checkDetailsOnClick(t, tb)
	tb.screenshot(t, shots, "details.png")

	w.let()
	tb.waitFor(t, "hold drawn complete", nodeState("hold")+` === "complete"`)
	if got := eval[string](t, tb, fill("hold")); got != green {
		t.Errorf("hold complete is filled %s, want green %s", got, green)
	}
	w.wait(t, task.ID)
	tb.waitFor(t, "the task drawn complete", `document.getElementById("task-state")?.dataset.state === "complete"`)
	tb.waitFor(t, "ship drawn complete", nodeState("ship")+` === "complete"`)
	if status := eval[string](t, tb, `document.getElementById("status").textContent`); !strings.Contains(status, "not refreshing") {
		t.Errorf("status %q once the task ended: want it to say the page stopped refreshing", status)
	}
	tb.screenshot(t, shots, "complete.png")
}

// checkEveryStepDrawn checks that the graph has one node per step of the
// task as Get reports it (freight not_created, pack as its two instances),
// each in the step's state.
func checkEveryStepDrawn(t *testing.T, tb *tab, task *tasker.Task) {
	t.Helper()
	drawn := eval[map[string]string](t, tb, `Object.fromEntries([...document.querySelectorAll("#dag g.node")].map((g) => [g.id, g.dataset.state]))`)
	want := map[string]string{}
	for _, s := range task.Steps {
		want["step-"+s.Name] = string(s.State)
	}
	for _, name := range []string{"step-freight", "step-pack_001", "step-pack_002", "step-ship"} {
		if _, ok := want[name]; !ok {
			t.Fatalf("the task as Get reports it lacks %s: %v", name, want)
		}
	}
	if len(drawn) != len(want) {
		t.Errorf("the graph has %d nodes %v, want %d: %v", len(drawn), drawn, len(want), want)
	}
	for id, state := range want {
		if drawn[id] != state {
			t.Errorf("node %s is drawn %q, want %q", id, drawn[id], state)
		}
	}
}

// checkEdges checks the edges: one per dependency, a batch worker
// template's standing for each of its instances, and those that touch a
// step never created dimmed.
func checkEdges(t *testing.T, tb *tab) {
	t.Helper()
	edges := eval[[]string](t, tb, `[...document.querySelectorAll("#dag path.edge")].map((p) => p.dataset.from + ">" + p.dataset.to + (p.classList.contains("dim") ? " dim" : ""))`)
	want := []string{"fetch_order>route", "route>express", "route>freight dim", "fetch_order>split",
		"split>pack_001", "split>pack_002", "fetch_order>flaky", "express>gather", "freight>gather dim",
		"pack_001>gather", "pack_002>gather", "flaky>gather", "gather>hold", "hold>ship"}
	slices.Sort(edges)
	slices.Sort(want)
	if !slices.Equal(edges, want) {
		t.Errorf("edges:\n got %v\nwant %v", edges, want)
	}
	cols := eval[map[string]string](t, tb, `Object.fromEntries(["fetch_order", "route", "express", "gather", "ship"].map((n) => [n, document.getElementById("step-" + n).getAttribute("transform")]))`)
	xs := make([]string, 0, len(cols))
	for _, n := range []string{"fetch_order", "route", "express", "gather", "ship"} {
		x, _, _ := strings.Cut(strings.TrimPrefix(cols[n], "translate("), ",")
		xs = append(xs, x)
	}
	if !slices.Equal(xs, []string{"16", "240", "464", "688", "1136"}) {
		t.Errorf("columns by depth: x of fetch_order, route, express, gather, ship = %v, want 16 240 464 688 1136", xs)
	}
}

// checkTimeline checks flaky's two attempts on the timeline: the first
// failed and waited for its retry, the second completed; hold's one
// attempt runs.
func checkTimeline(t *testing.T, tb *tab) {
	t.Helper()
	got := eval[[]string](t, tb, `[...document.querySelectorAll("#attempts rect.attempt")].filter((r) => /^attempt-(flaky|hold)-/.test(r.id)).map((r) => r.id + ":" + r.dataset.outcome)`)
	slices.Sort(got)
	want := []string{"attempt-flaky-1:waiting_for_retry", "attempt-flaky-2:complete", "attempt-hold-1:in_progress"}
	if !slices.Equal(got, want) {
		t.Errorf("timeline attempts %v, want %v", got, want)
	}
}

// checkDetailsOnClick clicks flaky and finds its result, its first
// attempt's error and both attempts in the details.
func checkDetailsOnClick(t *testing.T, tb *tab) {
	t.Helper()
	tb.do(t, "click flaky", chromedp.Click(chromedp.CSS("#step-flaky")), chromedp.WaitVisible(chromedp.CSS("#details")))
	text := eval[string](t, tb, `document.getElementById("details").innerText`)
	for _, want := range []string{"flaky", `"picked": 3`, flakyMessage, "retryable_error · BUSY · attempt 1", "2 of 3"} {
		if !strings.Contains(text, want) {
			t.Errorf("flaky's details lack %q:\n%s", want, text)
		}
	}
	if n := eval[int](t, tb, `document.querySelectorAll("#details table")[0].rows.length`); n != 3 {
		t.Errorf("flaky's attempts table has %d rows, want a header and 2 attempts", n)
	}
}

// TestBrowserOperatorActsBehindTheAPIsKeys runs the page with operator
// buttons over an API with keys: the page asks for a key, a read key lists
// and filters tasks but cannot cancel (403), a write key cancels.
func TestBrowserOperatorActsBehindTheAPIsKeys(t *testing.T) {
	w := newWorld(t, &taskerhttp.Options{Keys: []taskerhttp.Key{
		{Name: "viewer", Secret: "read-secret", Scope: taskerhttp.ScopeRead},
		{Name: "ops", Secret: "write-secret", Scope: taskerhttp.ScopeWrite}}}, taskerui.Options{Operator: true})
	task := w.submit(t)
	tb := newTab(t)
	row := fmt.Sprintf(`document.getElementById(%q)`, "task-"+task.ID)
	tb.do(t, "open the list", chromedp.Navigate(w.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#keybar")))
	if n := eval[int](t, tb, `document.querySelectorAll("#task-rows tr.row").length`); n != 0 {
		t.Fatalf("without a key the list shows %d tasks", n)
	}
	useKey(t, tb, "read-secret")
	tb.waitFor(t, "the task listed running", row+`?.dataset.state === "in_progress"`)

	tb.do(t, "filter on state complete", chromedp.Click(chromedp.CSS(`#filters input[value="complete"]`)),
		chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
	tb.waitFor(t, "the filter applied", `location.hash === "#/?state=complete" && !`+row+
		` && document.getElementById("task-rows").innerText.includes("no task matches")`)
	tb.do(t, "filter on a tag and state in_progress", chromedp.Navigate(w.srv.URL+"/ui/#/?tag=ui&state=in_progress"))
	tb.waitFor(t, "the task listed again", row+` !== null`)

	tb.do(t, "open the task", chromedp.Click(chromedp.CSS("#task-"+task.ID+" a")), chromedp.WaitVisible(chromedp.CSS("#op-cancel")))
	cancelTask(t, tb)
	tb.waitFor(t, "the read key refused", `!document.getElementById("keybar").hidden && document.getElementById("status").textContent.includes("403 forbidden")`)
	if got, err := w.eng.Get(context.Background(), task.ID); err != nil || got.State != tasker.TaskInProgress {
		t.Fatalf("after a read key's cancel the task is %v (%v), want in_progress", got.State, err)
	}

	useKey(t, tb, "write-secret")
	tb.do(t, "wait for the buttons", chromedp.WaitVisible(chromedp.CSS("#op-cancel")))
	cancelTask(t, tb)
	tb.waitFor(t, "the task drawn cancelled", `document.getElementById("task-state")?.dataset.state === "cancelled"`)
	got := w.wait(t, task.ID)
	if got.State != tasker.TaskCancelled || len(got.Transitions) == 0 || got.Transitions[len(got.Transitions)-1].By != "key:ops" ||
		got.Transitions[len(got.Transitions)-1].Reason != "customer called" {
		t.Errorf("task %s, trail %+v: want cancelled by key:ops for \"customer called\"", got.State, got.Transitions)
	}
	if n := eval[int](t, tb, `document.querySelectorAll("#op-cancel").length`); n != 0 {
		t.Errorf("a cancelled task still has a cancel button")
	}
}

// useKey types key into the key bar and uses it.
func useKey(t *testing.T, tb *tab, key string) {
	t.Helper()
	tb.do(t, "use key", chromedp.SendKeys(chromedp.CSS("#keyinput"), key), chromedp.Click(chromedp.CSS("#keyuse")),
		chromedp.WaitNotVisible(chromedp.CSS("#keybar")))
}

// cancelTask clicks cancel and confirms.
func cancelTask(t *testing.T, tb *tab) {
	t.Helper()
	tb.do(t, "cancel the task", chromedp.SendKeys(chromedp.CSS("#op-reason"), "customer called"),
		chromedp.Click(chromedp.CSS("#op-cancel")), chromedp.Click(chromedp.CSS("#op-cancel-yes")))
}
