package tasker_test

// The multi-process kill test: many engine processes on one PostgreSQL
// schema, one of them killed with SIGKILL halfway.
//
// TestMultiprocKill creates a schema on the server TASKER_POSTGRES_URL names
// (it skips without one, and fails under CI=true: pgtest.URL) and starts
// -multiproc.procs child processes (TestMultiprocChild, this test binary
// again, told its part through TASKER_MULTIPROC_CHILD). Each runs an engine
// on the schema, as its own owner, with mpWorkers workers and a LeaseTTL of
// -multiproc.ttl, and the crash test's handlers, which log every call to a
// file of the process's own (crashTimed). Child i submits the crash test's tasks
// crash-n with n ≡ i (mod procs): -multiproc.tasks in all, of the seven
// shapes of crash_test.go (static DAGs, a decision, a batch whose workers
// checkpoint, a step running a sub-task). The engines share the work out
// through their leases: a Submit leases its task to its engine while it has
// room, otherwise any engine with room acquires it.
//
// The parent polls the store. Once every task is stored and mpKillAt of
// them completed, it kills one child, chosen at random, with SIGKILL, and at
// once reads which unfinished tasks it held and which of their attempts it
// left in progress: those tasks must be taken over, once their leases
// expire, by the survivors, and those attempts recorded as interrupted and
// retried. Once every task completed, the parent closes the survivors'
// standard input; each then checks that every task it submitted completed
// (WaitOutcome, across engines), stops its engine and exits.
//
// Then the crash test's verifier checks the store and the processes' logs
// (crashVerifyStore): every task completed with the right results; every
// step's completion was recorded exactly once, and no call of its handler,
// in any process, began after that completion was stored (so no completed
// step ran twice; the one exception, counted and logged, is a call by a
// live process that stalled past its lease after claiming the attempt and
// had it taken over, whose outcome the store refused: see
// crashVerifier.timing); every step's attempts were claimed after its
// parents completed, in the audit trail's order and by its times; every
// attempt cut short was recorded and retried; decisions, batches and
// sub-tasks hold together. The test logs the split of the tasks between
// the processes (by the process of each task's last handler call, by
// store.Task.Owner, and handler calls per log) and requires every process
// to have run some, and the killed one's unfinished tasks to have been
// finished by the others.
//
// Flags (after the package):
//
//	-multiproc.tasks N        tasks in all (default 1000; 200 with -short)
//	-multiproc.procs N        engine processes (default 3)
//	-multiproc.ttl D          each engine's Config.LeaseTTL (default 1s)
//	-multiproc.timeout D      limit on the run (default 3m)

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/postgres"
	"github.com/gotasker/tasker/store/postgres/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	mpTasks   = flag.Int("multiproc.tasks", 1000, "TestMultiprocKill: how many tasks the processes run (at most 200 with -short)")
	mpProcs   = flag.Int("multiproc.procs", 3, "TestMultiprocKill: how many engine processes share the store")
	mpTimeout = flag.Duration("multiproc.timeout", 3*time.Minute, "TestMultiprocKill: limit on the whole run")
	mpTTL     = flag.Duration("multiproc.ttl", time.Second, "TestMultiprocKill: each engine's Config.LeaseTTL: short, so that takeover is quick")
)

const (
	mpEnv     = "TASKER_MULTIPROC_CHILD" // the child's mpConfig, as JSON; unset in the parent
	mpWorkers = 8                        // each engine's Config.Workers
	mpKillAt  = 0.4                      // the share of tasks complete when a process is killed
	mpPoll    = 100 * time.Millisecond   // how often the parent reads the store
)

// mpConfig is what a child process is told.
type mpConfig struct {
	Schema   string        `json:"schema"`
	Log      string        `json:"log"` // its execution log
	Owner    string        `json:"owner"`
	Index    int           `json:"index"` // it submits the tasks n ≡ Index (mod Procs)
	Procs    int           `json:"procs"`
	Tasks    int           `json:"tasks"`
	Workers  int           `json:"workers"`
	LeaseTTL time.Duration `json:"lease_ttl"`
}

