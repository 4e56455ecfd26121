#!/usr/bin/env bash
# The test selection mutmut runs against each mutant of one file (see tests/MUTANTS.md).
# Usage (mutmut's runner): bash tests/mutmut_run.sh arith|rules|optim|memory|conv
# Stops at the first failure (-x): a killed mutant costs a second or two, a survivor the whole selection.
set -e
PY=${PYTHON:-python}
# any failure, a collection or import error too, exits 1: mutmut 2 counts only exit codes 1 and 2 as a kill
run() { "$PY" -m pytest -q -x -p no:cacheprovider -p no:randomly "$@" >/dev/null 2>&1 || exit 1; }
case "$1" in
  arith)  # the elementwise/broadcasting ops: their tables in test_ops, autodiff, graph construction, stability
    run tests/symgraph/test_autodiff.py tests/symgraph/test_graph.py tests/symgraph/test_stability.py \
        tests/codegen/test_arith_buffers.py
    run tests/symgraph/test_ops.py -k "add or subtract or multiply or divide or power or negat or maximum \
or minimum or where or less or greater or equal or cast or stop_gradient or relu or float32 or scalar_output \
or second_derivative" ;;
  rules)  # the simplifier's rewrite rules: their cases, the conv rule, and the README's rule table (names, sets, unsafe)
    run tests/symgraph/test_simplify.py tests/symgraph/test_rules_mutants.py tests/symgraph/test_conv_rules.py \
        tests/symgraph/test_stability.py tests/symgraph/test_autodiff.py
    run tests/test_readme.py -k rule_table ;;
  optim)  # optimizers
    run tests/symgraph/test_optim.py tests/symgraph/test_schedules.py tests/symgraph/test_train.py ;;
  memory)  # codegen's buffer plan
    run tests/codegen/test_memory_plan.py tests/codegen/test_blocks.py tests/codegen/test_no_allocation.py ;;
  conv)  # convolution and pooling ops: their rows in test_ops, test_conv (torch comparisons skip without torch), test_conv_mutants
    run tests/symgraph/test_conv_mutants.py
    run tests/symgraph/test_conv.py tests/symgraph/test_ops.py -k "conv or pool or flatten or prelu or maxout or rbf" ;;
  *) echo "unknown target $1 (arith|rules|optim|memory|conv)" >&2; exit 2 ;;
esac
