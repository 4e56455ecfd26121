"""arrange.py's mutation run (tests/MUTANTS.md): what test_ops left open. Every message of the
builders in full (each names its builder and argument), the integer checks (floats and bools
refused, the lower bounds), named dimensions where they are allowed and where not, and the values of
the cases the registry did not reach (a 1-D roll without an axis, one shift for two axes, a single
stacked input, all-ones and all-twos tiles, tril's default k, clip with only an upper bound)."""

from __future__ import annotations

import numpy as np
import pytest

import codegen
import symgraph as sg

P = sg.placeholder
RNG = np.random.default_rng(16)
HERE = r" at \S*test_arrange_mutants\.py:\d+$"  # a ShapeError ends with the user's line


def _run(out, feed):
    return codegen.evaluate([out], feed)[0]


def _x(shape=(3, 4)):
    return P("x", shape), RNG.normal(size=shape)


# -- the integer checks and their messages -------------------------------------------------------
@pytest.mark.parametrize("build, message", [
    (lambda x: sg.stack([x], axis=1.5), r"^stack: axis must be an int, got 1\.5$"),
    (lambda x: sg.stack([x], axis=True), r"^stack: axis must be an int, got True$"),
    (lambda x: sg.split(x, 2, axis=1.5), r"^split: axis must be an int, got 1\.5$"),
    (lambda x: sg.split(x, [1.5]), r"^split: index must be an int, got 1\.5$"),
    (lambda x: sg.pad(x, (1, 2.5)), r"^pad: a pad width must be an int, got 2\.5$"),
    (lambda x: sg.pad(x, (1, True)), r"^pad: a pad width must be an int, got True$"),
    (lambda x: sg.roll(x, 1, axis=(1.5,)), r"^roll: axis must be an int, got 1\.5$"),
    (lambda x: sg.roll(x, (1.5,), axis=0), r"^roll: shift must be an int, got 1\.5$"),
    (lambda x: sg.repeat(x, 2.0), r"^repeat: repeats must be an int, got 2\.0$"),
    (lambda x: sg.repeat(x, 2, axis=1.5), r"^repeat: axis must be an int, got 1\.5$"),
    (lambda x: sg.tile(x, (2, 1.5)), r"^tile: a repetition count must be an int, got 1\.5$"),
    (lambda x: sg.swapaxes(x, 1.5, 0), r"^swapaxes: axis1 must be an int, got 1\.5$"),
    (lambda x: sg.swapaxes(x, 0, 1.5), r"^swapaxes: axis2 must be an int, got 1\.5$"),
    (lambda x: sg.triu(x, 1.5), r"^triu: k must be an int, got 1\.5$"),
    (lambda x: sg.tril(x, True), r"^tril: k must be an int, got True$"),
])
def test_integer_arguments_refuse_floats_and_bools_naming_the_builder(build, message):
    with pytest.raises(TypeError, match=message):
        build(P("x", (3, 4)))


@pytest.mark.parametrize("build, message", [
    (lambda x: sg.split(x, 0), r"^split: sections must be >= 1, got 0$"),
    (lambda x: sg.pad(x, (-1, 1)), r"^pad: a pad width must be >= 0, got -1$"),
    (lambda x: sg.pad(x, ((0, 0), (-2, 0))), r"^pad: a pad width must be >= 0, got -2$"),
    (lambda x: sg.repeat(x, -1), r"^repeat: repeats must be >= 0, got -1$"),
    (lambda x: sg.tile(x, (2, -1)), r"^tile: a repetition count must be >= 0, got -1$"),
])
def test_counts_below_their_minimum_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build(P("x", (3, 4)))


