package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTemplateGenerateOutputPassesValidate(t *testing.T) {
	r := runCmd(t, nil, "template", "generate", "task_template", "--language", "python",
		"--param", "name=EcommerceOrderProcessing", "--param", "namespace=ecommerce",
		"--param", "handler_callable=handlers.ecommerce.ValidateCartHandler")
	r.want(t, 0, `(?s)^name: ecommerce_order_processing\nnamespace_name: ecommerce\n.*- name: validate_cart\n.*callable: "handlers.ecommerce.ValidateCartHandler"`, `^$`)
	path := filepath.Join(t.TempDir(), "order.yaml")
	if err := os.WriteFile(path, []byte(r.out), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, nil, "template", "validate", path).want(t, 0, `: ok: ecommerce/ecommerce_order_processing@1.0.0\n$`, `^$`)

	out := filepath.Join(t.TempDir(), "o.yaml")
	runCmd(t, nil, "template", "generate", "task_template", "-o", out, "--param", "name=x", "--param", "namespace=y",
		"--param", "handler_callable=Z").want(t, 0, `^$`, `^$`)
	runCmd(t, nil, "template", "validate", out).want(t, 0, `y/x@1.0.0`, `^$`)

	runCmd(t, nil, "template", "generate", "task_template", "--param", "name=x").
		want(t, 1, `^$`, `--param namespace=… is required`)
	runCmd(t, nil, "template", "generate", "task_template", "--param", "colour=red").want(t, 1, `^$`, `--param "colour=red"`)
	runCmd(t, nil, "template", "generate", "task_template", "--param", "name=x", "--param", "namespace=Not-Valid!",
		"--param", "handler_callable=h").want(t, 1, `^$`, `invalid template:\n.*namespace_name`)
	runCmd(t, nil, "template", "generate", "step_handler").want(t, 1, `^$`, `unknown generator "step_handler"`)
}

func TestTemplateValidateReportsEveryProblemAndWarning(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: Bad\nnamespace_name: shop\nversion: \"1.0.0\"\nsteps:\n  - name: a\n    handler: {callable: x}\n    dependencies: [nope]\n"), 0o644)
	r := runCmd(t, nil, "template", "validate", "../../testdata/templates/valid/legacy_fields.yaml", bad)
	r.want(t, 1, `legacy_fields.yaml: ok: shop/legacy@1.0.0`, `warning: .*legacy_fields.yaml:10: steps\[0\]\.retry\.limit: ignored`)
	for _, want := range []string{bad + ":1: name: ", bad + ":7: steps[0].dependencies", "tasker: 2 error(s)"} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.errOut)
		}
	}
	runCmd(t, nil, "template", "validate", "../../internal/orders").want(t, 0, `ecommerce_order_processing@1.0.0`, `^$`)
	runCmd(t, nil, "template", "validate", filepath.Join(dir, "none.yaml")).want(t, 1, `^$`, `none.yaml`)
	runCmd(t, nil, "template", "validate").want(t, 1, `^$`, `requires at least 1 arg`)
}

func TestTemplateGraph(t *testing.T) {
	guide := "../../internal/orders/template.yaml"
	runCmd(t, nil, "template", "graph", guide).want(t, 0, `^%% ecommerce/ecommerce_order_processing@1.0.0
flowchart TD
    validate_cart\["validate_cart"\]
    process_payment\["process_payment"\]
    update_inventory\["update_inventory"\]
    create_order\["create_order"\]
    send_confirmation\["send_confirmation"\]
    validate_cart --> process_payment
    validate_cart --> update_inventory
    process_payment --> create_order
    update_inventory --> create_order
    create_order --> send_confirmation
$`, `^$`)
	runCmd(t, nil, "template", "graph", "--format", "dot", guide).want(t, 0,
		`(?s)^digraph "ecommerce/ecommerce_order_processing@1.0.0" \{\n.*"create_order" \[shape=box, label="create_order"\];\n.*"process_payment" -> "create_order";\n.*\}\n$`, `^$`)
	types := "../../testdata/templates/valid/step_types.yaml"
	runCmd(t, nil, "template", "graph", types).want(t, 0,
		`(?s)route\{"route<br/><i>decision</i>"\}.*finalize\(\("finalize.*split_lines\[\["split_lines.*process_lines\[/"process_lines`, `^$`)
	runCmd(t, nil, "template", "graph", "--format", "dot", types).want(t, 0,
		`(?s)"route" \[shape=diamond.*"finalize" \[shape=doublecircle.*"split_lines" \[shape=box3d.*"process_lines" \[shape=parallelogram`, `^$`)
	runCmd(t, nil, "template", "graph", "--format", "svg", guide).want(t, 1, `^$`, `--format: want mermaid or dot`)
}

func TestHelpAndCompletion(t *testing.T) {
	runCmd(t, nil, "--help").want(t, 0, `(?s)Usage:.*template.*task`, `^$`)
	runCmd(t, nil, "task", "create", "--help").want(t, 0, `--input string\s+the task context: JSON, or @FILE`, `^$`)
	runCmd(t, nil, "completion", "bash").want(t, 0, `bash completion`, `^$`)
	runCmd(t, nil, "__complete", "task", "list", "--state", "").want(t, 0, `(?s)pending\nin_progress\ncomplete\nerror\ncancelled`, ``)
	runCmd(t, nil, "frobnicate").want(t, 1, `^$`, `unknown command "frobnicate"`)
}
