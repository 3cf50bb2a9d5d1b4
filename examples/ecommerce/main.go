// Command ecommerce runs the guide's order processing workflow once on a
// SQLite file and prints the outcome and each step's timing, so the parallel
// payment ‖ inventory branch is visible:
//
//	go run ./examples/ecommerce
//	go run ./examples/ecommerce -token tok_test_declined
//	go run ./examples/ecommerce -token tok_test_gateway_error
//	go run ./examples/ecommerce -empty-cart -db /tmp/orders.db
//
// With -serve ADDR it submits nothing: it serves the REST API of package
// taskerhttp on ADDR (under /api/v1 and /v1), and the live DAG page of
// package taskerui at /ui/ (read-only), until SIGINT or SIGTERM, so the
// guide's curl command works as it is written and its task can be watched:
//
//	go run ./examples/ecommerce -serve :8080    # tasks in ./ecommerce.db unless -db says otherwise
//
// On a signal the HTTP server stops taking requests and drains the ones in
// flight, then the engine stops (running handlers finish; steps not started
// stay in the file, and the next start resumes them).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store/sqlite"
	"github.com/gotasker/tasker/taskerhttp"
	"github.com/gotasker/tasker/taskerotel"
	"github.com/gotasker/tasker/taskerui"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// shutdownTimeout bounds each stage of a graceful shutdown: draining the
// HTTP server, then stopping the engine.
const shutdownTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ecommerce:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ecommerce", flag.ContinueOnError)
	dbPath := fs.String("db", "", "SQLite file to store tasks in (default: a new temporary file)")
	token := fs.String("token", orders.TokenSuccess, "payment token: tok_test_success, tok_test_declined or tok_test_gateway_error")
	empty := fs.Bool("empty-cart", false, "submit an empty cart")
	payLatency := fs.Duration("payment-latency", 200*time.Millisecond, "simulated payment gateway latency")
	invLatency := fs.Duration("inventory-latency", 100*time.Millisecond, "simulated inventory service latency")
	addr := fs.String("serve", "", "serve the REST API on this address (such as :8080) until interrupted, instead of running one task")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr != "" && *dbPath == "" {
		*dbPath = "ecommerce.db"
	}
	if *dbPath == "" {
		dir, err := os.MkdirTemp("", "tasker-ecommerce-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*dbPath = filepath.Join(dir, "tasker.db")
	}

	var tel *taskerotel.Telemetry // -serve: metrics at /metrics
	var metrics http.Handler
	var stOpts sqlite.Options
	if *addr != "" {
		var err error
		if tel, metrics, err = newTelemetry(); err != nil {
			return err
		}
		defer tel.Close()
		stOpts.OnCommit = tel.ObserveCommit
	}
	st, err := sqlite.Open(*dbPath, &stOpts)
	if err != nil {
		return err
	}
	defer st.Close()
	eng, err := startEngine(ctx, st, orders.Handlers{PaymentLatency: *payLatency, InventoryLatency: *invLatency}, tel)
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		eng.Stop(stopCtx)
	}()
	if *addr != "" {
		return serve(ctx, *addr, eng, *dbPath, metrics, out)
	}

	return runOnce(ctx, eng, *token, *empty, *dbPath, out)
}

// runOnce submits the guide's order, paying with token (an empty cart if
// empty), waits for it and reports it.
func runOnce(ctx context.Context, eng *tasker.Engine, token string, empty bool, dbPath string, out io.Writer) error {
	input := orders.Input{
		CustomerEmail: "customer@example.com",
		PaymentToken:  token,
		CartItems: []orders.CartItem{
			{SKU: "WIDGET-A", Name: "Widget A", Quantity: 2, UnitPrice: 29.99},
			{SKU: "GADGET-B", Name: "Gadget B", Quantity: 1, UnitPrice: 49.99},
		},
	}
	if empty {
		input.CartItems = []orders.CartItem{}
	}
	id, err := eng.Submit(ctx, tasker.SubmitRequest{
		Namespace: "ecommerce", Name: "ecommerce_order_processing", Version: "1.0.0",
		Initiator: "api:checkout", SourceSystem: "web", Reason: "New order received",
		Context: input,
	})
	if err != nil {
		return err
	}
	task, err := eng.Wait(ctx, id)
	if err != nil {
		return err
	}
	report(out, task, dbPath)
	if task.State != tasker.TaskComplete {
		return fmt.Errorf("task %s ended %s", task.ID, task.State)
	}
	return nil
}

