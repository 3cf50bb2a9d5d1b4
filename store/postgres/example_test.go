package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/postgres"
)

const helloYAML = `
name: hello
namespace_name: demo
version: "1.0.0"
steps:
  - name: greet
    handler:
      callable: demo.Greet
`

// An engine on PostgreSQL: the pool is the application's, and the store
// creates its tables on first use. (The example runs against the server
// TASKER_POSTGRES_URL names; go test only compiles it.)
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("TASKER_POSTGRES_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close() // after the engine and the store: Close leaves the pool open

	st := postgres.New(pool, nil) // or &postgres.Options{Schema: "tasker"}
	defer st.Close()
	eng, err := tasker.New(st, nil)
	if err != nil {
		log.Fatal(err)
	}
	eng.Register("demo.Greet", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		return "hello from postgres", nil
	}))
	tmpl, err := tasker.ParseTemplate("hello.yaml", []byte(helloYAML))
	if err != nil {
		log.Fatal(err)
	}
	if err := eng.AddTemplates(tmpl); err != nil {
		log.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer eng.Stop(ctx)

	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "demo", Name: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	task, err := eng.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.State, string(task.Step("greet").Result))
}
