//! What `direct_calls` rewrites and, as much, what it must leave alone.

use elmbox_optimize::optimize as direct_calls;

/// Elm 0.19's helpers as `elm make` writes them, around `body`.
fn elm(body: &str) -> String {
    let mut js = String::from(
        "(function(scope){\n'use strict';\n\
         function F(arity, fun, wrapper) {\n  wrapper.a = arity;\n  wrapper.f = fun;\n  return wrapper;\n}\n",
    );
    for n in 2..=9u8 {
        let params: Vec<String> = (0..n).map(|i| ((b'a' + i) as char).to_string()).collect();
        let list = params.join(", ");
        let mut wrapper = format!("fun({list})");
        for p in params.iter().rev() {
            wrapper = format!("function({p}) {{ return {wrapper}; }}");
        }
        js.push_str(&format!(
            "function F{n}(fun) {{\n  return F({n}, fun, {wrapper});\n}}\n"
        ));
        let curried: String = params.iter().map(|p| format!("({p})")).collect();
        js.push_str(&format!(
            "function A{n}(fun, {list}) {{\n  return fun.a === {n} ? fun.f({list}) : fun{curried};\n}}\n"
        ));
    }
    js.push_str(body);
    js.push_str("\n}(this));\n");
    js
}

/// Asserts that `source` holds each of `expected`.
fn contains_all(source: &str, expected: &[&str]) {
    for text in expected {
        assert!(source.contains(text), "no {text:?} in:\n{source}");
    }
}

#[test]
fn a_known_arity_call_becomes_direct() {
    let js = elm("var add = F2(function (x, y) { return x + y; });\nvar three = A2(add, 1, 2);");
    let out = direct_calls(&js).expect("rewritten");
    assert_eq!(out.direct_calls, 1);
    assert!(
        out.source.contains("var three = add.f(1, 2);"),
        "{}",
        out.source
    );
    // The helpers themselves are untouched.
    assert!(out
        .source
        .contains("return fun.a === 2 ? fun.f(a, b) : fun(a)(b);"));
}

#[test]
fn nested_and_multi_line_calls_keep_their_line_numbers() {
    let js = elm("var add = F2(function (x, y) { return x + y; });\n\
         var pick = F3(function (a, b, c) { return c; });\n\
         var r = A3(\n\tpick,\n\tA2(add, 1, 2),\n\tA2(\n\t\tadd,\n\t\t3,\n\t\t4),\n\t5);");
    let out = direct_calls(&js).expect("rewritten");
    assert_eq!(out.direct_calls, 3);
    assert_eq!(out.source.lines().count(), js.lines().count());
    let squeezed: String = out.source.split_whitespace().collect();
    assert!(
        squeezed.contains("varr=pick.f(add.f(1,2),add.f(3,4),5);"),
        "{}",
        out.source
    );
}

#[test]
fn a_name_for_a_known_arity_function_is_known_too() {
    let js = elm("var add = F2(function (x, y) { return x + y; });\n\
         var plus = add;\n\
         var sum = plus;\n\
         var early = later;\n\
         var later = F2(function (x, y) { return y; });\n\
         var changed = add;\n\
         changed = function (x) { return function (y) { return y; }; };\n\
         var a = A2(sum, 1, 2);\n\
         var b = A2(early, 1, 2);\n\
         var c = A2(changed, 1, 2);");
    let out = direct_calls(&js).expect("rewritten");
    assert_eq!(out.direct_calls, 3);
    contains_all(
        &out.source,
        &[
            // Two steps from `F2`: direct.
            "var a = sum.f(1, 2);",
            // Named before its value is made: `early` is undefined, so the
            // call keeps its test (and fails as it would have).
            "var b = (early.a === 2 ? early.f(1, 2) : early(1)(2));",
            // Assigned again: anything.
            "var c = (changed.a === 2 ? changed.f(1, 2) : changed(1)(2));",
        ],
    );
}

#[test]
fn calls_of_unknown_arity_get_the_test_in_place_and_never_the_direct_form() {
    let js = elm("var add = F2(function (x, y) { return x + y; });\n\
         var one = A3(add, 1, 2, 3);\n\
         function local(add, r) { return A2(add, r.x, 'a'); }\n\
         var moved = F2(function (x, y) { return x; });\n\
         moved = function (x) { return function (y) { return y; }; };\n\
         var two = A2(moved, 1, 2);\n\
         var partial = add(1);\n\
         var three = A2(partial, 1,\n 2);");
    let out = direct_calls(&js).expect("rewritten");
    assert_eq!(out.direct_calls, 4);
    contains_all(
        &out.source,
        &[
            "var one = (add.a === 3 ? add.f(1, 2, 3) : add(1)(2)(3));",
            "return (add.a === 2 ? add.f(r.x, 'a') : add(r.x)('a'));",
            "var two = (moved.a === 2 ? moved.f(1, 2) : moved(1)(2));",
            "var three = (partial.a === 2 ? partial.f(1, 2) : partial(1)(2)\n);",
        ],
    );
    assert_eq!(out.source.lines().count(), js.lines().count());
}

#[test]
fn calls_whose_arguments_run_code_are_left_alone_unless_known() {
    let js = elm("function local(f, g) { return A2(f, g(1), 2) + A2(f, [1], 2) + A2(g.h, 1, 2); }");
    assert_eq!(direct_calls(&js), None);
}