// startEngine starts an engine on st with the guide's template and h,
// instrumented by tel unless it is nil.
func startEngine(ctx context.Context, st *sqlite.Store, h orders.Handlers, tel *taskerotel.Telemetry) (*tasker.Engine, error) {
	var cfg *tasker.Config
	if tel != nil {
		cfg = tel.Configure(nil)
	}
	eng, err := orders.NewEngine(st, cfg, h)
	if err != nil {
		return nil, err
	}
	if tel != nil {
		if err := tel.Observe(eng); err != nil {
			return nil, err
		}
	}
	return eng, eng.Start(ctx)
}

// newTelemetry returns the engine's instrumentation, its metrics read by
// OpenTelemetry's Prometheus exporter into a registry of their own, and
// the handler that serves that registry's scrape. Traces go to the global
// tracer provider (a no-op unless the program sets one).
func newTelemetry() (*taskerotel.Telemetry, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, err
	}
	tel, err := taskerotel.New(taskerotel.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)),
		Propagator: propagation.TraceContext{}})
	if err != nil {
		return nil, nil, err
	}
	return tel, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// serve serves eng's REST API, the page at /ui/ and the Prometheus scrape
// of metrics at /metrics, on addr until ctx ends, then drains the server;
// the caller stops the engine after.
func serve(ctx context.Context, addr string, eng *tasker.Engine, dbPath string, metrics http.Handler, out io.Writer) error {
	api, err := taskerhttp.New(eng, nil)
	if err != nil {
		return err
	}
	ui, err := taskerui.Handler(taskerui.Options{API: "/api/v1", Title: "tasker · ecommerce"})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/v1/", api)
	mux.Handle("/ui/", http.StripPrefix("/ui", ui))
	mux.Handle("/metrics", metrics)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "serving http://%s/api/v1 (tasks in %s), the page at http://%[1]s/ui/, metrics at http://%[1]s/metrics; stop with Ctrl-C\n", ln.Addr(), dbPath)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "shutting down: draining HTTP requests, then stopping the engine")
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(drainCtx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// report prints the task's outcome and each step's start and end, as offsets
// from the task's creation.
func report(w io.Writer, t *tasker.Task, dbPath string) {
	fmt.Fprintf(w, "task %s: %s (stored in %s)\n", t.ID, t.State, dbPath)
	fmt.Fprintf(w, "%-18s %-18s %8s %9s %9s\n", "step", "state", "attempts", "start", "end")
	for _, s := range t.Steps {
		fmt.Fprintf(w, "%-18s %-18s %8d %9s %9s\n", s.Name, s.State, s.Attempts,
			offset(t.CreatedAt, s.StartedAt), offset(t.CreatedAt, s.FinishedAt))
		if s.LastError != nil {
			fmt.Fprintf(w, "  last error: %s [%s]: %s\n", s.LastError.Type, s.LastError.Code, s.LastError.Message)
		}
	}
	if last := t.Step("send_confirmation"); last != nil && last.State == tasker.StepComplete {
		var conf orders.Confirmation
		_ = json.Unmarshal(last.Result, &conf)
		fmt.Fprintf(w, "confirmation: %q sent to %s\n", conf.Subject, conf.Recipient)
	}
	if cart := t.Step("validate_cart"); cart != nil && cart.Result != nil {
		fmt.Fprintf(w, "validate_cart result: %s\n", cart.Result)
	}
}

func offset(from, at time.Time) string {
	if at.IsZero() {
		return "-"
	}
	return at.Sub(from).Round(time.Millisecond).String()
}