@pytest.mark.parametrize("build, message", [
    (lambda x: sg.stack([x], axis=3), r"^stack: axis 3 is out of range for an array of 3 dimension\(s\)"),
    (lambda x: sg.split(x, 2, axis=2), r"^split: axis 2 is out of range for an array of 2 dimension\(s\)"),
    (lambda x: sg.roll(x, 1, axis=2), r"^roll: axis 2 is out of range for an array of 2 dimension\(s\)"),
    (lambda x: sg.repeat(x, 2, axis=-3), r"^repeat: axis -3 is out of range for an array of 2 dimension\(s\)"),
    (lambda x: sg.flip(x, 2), r"^flip: axis 2 is out of range for an array of 2 dimension\(s\)"),
    (lambda x: sg.swapaxes(x, 2, 0), r"^swapaxes: axis 2 is out of range for an array of 2 dimension\(s\)"),
    (lambda x: sg.swapaxes(x, 0, -3), r"^swapaxes: axis -3 is out of range for an array of 2 dimension\(s\)"),
    (lambda x: sg.moveaxis(x, 2, 0), r"^moveaxis: axis 2 is out of range for an array of 2 dimension\(s\)"),
    (lambda x: sg.moveaxis(x, 0, 2), r"^moveaxis: axis 2 is out of range for an array of 2 dimension\(s\)"),
    (lambda x: sg.moveaxis(x, (0, -2), (0, 1)), r"^moveaxis: repeated axis in \(0, -2\)"),
    (lambda x: sg.moveaxis(x, (0, 1), (1, -1)), r"^moveaxis: repeated axis in \(1, -1\)"),
])
def test_axes_out_of_range_or_repeated_name_the_builder(build, message):
    with pytest.raises(sg.ShapeError, match=message + HERE):
        build(P("x", (3, 4)))


@pytest.mark.parametrize("build, error, message", [
    (lambda x: sg.stack([]), ValueError, r"^stack: needs at least one input$"),
    (lambda x: sg.pad(x, (1, 2, 3)), ValueError,
     r"^pad: pad_width \(1, 2, 3\) does not fit 2 axes \(give an int, \(before, after\), or one pair per axis\)$"),
    (lambda x: sg.pad(x, 1, constant_values=sg.constant(2.0)), TypeError,
     r"^pad: constant_values must be a number, got "),
    (lambda x: sg.pad(x, 1, constant_values=[1.0, 2.0]), TypeError,
     r"^pad: constant_values must be a number, got \[1\.0, 2\.0\]$"),
    (lambda x: sg.roll(x, (1, 2), axis=0), ValueError,
     r"^roll: give one shift per axis, got shift=\(1, 2\), axis=0$"),
    (lambda x: sg.tril(x[0]), ValueError, r"^tril: needs an array of at least two dimensions, got shape \(4,\)$"),
    (lambda x: sg.clip(x), ValueError, r"^clip: give a_min, a_max or both$"),
])
def test_other_refusals_in_full(build, error, message):
    with pytest.raises(error, match=message):
        build(P("x", (3, 4)))


# -- named (symbolic) sizes: refused where the op needs them, allowed elsewhere -------------------
@pytest.mark.parametrize("shape, build, message", [
    (("n", 4), lambda x: sg.split(x, 2, axis=0), r"^split: needs static sizes along axis \(0,\), got shape \('n', 4\)$"),
    ((4, "n"), lambda x: sg.split(x, 2, axis=-1), r"^split: needs static sizes along axis \(1,\), got shape \(4, 'n'\)$"),
    (("n", 4), lambda x: sg.pad(x, ((0, 0), (1, 0))), r"^pad: needs static sizes, got shape \('n', 4\)$"),
    (("n", 4), lambda x: sg.roll(x, 1), r"^roll: needs static sizes, got shape \('n', 4\)$"),
    (("n", 4), lambda x: sg.roll(x, 1, axis=-2), r"^roll: needs static sizes along axis \(0,\), got shape \('n', 4\)$"),
    (("n", 4), lambda x: sg.tile(x, 2), r"^tile: needs static sizes, got shape \('n', 4\)$"),
    ((2, 3, "m"), lambda x: sg.triu(x), r"^triu: needs static sizes along axis \(1, 2\), got shape \(2, 3, 'm'\)$"),
    ((2, "m", 3), lambda x: sg.tril(x), r"^tril: needs static sizes along axis \(1, 2\), got shape \(2, 'm', 3\)$"),
])
def test_named_sizes_are_refused_where_the_op_needs_them(shape, build, message):
    with pytest.raises(ValueError, match=message):
        build(P("x", shape))