// TestMultiprocChild is a child process of TestMultiprocKill; it skips
// unless TASKER_MULTIPROC_CHILD holds its configuration.
func TestMultiprocChild(t *testing.T) {
	raw := os.Getenv(mpEnv)
	if raw == "" {
		t.Skip("a child process of TestMultiprocKill; runs only when " + mpEnv + " is set")
	}
	var cfg mpConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("%s: %v", mpEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	eng := mpEngine(t, ctx, cfg)
	ts := crashTemplates(t)
	var ids []string
	for n := cfg.Index; n < cfg.Tasks; n += cfg.Procs {
		id, err := eng.Submit(ctx, crashRequest(ts, n))
		if err != nil {
			t.Fatalf("Submit crash-%d: %v", n, err)
		}
		ids = append(ids, id)
	}
	t.Logf("%s submitted %d tasks", cfg.Owner, len(ids))
	for _, id := range ids {
		task, err := eng.WaitOutcome(ctx, id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Errorf("task %s: %s, want complete", id, stateOf(task, err))
		}
	}
	t.Logf("%s: every task it submitted is complete; waiting for the end of its standard input", cfg.Owner)
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		t.Errorf("read standard input: %v", err)
	}
}

// mpEngine starts a child's engine: on a pool of its own, on the store of
// cfg.Schema, with the crash test's handlers logging to cfg.Log. It is
// stopped, and the rest closed, when t ends.
func mpEngine(t *testing.T, ctx context.Context, cfg mpConfig) *tasker.Engine {
	pcfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = int32(cfg.Workers + 4) // a connection per worker, and some for leases, waits and wake-ups
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := postgres.New(pool, &postgres.Options{Schema: cfg.Schema})
	t.Cleanup(func() { st.Close() })
	logf, err := os.OpenFile(cfg.Log, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	ts := crashTemplates(t)
	handlers := make(map[string]tasker.StepHandler)
	for _, tmpl := range ts {
		handlers["crash."+tmpl.Name] = crashHandlerFor(tmpl, logf)
	}
	return startEngineWith(t, st, &tasker.Config{Owner: cfg.Owner, Workers: cfg.Workers, LeaseTTL: cfg.LeaseTTL}, handlers, ts...)
}

// TestMultiprocKill: see the top of this file.
func TestMultiprocKill(t *testing.T) {
	if os.Getenv(mpEnv) != "" {
		t.Skip("in a child process")
	}
	pgtest.URL(t)
	tasks, procs := *mpTasks, *mpProcs
	if testing.Short() {
		tasks = min(tasks, 200)
	}
	if tasks < 10*procs || procs < 2 {
		t.Fatalf("-multiproc.tasks=%d -multiproc.procs=%d: want 2 processes or more and 10 tasks per process or more", tasks, procs)
	}
	m := startMultiproc(t, tasks, procs)
	t0 := time.Now()
	m.waitFor("every task stored", func(f mpFigures) bool { return f.stored == tasks })
	f := m.waitFor(fmt.Sprintf("%.0f%% of the tasks complete", 100*mpKillAt), func(f mpFigures) bool { return f.complete >= int(mpKillAt*float64(tasks)) })
	victim := rand.IntN(procs)
	killed := time.Now()
	m.kill(victim)
	t.Logf("killed %s after %v, with %d tasks complete: it held %d unfinished tasks, with %d attempts in progress (read in %v)",
		m.owner(victim), killed.Sub(t0).Round(time.Millisecond), f.complete, len(m.orphans), len(m.cut), time.Since(killed).Round(time.Millisecond))
	m.waitFor("every task complete", func(f mpFigures) bool { return f.complete == tasks })
	t.Logf("every task complete after %v", time.Since(t0).Round(time.Millisecond))
	m.stopSurvivors()
	logs := crashReadLog(t, m.logs()...)
	m.addInterrupted()
	v := crashVerifyStore(t, m.st, m.ts, tasks, logs, m.cut)
	m.report(logs, v.late)
}

// multiproc is a run of TestMultiprocKill.
type multiproc struct {
	t        *testing.T
	st       *postgres.Store
	ts       []*tasker.Template
	dir      string
	tasks    int
	children []*crashChild
	deadline time.Time

	victim  int                  // the child killed; -1 before
	orphans map[string]bool      // the unfinished tasks it held then
	cut     map[crashAttempt]int // attempts recorded as interrupted: 1 when the kill left them in progress, 2 otherwise
}

// startMultiproc creates the schema and starts procs children on it.
func startMultiproc(t *testing.T, tasks, procs int) *multiproc {
	schema := pgtest.NewSchema(t)
	st, err := postgres.Open(context.Background(), pgtest.Pool(t), &postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &multiproc{t: t, st: st, ts: crashTemplates(t), dir: t.TempDir(), tasks: tasks, victim: -1,
		deadline: time.Now().Add(*mpTimeout), orphans: make(map[string]bool), cut: make(map[crashAttempt]int)}
	for i := range procs {
		cfg, err := json.Marshal(mpConfig{Schema: schema, Log: m.logPath(i), Owner: m.owner(i), Index: i,
			Procs: procs, Tasks: tasks, Workers: mpWorkers, LeaseTTL: *mpTTL})
		if err != nil {
			t.Fatal(err)
		}
		m.children = append(m.children, startChild(t, "TestMultiprocChild", []string{mpEnv + "=" + string(cfg)}, true))
	}
	t.Cleanup(func() { // on failure, no child outlives the test
		for _, c := range m.children {
			c.kill(t)
		}
	})
	return m
}

func (m *multiproc) owner(i int) string   { return fmt.Sprintf("p%d", i) }
func (m *multiproc) logPath(i int) string { return filepath.Join(m.dir, "exec-"+m.owner(i)+".log") }

// logs returns the paths of the children's execution logs.
func (m *multiproc) logs() []string {
	paths := make([]string, len(m.children))
	for i := range paths {
		paths[i] = m.logPath(i)
	}
	return paths
}

// mpFigures is what the store holds of the tasks submitted (crash-n).
type mpFigures struct {
	stored, complete int
	failed           []string // tasks that ended otherwise
}

// figures reads the store's figures.
func (m *multiproc) figures() mpFigures {
	m.t.Helper()
	recs, err := m.st.ListTasks(context.Background(), store.Filter{})
	if err != nil {
		m.t.Fatal(err)
	}
	var f mpFigures
	for _, rec := range recs {
		if !strings.HasPrefix(rec.IdempotencyKey, "crash-") {
			continue
		}
		f.stored++
		switch st := tasker.TaskState(rec.State); {
		case st == tasker.TaskComplete:
			f.complete++
		case st.Ended():
			f.failed = append(f.failed, rec.ID+" "+rec.State)
		}
	}
	return f
}

// waitFor polls the store until done says its figures are what the test
// waits for, and returns them. It fails the test at the deadline, when a
// task ended in error, or when a child not killed exited.
func (m *multiproc) waitFor(what string, done func(mpFigures) bool) mpFigures {
	m.t.Helper()
	for {
		f := m.figures()
		switch {
		case len(f.failed) > 0:
			m.fatalf("waiting for %s: tasks ended not complete: %v", what, f.failed)
		case done(f):
			return f
		case time.Now().After(m.deadline):
			m.fatalf("waiting for %s: %d tasks stored, %d complete at the deadline (-multiproc.timeout=%v)", what, f.stored, f.complete, *mpTimeout)
		}
		for i, c := range m.children {
			if i != m.victim && c.exited() {
				m.fatalf("waiting for %s: %s exited: %v", what, m.owner(i), c.err)
			}
		}
		time.Sleep(mpPoll)
	}
}

// fatalf kills the children and fails the test with their output's tails.
func (m *multiproc) fatalf(format string, args ...any) {
	m.t.Helper()
	var b strings.Builder
	for i, c := range m.children {
		c.kill(m.t)
		out := c.out.Bytes()
		fmt.Fprintf(&b, "\n--- %s (%v), the end of its output:\n%s", m.owner(i), c.err, out[max(0, len(out)-4000):])
	}
	m.t.Fatalf(format+"%s", append(args, b.String())...)
}

// kill kills child i with SIGKILL and reads at once, before their leases
// can expire, the unfinished tasks it held and the attempts of theirs it
// left in progress.
func (m *multiproc) kill(i int) {
	m.t.Helper()
	m.victim = i
	m.children[i].kill(m.t)
	ctx := context.Background()
	recs, err := m.st.ListTasks(ctx, store.Filter{States: []string{string(tasker.TaskPending), string(tasker.TaskInProgress)}})
	if err != nil {
		m.t.Fatal(err)
	}
	for _, rec := range recs {
		if rec.Owner != m.owner(i) {
			continue
		}
		snap, err := m.st.Snapshot(ctx, rec.ID) // the task's owner and steps in one read
		if err != nil {
			m.t.Fatal(err)
		}
		if snap.Task.Owner != m.owner(i) || tasker.TaskState(snap.Task.State).Ended() {
			continue // taken over already
		}
		m.orphans[rec.ID] = true
		for _, s := range snap.Steps {
			if s.State == string(tasker.StepInProgress) {
				m.cut[crashAttempt{rec.ID, s.Name, s.Attempts}] = 1
			}
		}
	}
}

// stopSurvivors closes the standard input of the children not killed,
// which then stop, and checks that each exits with its test passed.
func (m *multiproc) stopSurvivors() {
	m.t.Helper()
	for i, c := range m.children {
		if i != m.victim {
			c.stdin.Close()
		}
	}
	for i, c := range m.children {
		select {
		case <-c.done:
		case <-time.After(time.Until(m.deadline) + 30*time.Second):
			m.fatalf("%s did not exit once its standard input was closed", m.owner(i))
		}
		if i != m.victim && !c.passed() {
			m.fatalf("%s failed: %v", m.owner(i), c.err)
		}
	}
}

// addInterrupted adds to m.cut every attempt the trail records as
// interrupted (a retry with code INTERRUPTED, which the engine that took a
// task over records for an attempt in progress): those of tasks the killed
// process held, and those of tasks a survivor took from another whose
// lease expired while it lived (it lagged renewing).
func (m *multiproc) addInterrupted() {
	m.t.Helper()
	ctx := context.Background()
	recs, err := m.st.ListTasks(ctx, store.Filter{})
	if err != nil {
		m.t.Fatal(err)
	}
	for _, rec := range recs {
		trail, err := m.st.Transitions(ctx, rec.ID)
		if err != nil {
			m.t.Fatal(err)
		}
		for _, tr := range trail {
			a := crashAttempt{rec.ID, tr.Step, tr.Attempt}
			if tr.Step != "" && tr.To == string(tasker.StepWaitingForRetry) && tr.Error != nil &&
				tr.Error.Code == tasker.CodeInterrupted && m.cut[a] == 0 {
				m.cut[a] = 2
			}
		}
	}
}

// report logs how the processes split the work, what the kill cut short
// and who took it over (late is the verifier's count of calls a process
// began after it had lost their task), and fails the test unless every
// process ran some tasks and the killed one's unfinished tasks were
// finished by the others.
func (m *multiproc) report(l crashLogged, late int) {
	t := m.t
	t.Helper()
	sp := m.split(l)
	killed, live := m.interruptedBy(l)
	t.Logf("split of the %d tasks: by the process that made the last handler call of each %v (%d tasks had calls in two processes or more); "+
		"by store.Task.Owner %v (\"\": released when its engine stopped); handler calls by process %v", m.tasks, sp.finisher, sp.shared, sp.owner, sp.calls)
	t.Logf("%s was killed holding %d unfinished tasks, now owned by %v; %d attempts were recorded as interrupted: "+
		"%d of the killed process (%d of them seen in progress at the kill), %d taken from a live process whose lease had expired "+
		"(%d calls of those began after another engine completed their step)",
		m.owner(m.victim), len(m.orphans), sp.taken, len(m.cut), killed, m.count(1), live, late)
	for i := range m.children {
		if sp.finisher[m.owner(i)] == 0 || sp.calls[m.owner(i)] == 0 {
			t.Errorf("process %s ran no task: %v", m.owner(i), sp.finisher)
		}
	}
	if len(m.orphans) == 0 {
		t.Errorf("the killed process held no unfinished task: the test killed nothing that needed taking over")
	}
	if n := sp.taken[m.owner(m.victim)]; n > 0 {
		t.Errorf("%d of the unfinished tasks the killed process held are still leased to it: no survivor took them over", n)
	}
}

// mpSplit is how the processes shared the work out.
type mpSplit struct {
	finisher map[string]int // tasks submitted, by the process of the last handler call of each (its sub-task's included)
	shared   int            // tasks submitted with handler calls in two processes or more
	owner    map[string]int // tasks submitted, by their store.Task.Owner
	calls    map[string]int // handler calls, by process
	taken    map[string]int // the tasks the killed process held, by their store.Task.Owner now
}

// split reads how the processes shared the work out, from the store and
// the execution logs l.
func (m *multiproc) split(l crashLogged) mpSplit {
	recs, err := m.st.ListTasks(context.Background(), store.Filter{})
	if err != nil {
		m.t.Fatal(err)
	}
	sp := mpSplit{finisher: make(map[string]int), owner: make(map[string]int), calls: make(map[string]int), taken: make(map[string]int)}
	top := make(map[string]string) // every task → the task submitted that it is or belongs to
	for _, rec := range recs {
		if strings.HasPrefix(rec.IdempotencyKey, "crash-") {
			top[rec.ID] = rec.ID
			sp.owner[rec.Owner]++
		} else if parent, ok := strings.CutPrefix(rec.Initiator, "task:"); ok {
			top[rec.ID], _, _ = strings.Cut(parent, "/")
		}
		if m.orphans[rec.ID] {
			sp.taken[rec.Owner]++
		}
	}
	m.finishers(l, top, &sp)
	return sp
}

// finishers fills in sp's figures from the execution logs l: the calls by
// process, and the process of each task's last call; top maps every task
// to the task submitted it is or belongs to.
func (m *multiproc) finishers(l crashLogged, top map[string]string, sp *mpSplit) {
	type last struct {
		proc  string
		end   time.Time
		procs map[string]bool
	}
	byTask := make(map[string]*last)
	for a, cs := range l.calls {
		for _, c := range cs {
			proc := strings.TrimSuffix(strings.TrimPrefix(c.log, "exec-"), ".log")
			sp.calls[proc]++
			k := byTask[top[a.task]]
			if k == nil {
				k = &last{procs: make(map[string]bool)}
				byTask[top[a.task]] = k
			}
			k.procs[proc] = true
			if c.end.After(k.end) {
				k.proc, k.end = proc, c.end
			}
		}
	}
	for _, k := range byTask {
		sp.finisher[k.proc]++
		if len(k.procs) > 1 {
			sp.shared++
		}
	}
}

// interruptedBy splits the attempts recorded as interrupted: those of the
// killed process (its log has their calls, or no log has: it claimed them,
// then died before their handlers ran) and those of a live one (a
// survivor's log has them).
func (m *multiproc) interruptedBy(l crashLogged) (killed, live int) {
	victimLog := filepath.Base(m.logPath(m.victim))
	for a := range m.cut {
		cs := l.calls[a]
		if len(cs) == 0 || slices.ContainsFunc(cs, func(c crashCall) bool { return c.log == victimLog }) {
			killed++
		} else {
			live++
		}
	}
	return killed, live
}

// count returns how many attempts of m.cut have the value k.
func (m *multiproc) count(k int) int {
	n := 0
	for _, v := range m.cut {
		if v == k {
			n++
		}
	}
	return n
}
