//! `compare x y` on numbers and strings without a call.
//!
//! Elm's `compare` is `_Utils_compare`, an `F2` that calls `_Utils_cmp` and
//! turns its -1, 0 or 1 into `LT`, `EQ` or `GT`; `_Utils_cmp` settles
//! anything that is not an object (numbers, strings; characters in
//! `--optimize` builds) with `===` and `<` before it looks any deeper. So
//! `A2(compare, x, y)`, where `compare` names `_Utils_compare`, becomes that
//! first step in place:
//!
//! `(typeof x !== 'object' ? (x === y ? EQ : x < y ? LT : GT) : compare.f(x, y))`
//!
//! two calls fewer for every comparison of keys in a `Dict`, of a sort's
//! elements, of `compare` in the app's own code. Only when `x` and `y` are
//! reads that run no code (they are read twice; `direct_calls` decides
//! that), `_Utils_compare` and `_Utils_cmp`'s first step are Elm's word for
//! word, and the names it gives `LT`, `EQ` and `GT` are each bound once in
//! the whole program, so that nothing shadows them where the new text goes.
//!
//! And `List.sortWith`'s comparison for `Array.prototype.sort`: Elm's
//! `_List_sortWith` turns the app's `Order` into -1, 0 or 1 with two tests,
//! `ord === EQ ? 0 : ord === LT ? -1 : 1`. In `--optimize` builds `LT`,
//! `EQ` and `GT` are the numbers 0, 1 and 2, so that is `ord - 1`, a few
//! reads fewer for each of the hundreds of comparisons of a sort (wordcount:
//! 0.98x the time). Only where `_List_sortWith` is Elm's word for word with
//! those names, and they are declared as those numbers (a debug build's
//! orders are objects, and are left alone).

use std::collections::HashMap;

