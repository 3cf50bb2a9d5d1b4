// Command tasker works with tasker's templates and tasks from the shell,
// the Go form of Tasker's tasker-ctl:
//
//	tasker template generate task_template --param name=EcommerceOrderProcessing \
//	    --param namespace=ecommerce --param handler_callable=handlers.ecommerce.ValidateCartHandler
//	tasker template validate templates/*.yaml
//	tasker template graph templates/order.yaml --format dot
//	tasker task create --name ecommerce_order_processing --namespace ecommerce --input @order.json
//	tasker task list --state error
//	tasker task show ID --watch
//	tasker task list --db tasks.db          # a SQLite file, read-only, no server needed
//
// The task commands talk to a server that mounts package taskerhttp (--url,
// default http://localhost:8080; the API key from --api-key or
// TASKER_API_KEY). Output is a table by default and JSON with --json;
// errors go to stderr with a non-zero exit status. Install it with
//
//	go install github.com/gotasker/tasker/cmd/tasker@latest
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// app is one run of the command: its output and environment.
type app struct {
	out, errOut io.Writer
	getenv      func(string) string
	json        bool // --json
}

// run runs the command line args and returns the exit status: 0, or 1 for
// any error (printed on errOut).
func run(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) int {
	a := &app{out: out, errOut: errOut, getenv: getenv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(errOut)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(errOut, "tasker:", err)
		return 1
	}
	return 0
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tasker",
		Short: "Work with tasker templates and tasks",
		Long: `tasker generates, validates and draws task templates, and creates, lists, shows,
cancels, retries and resolves tasks on a server that mounts package taskerhttp
(or reads them from an engine's SQLite file).`,
		SilenceUsage:  true, // an error is not a usage problem
		SilenceErrors: true, // run prints it
	}
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print JSON instead of tables, for scripts")
	root.AddCommand(a.templateCmd(), a.taskCmd())
	return root
}
