package tasker

import (
	"context"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
)

// TestTakeKeepsRunOfItsLease: take is given the lease a run of the engine
// already drives its task under (a renewal listed the lease Submit had just
// been granted, before Submit recorded it: an orphan, to square). The run
// is kept: its attempt in progress is neither cut short nor run again.
func TestTakeKeepsRunOfItsLease(t *testing.T) {
	st := memory.NewShared()
	defer st.Close()
	eng, err := New(st, &Config{Owner: "A", Workers: 4, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	running, release := make(chan struct{}, 4), make(chan struct{})
	eng.Register("t.h", HandlerFunc(func(context.Context, *StepContext) (any, error) {
		running <- struct{}{}
		<-release
		return nil, nil
	}))
	tmpl, err := ParseTemplate("t.yaml", []byte("name: t\nnamespace_name: t\nversion: \"1.0.0\"\nsteps:\n  - {name: a, handler: {callable: t.h}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.AddTemplates(tmpl); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(ctx)
	id, err := eng.Submit(ctx, SubmitRequest{Namespace: "t", Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	<-running
	eng.shared.take(ctx, store.Lease{TaskID: id, Owner: "A", Token: eng.shared.token(id)})
	close(release)
	task, err := eng.Wait(ctx, id)
	if err != nil || task.State != TaskComplete {
		t.Fatalf("task: %v, %v; want complete", task, err)
	}
	if a := task.Step("a"); a.Attempts != 1 {
		t.Errorf("step a after %d attempts, want 1: take cut the attempt of the run it should have kept short", a.Attempts)
	}
}