use oxc_ast::ast::{
    BindingPattern, Expression, Function, Program, ReturnStatement, VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_semantic::{ScopeFlags, Scoping, SymbolId};

use crate::{bindings, without_whitespace, Edit};

/// Elm 0.19's `_Utils_compare` (its declarator: `var` and `;` are not
/// part of it), without whitespace, around the names of `LT`, `GT` and `EQ`
/// (read from the program itself): `{before}LT:n?GT:EQ{after}`.
const ELM_COMPARE_BEFORE: &str = "_Utils_compare=F2(function(x,y){varn=_Utils_cmp(x,y);returnn<0?";
const ELM_COMPARE_AFTER: &str = ";})";

/// How Elm 0.19's `_Utils_cmp` starts, without whitespace.
const ELM_CMP_START: &str =
    "function_Utils_cmp(x,y,ord){if(typeofx!=='object'){returnx===y?/*EQ*/0:x<y?/*LT*/-1:/*GT*/1;}";

/// Elm 0.19's `_List_sortWith` (its declarator), without whitespace, up
/// to the names of `EQ` and `LT`: `{before}EQ?0:ord===LT{after}`.
const ELM_SORT_WITH_BEFORE: &str = "_List_sortWith=F2(function(f,xs){return_List_fromArray(\
                                    _List_toArray(xs).sort(function(a,b){varord=A2(f,a,b);returnord===";
const ELM_SORT_WITH_AFTER: &str = "?-1:1;}));})";

/// What `_List_sortWith`'s comparison returns instead.
const ORDER_AS_NUMBER: &str = "return ord - 1;";

/// The edit that makes `_List_sortWith`'s comparison `ord - 1`, when the
/// program is Elm's as the module's documentation says; `orders` are the
/// names of `LT`, `EQ` and `GT` that Elm's `_Utils_compare` reads.
fn sort_with(found: &Found, orders: &[String; 3], scoping: &Scoping, source: &str) -> Option<Edit> {
    if bindings(scoping, "_List_sortWith") != 1 {
        return None;
    }
    let [(start, end)] = found.sort_with.as_slice() else {
        return None;
    };
    let [lt, eq, gt] = orders;
    let expected = format!("{ELM_SORT_WITH_BEFORE}{eq}?0:ord==={lt}{ELM_SORT_WITH_AFTER}");
    if without_whitespace(&source[*start..*end]) != expected {
        return None;
    }
    let numbers = [(lt, 0.0), (eq, 1.0), (gt, 2.0)];
    if !numbers
        .iter()
        .all(|(name, n)| found.numbers.get(name.as_str()) == Some(&vec![*n]))
    {
        return None;
    }
    let [(at, to)] = found.order_returns.as_slice() else {
        return None;
    };
    let newlines = "\n".repeat(source[*at..*to].matches('\n').count());
    Some((*at, *to, format!("{ORDER_AS_NUMBER}{newlines}")))
}

/// Elm's `_Utils_compare`, when the program's is Elm's and the rewrite is
/// safe as the module's documentation says.
pub(crate) struct ElmCompare {
    pub(crate) symbol: SymbolId,
    /// The names of `LT`, `EQ` and `GT`, as `_Utils_compare` reads them.
    orders: [String; 3],
    /// The edit that makes `List.sortWith` read orders as numbers, if the
    /// program allows it (found in the same walk).
    pub(crate) sort_with: Option<Edit>,
}

pub(crate) fn elm_compare(
    program: &Program<'_>,
    scoping: &Scoping,
    source: &str,
) -> Option<ElmCompare> {
    if !["_Utils_compare", "_Utils_cmp"]
        .iter()
        .all(|n| bindings(scoping, n) == 1)
    {
        return None;
    }
    let mut found = Found::default();
    found.visit_program(program);
    let [(symbol, start, end)] = found.compare.as_slice() else {
        return None;
    };
    let [(cmp_start, cmp_end)] = found.cmp.as_slice() else {
        return None;
    };
    let compare = without_whitespace(&source[*start..*end]);
    let orders = compare
        .strip_prefix(ELM_COMPARE_BEFORE)?
        .strip_suffix(ELM_COMPARE_AFTER)?;
    let (lt, rest) = orders.split_once(":n?")?;
    let (gt, eq) = rest.split_once(':')?;
    let orders = [lt, eq, gt].map(str::to_string);
    let plain = |name: &String| {
        name.chars()
            .all(|c| c == '$' || c == '_' || c.is_alphanumeric())
    };
    if !orders.iter().all(|n| plain(n) && bindings(scoping, n) == 1) {
        return None;
    }
    if !without_whitespace(&source[*cmp_start..*cmp_end]).starts_with(ELM_CMP_START) {
        return None;
    }
    let sort_with = sort_with(&found, &orders, scoping, source);
    Some(ElmCompare {
        symbol: *symbol,
        orders,
        sort_with,
    })
}

impl ElmCompare {
    /// `compare x y` in place, for a call through `name` (a name for
    /// `_Utils_compare`) with the reads `x` and `y`.
    pub(crate) fn inline(&self, name: &str, x: &str, y: &str) -> String {
        let [lt, eq, gt] = &self.orders;
        format!("(typeof {x} !== 'object' ? ({x} === {y} ? {eq} : {x} < {y} ? {lt} : {gt}) : {name}.f({x}, {y}))")
    }
}

#[derive(Default)]
struct Found {
    /// `_Utils_compare`'s declarators: symbol and span.
    compare: Vec<(SymbolId, usize, usize)>,
    /// `_Utils_cmp`'s declarations: span.
    cmp: Vec<(usize, usize)>,
    /// `_List_sortWith`'s declarators: span.
    sort_with: Vec<(usize, usize)>,
    /// In `_List_sortWith`: the spans of `return` statements of a `? :`.
    order_returns: Vec<(usize, usize)>,
    in_sort_with: bool,
    /// What each name declared as a number literal is declared as.
    numbers: HashMap<String, Vec<f64>>,
}

impl<'a> Visit<'a> for Found {
    fn visit_function(&mut self, func: &Function<'a>, flags: ScopeFlags) {
        if func.id.as_ref().is_some_and(|id| id.name == "_Utils_cmp") {
            self.cmp
                .push((func.span.start as usize, func.span.end as usize));
        }
        walk::walk_function(self, func, flags);
    }

    fn visit_variable_declarator(&mut self, decl: &VariableDeclarator<'a>) {
        let span = (decl.span.start as usize, decl.span.end as usize);
        let mut sort_with = false;
        if let BindingPattern::BindingIdentifier(id) = &decl.id {
            if id.name == "_Utils_compare" {
                self.compare.push((id.symbol_id(), span.0, span.1));
            }
            sort_with = id.name == "_List_sortWith";
            if sort_with {
                self.sort_with.push(span);
            }
            if let Some(Expression::NumericLiteral(n)) = &decl.init {
                let numbers = self.numbers.entry(id.name.to_string()).or_default();
                numbers.push(n.value);
            }
        }
        let inside = self.in_sort_with || sort_with;
        let outer = std::mem::replace(&mut self.in_sort_with, inside);
        walk::walk_variable_declarator(self, decl);
        self.in_sort_with = outer;
    }

    fn visit_return_statement(&mut self, ret: &ReturnStatement<'a>) {
        if self.in_sort_with && matches!(ret.argument, Some(Expression::ConditionalExpression(_))) {
            let span = (ret.span.start as usize, ret.span.end as usize);
            self.order_returns.push(span);
        }
        walk::walk_return_statement(self, ret);
    }
}
