"""Write one mutmut-3 mutant into the source tree: ``python tests/mutmut_apply.py NAME`` (in a scratch copy!).

Like ``mutmut apply NAME``, except that a method's mutant replaces the method of its own class: mutmut
3.8.1's ``apply`` replaces the first function or method of that name in the file, whatever its class
(``LogSumExp.flops``'s mutant landed in ``Reduce.flops``). See tests/MUTANTS.md."""

import sys

import libcst as cst
from mutmut.mutation.diff_apply import (
    find_mutant, read_functions_from_index, read_mutant_function, read_mutants_module, read_orig_module,
)
from mutmut.utils.format_utils import orig_function_and_class_names_from_key

name = sys.argv[1]
path = find_mutant(name).path
function, cls = orig_function_and_class_names_from_key(name)
function = function.rpartition(".")[-1]
module = read_orig_module(path)
target = None
for child in module.body:
    if cls is None and isinstance(child, cst.FunctionDef) and child.name.value == function:
        target = child
    elif cls is not None and isinstance(child, cst.ClassDef) and child.name.value == cls:
        target = next((m for m in child.body.body if isinstance(m, cst.FunctionDef) and m.name.value == function),
                      None)
if target is None:
    sys.exit(f"{name}: no {cls + '.' if cls else ''}{function} in {path}")
pair = read_functions_from_index(name, path)
mutant = pair[1] if pair is not None else read_mutant_function(read_mutants_module(path), name)
with open(path, "w") as f:
    f.write(module.deep_replace(target, mutant.with_changes(name=cst.Name(function))).code)
