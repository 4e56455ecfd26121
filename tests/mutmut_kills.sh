#!/usr/bin/env bash
# Does a test selection kill one mutmut-3 mutant in a fresh process? (tests/MUTANTS.md)
# Usage, from the repository root after `mutmut run` made mutants/:
#   bash tests/mutmut_kills.sh NAME tests/symgraph/test_x.py [more pytest arguments]
# Copies the tree to a scratch directory, writes the mutant there (tests/mutmut_apply.py), runs pytest
# and prints KILLED (with the failing test) or SURVIVED. The tree itself is never changed.
set -u
name=$1; shift
root=$PWD
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r symgraph codegen tests examples README.md pyproject.toml "$scratch/"
ln -s "$root/mutants" "$scratch/mutants"
cd "$scratch"
python "$root/tests/mutmut_apply.py" "$name" >/dev/null || exit 2
if python -m pytest -q -x -p no:cacheprovider -p no:randomly "$@" >pytest.out 2>&1; then
  echo "SURVIVED $name"
else
  echo "KILLED $name"; grep -E "^(FAILED|ERROR)" pytest.out | head -3
fi