def test_named_sizes_off_the_axes_used_are_fine():
    x = P("x", ("n", 4))
    xv = RNG.normal(size=(2, 4))
    parts = sg.split(x, 2, axis=1)  # a named axis 0 does not stop an equal split of axis 1
    got = codegen.evaluate(parts, {x: xv})
    for g, e in zip(got, np.split(xv, 2, axis=1)):
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(_run(sg.roll(x, 3, axis=1), {x: xv}), np.roll(xv, 3, axis=1))
    y = P("y", ("n", 3, 4))  # a batch axis may be named for triu and tril
    yv = RNG.normal(size=(2, 3, 4))
    np.testing.assert_array_equal(_run(sg.triu(y, 1), {y: yv}), np.triu(yv, 1))
    np.testing.assert_array_equal(_run(sg.tril(y), {y: yv}), np.tril(yv))


# -- values the registry did not reach ------------------------------------------------------------
def test_stack_of_one_input():
    x, xv = _x()
    np.testing.assert_array_equal(_run(sg.stack([x], axis=-1), {x: xv}), np.stack([xv], axis=-1))
    assert sg.stack([x], axis=2).shape == (3, 4, 1)


def test_split_into_one_section_is_the_whole():
    x, xv = _x()
    (part,) = sg.split(x, 1, axis=1)
    np.testing.assert_array_equal(_run(part, {x: xv}), xv)


def test_pad_widths_keep_ints_and_bools_apart_from_floats():
    x, xv = _x()
    np.testing.assert_array_equal(_run(sg.pad(x, ((0, 2), (1, 0)), constant_values=3.0), {x: xv}),
                                  np.pad(xv, ((0, 2), (1, 0)), constant_values=3.0))


def test_roll_of_a_1d_array_without_axis():
    x, xv = _x((5,))
    for shift in (2, -1, 7):
        np.testing.assert_array_equal(_run(sg.roll(x, shift), {x: xv}), np.roll(xv, shift))


def test_roll_of_a_1d_array_without_axis_adds_no_reshape():
    x = P("x", (5,))
    out = sg.roll(x, 2)  # the two slices of x, joined: no reshape to flatten and back
    assert out.op.name == "concatenate" and [i.op.name for i in out.inputs] == ["getitem", "getitem"]
    assert all(i.inputs == (x,) for i in out.inputs)


def test_roll_one_shift_for_two_axes():
    x, xv = _x((3, 4))
    np.testing.assert_array_equal(_run(sg.roll(x, 1, axis=(0, 1)), {x: xv}), np.roll(xv, 1, axis=(0, 1)))
    np.testing.assert_array_equal(_run(sg.roll(x, -2, axis=(1, 0)), {x: xv}), np.roll(xv, -2, axis=(1, 0)))


def test_roll_along_an_empty_axis_and_by_whole_turns_is_x_itself():
    x = P("x", (0, 3))
    assert sg.roll(x, 1, axis=0) is x  # nothing to move: no node (a shift of 1 % 0 would divide by zero)
    np.testing.assert_array_equal(_run(sg.roll(x, 1, axis=0) * 2.0, {x: np.zeros((0, 3))}), np.zeros((0, 3)))
    y = P("y", (3, 4))
    assert sg.roll(y, 8, axis=1) is y


def test_tile_all_ones_all_twos_and_zero():
    x, xv = _x((3, 4))
    for reps in ((2, 2), 1, (1, 1, 1), (2, 0), 0):
        np.testing.assert_array_equal(_run(sg.tile(x, reps) * 1.0, {x: xv}), np.tile(xv, reps))
    assert sg.tile(x, (1, 1, 1)).shape == (1, 3, 4)


def test_tril_default_diagonal():
    x, xv = _x((4, 5))
    np.testing.assert_array_equal(_run(sg.tril(x), {x: xv}), np.tril(xv))
    np.testing.assert_array_equal(_run(sg.tril(x, 1), {x: xv}), np.tril(xv, 1))


def test_clip_with_only_an_upper_bound():
    x, xv = _x((3, 4))
    np.testing.assert_array_equal(_run(sg.clip(x, a_max=0.25), {x: xv}), np.clip(xv, None, 0.25))
    np.testing.assert_array_equal(_run(sg.clip(x, None, 0.25), {x: xv}), np.minimum(xv, 0.25))