#[test]
fn text_in_strings_and_comments_is_not_code() {
    let js = elm("var add = F2(function (x, y) { return x + y; });\n\
         var s = 'A2(add, 1, 2)'; // A2(add, 1, 2)\n\
         /* A2(add, 1, 2) */ var t = `A2(add, ${1}, 2)`;");
    assert_eq!(direct_calls(&js), None);
}

#[test]
fn helpers_that_are_not_elms_turn_the_rewrite_off() {
    let js = elm("var add = F2(function (x, y) { return x + y; });\nvar three = A2(add, 1, 2);")
        .replace("fun.a === 2 ? fun.f(a, b)", "fun.a === 2 ? fun.g(a, b)");
    assert_eq!(direct_calls(&js), None);
    let twice = elm("var add = F2(function (x, y) { return x + y; });\nvar three = A2(add, 1, 2);\nfunction A2() {}");
    assert_eq!(direct_calls(&twice), None);
}

#[test]
fn text_that_does_not_parse_is_left_to_the_engine() {
    assert_eq!(direct_calls("var x = A2(f, 1,"), None);
    assert_eq!(direct_calls(""), None);
}

/// Nesting deep enough to overflow an 8 MiB stack in oxc's recursive parser
/// and visitors, of every kind measured: the rewrite must come back (with
/// the text as it was, or rewritten), never take the process down.
#[test]
fn deep_nesting_never_overflows_the_stack() {
    // (what opens a level, the innermost value, what closes one, levels)
    let cases: [(&str, &str, &str, usize); 13] = [
        ("(", "1", ")", 200_000),
        ("[", "1", "]", 200_000),
        ("!", "1", "", 200_000),
        ("1+", "1", "", 200_000),
        ("a", "", ".b", 200_000),
        ("f", "", "()", 200_000),
        ("a=>", "1", "", 50_000),
        ("{a:", "1", "}", 50_000),
        ("`${", "1", "}`", 50_000),
        ("new ", "X", "", 50_000),
        ("function(){return ", "1", ";}", 10_000),
        ("class{m(){return ", "1", "}}", 10_000),
        ("(function(){if(1)", "0", "})", 40_000),
    ];
    let cases = cases.map(|(open, inner, close, levels)| {
        format!(
            "var x = {}{inner}{};",
            open.repeat(levels),
            close.repeat(levels)
        )
    });
    for (i, js) in cases.iter().enumerate() {
        // Inside an Elm-shaped program, so the whole rewrite runs.
        let js = elm(&format!(
            "var add = F2(function (x, y) {{ return x + y; }});\nvar three = A2(add, 1, 2);\n{js}"
        ));
        let out = direct_calls(&js);
        assert!(
            out.as_ref().is_none_or(|r| r.direct_calls == 1),
            "case {i}: {out:?}"
        );
    }
}

/// Elm's `compare` in the shape `elm make --optimize` gives it (written for
/// these tests, with shorter names for the orders), named twice as the
/// compiler does.
const COMPARE: &str = "function _Utils_cmp(x, y, ord)\n{\n\
     \tif (typeof x !== 'object')\n\t{\n\
     \t\treturn x === y ? /*EQ*/ 0 : x < y ? /*LT*/ -1 : /*GT*/ 1;\n\t}\n\
     \treturn deeper(x, y);\n}\n\
     var _Utils_compare = F2(function(x, y)\n{\n\
     \tvar n = _Utils_cmp(x, y);\n\
     \treturn n < 0 ? $Basics$LT : n ? $Basics$GT : $Basics$EQ;\n});\n\
     var $Basics$EQ = 1;\nvar $Basics$LT = 0;\nvar $Basics$GT = 2;\n\
     var $Basics$compare = _Utils_compare;\n";

#[test]
fn compare_of_plain_reads_is_settled_in_place_for_numbers_and_strings() {
    let js = elm(&format!(
        "{COMPARE}var a = A2($Basics$compare, key, node.b);\n\
         var b = A2($Basics$compare, f(key), 1);"
    ));
    let out = direct_calls(&js).expect("rewritten");
    assert!(
        out.source.contains(
            "var a = (typeof key !== 'object' ? (key === node.b ? $Basics$EQ : \
             key < node.b ? $Basics$LT : $Basics$GT) : \
             $Basics$compare.f(key, node.b));"
        ),
        "{}",
        out.source
    );
    // An argument that runs code is not read twice: the direct call.
    assert!(
        out.source.contains("var b = $Basics$compare.f(f(key), 1);"),
        "{}",
        out.source
    );
    // The control for the cases below: `a` settled in place.
    let settled =
        |js: &str| direct_calls(js).is_some_and(|out| out.source.contains("var a = (typeof key"));
    assert!(settled(&js));
    for (from, to) in [
        // `_Utils_cmp` that does not settle primitives first.
        ("if (typeof x !== 'object')", "if (typeof x === 'string')"),
        // `compare` that maps the result otherwise.
        ("return n < 0 ?", "return n > 0 ?"),
        // An order that could be shadowed where the new text goes.
        (
            "var $Basics$GT = 2;",
            "var $Basics$GT = 2;\nfunction g($Basics$EQ) {}",
        ),
        // A name for `compare` that is assigned again.
        (
            "var $Basics$compare = _Utils_compare;",
            "var $Basics$compare = _Utils_compare;\n$Basics$compare = null;",
        ),
    ] {
        assert!(js.contains(from), "{from}");
        assert!(!settled(&js.replacen(from, to, 1)), "settled with {to:?}");
    }
}
