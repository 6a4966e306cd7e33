//! Elm's known-arity calls made direct: `A2(f, x, y)` as `f.f(x, y)` when
//! `f` is only ever `F2(…)`, otherwise with `A2`'s body in place (lib.rs
//! tells why and when).

use std::collections::HashMap;

use oxc_ast::ast::{
    Argument, BindingPattern, CallExpression, Expression, Function, Program, VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_semantic::{ScopeFlags, Scoping, SymbolId};
use oxc_span::GetSpan;

use crate::comparisons::ElmCompare;
use crate::{without_whitespace, Edit};

/// The edits that make the program's known-arity calls direct; none unless
/// its `F`, `F2`…`F9` and `A2`…`A9` are Elm's.
pub(crate) fn edits(
    program: &Program<'_>,
    scoping: &Scoping,
    source: &str,
    compare: Option<&ElmCompare>,
) -> Vec<Edit> {
    let mut found = Found {
        source,
        ..Found::default()
    };
    found.visit_program(program);
    let Some(helpers) = found.helpers(source) else {
        return Vec::new();
    };

    let mut edits: Vec<Edit> = Vec::new();
    for call in &found.calls {
        let Some(apply) = scoping.get_reference(call.apply).symbol_id() else {
            continue;
        };
        if helpers.apply.get(&apply) != Some(&call.arity) {
            continue;
        }
        let Some(target) = scoping.get_reference(call.target).symbol_id() else {
            continue;
        };
        if let (Some(compare), Some([x, y])) = (compare, call.simple_arguments.as_deref()) {
            if found.origin(scoping, target) == Some(compare.symbol) {
                let removed = &source[call.start..call.end];
                let newlines = "\n".repeat(removed.matches('\n').count());
                let inline = compare.inline(&call.target_name, x, y);
                edits.push((call.start, call.end, format!("{inline}{newlines}")));
                continue;
            }
        }
        if found.curried_arity(scoping, &helpers, target) != Some(call.arity) {
            // `A2(f, x, y)` -> `(f.a === 2 ? f.f(x, y) : f(x)(y))`: A2's own
            // body in place. Only when x and y are reads that cannot run
            // code (so reading `f.a` before them changes nothing) and are
            // short (they are written twice; a nested call never is).
            if let Some(args) = &call.simple_arguments {
                let (f, n) = (&call.target_name, call.arity);
                let list = args.join(", ");
                let curried: String = args.iter().map(|a| format!("({a})")).collect();
                let removed = &source[call.start..call.end];
                let newlines = "\n".repeat(removed.matches('\n').count());
                edits.push((
                    call.start,
                    call.end,
                    format!("({f}.a === {n} ? {f}.f({list}) : {f}{curried}{newlines})"),
                ));
            }
            continue;
        }
        // `A2(f, x, y)` -> `f.f(x, y)`: everything from `A2` up to `x` goes.
        let removed = &source[call.start..call.second_argument];
        let newlines = "\n".repeat(removed.matches('\n').count());
        edits.push((
            call.start,
            call.second_argument,
            format!("{}.f({newlines}", call.target_name),
        ));
    }
    edits
}

/// What one walk over the program finds.
#[derive(Default)]
struct Found<'s> {
    source: &'s str,
    /// Function declarations by name: F, F2…F9, A2…A9, with their symbols
    /// and text spans.
    functions: HashMap<String, Vec<(SymbolId, usize, usize)>>,
    /// Variables initialised with a call to an `F<n>`-named function: the
    /// variable's symbol, the callee's reference and n.
    curried: HashMap<SymbolId, (oxc_semantic::ReferenceId, u32)>,
    /// Variables initialised with a name: the variable's symbol and the
    /// name's reference.
    aliases: HashMap<SymbolId, oxc_semantic::ReferenceId>,
    /// Calls of an `A<n>`-named function with n + 1 plain arguments, the
    /// first a name.
    calls: Vec<Call>,
}

struct Call {
    start: usize,
    end: usize,
    /// The arguments after the function, as text, when each is a name, a
    /// literal or a name's property: reads that run no code in Elm output
    /// (its values have no getters), safe to write twice.
    simple_arguments: Option<Vec<String>>,
    second_argument: usize,
    arity: u32,
    apply: oxc_semantic::ReferenceId,
    target: oxc_semantic::ReferenceId,
    target_name: String,
}

/// How many `var g = f;` steps [`Found::origin`] follows.
const MAX_ALIASES: usize = 8;

/// The symbols of Elm's own `F<n>` and `A<n>`, by arity.
struct Helpers {
    curry: HashMap<SymbolId, u32>,
    apply: HashMap<SymbolId, u32>,
}

/// `F2` -> 2, `A9` -> 9, for the given prefix letter.
fn helper_arity(name: &str, prefix: char) -> Option<u32> {
    let digit = name.strip_prefix(prefix)?;
    match digit.parse::<u32>() {
        Ok(n @ 2..=9) if digit.len() == 1 => Some(n),
        _ => None,
    }
}

/// Elm 0.19's `A<n>`, without whitespace.
fn elm_apply(n: u32) -> String {
    let params: Vec<String> = (0..n)
        .map(|i| ((b'a' + i as u8) as char).to_string())
        .collect();
    let list = params.join(",");
    let curried: String = params.iter().map(|p| format!("({p})")).collect();
    format!("functionA{n}(fun,{list}){{returnfun.a==={n}?fun.f({list}):fun{curried};}}")
}

impl Found<'_> {
    /// Elm's helpers, if the program's are Elm's: each defined exactly once,
    /// `F` and `A<n>` word for word, `F<n>` starting `return F(n, fun, …`.
    fn helpers(&self, source: &str) -> Option<Helpers> {
        let only = |name: &str| match self.functions.get(name).map(Vec::as_slice) {
            Some([one]) => Some(*one),
            _ => None,
        };
        let text =
            |(_, start, end): (SymbolId, usize, usize)| without_whitespace(&source[start..end]);
        let f = only("F")?;
        if text(f) != "functionF(arity,fun,wrapper){wrapper.a=arity;wrapper.f=fun;returnwrapper;}" {
            return None;
        }
        let mut helpers = Helpers {
            curry: HashMap::new(),
            apply: HashMap::new(),
        };
        for n in 2..=9 {
            let curry = only(&format!("F{n}"))?;
            if !text(curry).starts_with(&format!("functionF{n}(fun){{returnF({n},fun,function(")) {
                return None;
            }
            helpers.curry.insert(curry.0, n);
            let apply = only(&format!("A{n}"))?;
            if text(apply) != elm_apply(n) {
                return None;
            }
            helpers.apply.insert(apply.0, n);
        }
        Some(helpers)
    }

    /// n when `symbol` is a variable whose only value is Elm's `F<n>(…)`.
    /// Also through aliases (Elm output names many functions twice:
    /// `compare` is `var <Basics' compare> = _Utils_compare;`).
    fn curried_arity(&self, scoping: &Scoping, helpers: &Helpers, symbol: SymbolId) -> Option<u32> {
        let (callee, n) = *self.curried.get(&self.origin(scoping, symbol)?)?;
        let callee = scoping.get_reference(callee).symbol_id()?;
        (helpers.curry.get(&callee) == Some(&n)).then_some(n)
    }

    /// The variable `symbol` always holds the value of: itself, or what it
    /// names through aliases (`var g = f;`), each declared once, never
    /// assigned, and after what it names. `None` if any step is not so.
    fn origin(&self, scoping: &Scoping, symbol: SymbolId) -> Option<SymbolId> {
        let mut symbol = symbol;
        for _ in 0..MAX_ALIASES {
            // One declaration only (`var f = F2(…); var f = …;` declares
            // twice), never assigned.
            if scoping.symbol_is_mutated(symbol)
                || !scoping.symbol_redeclarations(symbol).is_empty()
            {
                return None;
            }
            let Some(&alias) = self.aliases.get(&symbol) else {
                return Some(symbol);
            };
            let named = scoping.get_reference(alias).symbol_id()?;
            if scoping.symbol_span(named).start >= scoping.symbol_span(symbol).start {
                return None;
            }
            symbol = named;
        }
        None
    }
}

impl<'a> Visit<'a> for Found<'_> {
    fn visit_function(&mut self, func: &Function<'a>, flags: ScopeFlags) {
        if let Some(id) = &func.id {
            let name = id.name.as_str();
            if name == "F" || helper_arity(name, 'F').is_some() || helper_arity(name, 'A').is_some()
            {
                self.functions.entry(name.to_string()).or_default().push((
                    id.symbol_id(),
                    func.span.start as usize,
                    func.span.end as usize,
                ));
            }
        }
        walk::walk_function(self, func, flags);
    }

    fn visit_variable_declarator(&mut self, decl: &VariableDeclarator<'a>) {
        if let (BindingPattern::BindingIdentifier(id), Some(Expression::CallExpression(init))) =
            (&decl.id, &decl.init)
        {
            if let Expression::Identifier(callee) = &init.callee {
                if let Some(n) = helper_arity(callee.name.as_str(), 'F') {
                    if init.arguments.len() == 1 && !init.optional {
                        self.curried
                            .insert(id.symbol_id(), (callee.reference_id(), n));
                    }
                }
            }
        }
        if let (BindingPattern::BindingIdentifier(id), Some(Expression::Identifier(named))) =
            (&decl.id, &decl.init)
        {
            self.aliases.insert(id.symbol_id(), named.reference_id());
        }
        walk::walk_variable_declarator(self, decl);
    }

    fn visit_call_expression(&mut self, call: &CallExpression<'a>) {
        if let Some(found) = Self::apply_call(call, self.source) {
            self.calls.push(found);
        }
        walk::walk_call_expression(self, call);
    }
}

impl Found<'_> {
    fn apply_call(call: &CallExpression<'_>, source: &str) -> Option<Call> {
        let Expression::Identifier(apply) = &call.callee else {
            return None;
        };
        let arity = helper_arity(apply.name.as_str(), 'A')?;
        if call.optional || call.arguments.len() != arity as usize + 1 {
            return None;
        }
        if call
            .arguments
            .iter()
            .any(|a| matches!(a, Argument::SpreadElement(_)))
        {
            return None;
        }
        let Argument::Identifier(target) = &call.arguments[0] else {
            return None;
        };
        let simple = |a: &Argument<'_>| match a {
            Argument::Identifier(_)
            | Argument::NumericLiteral(_)
            | Argument::StringLiteral(_)
            | Argument::BooleanLiteral(_)
            | Argument::NullLiteral(_) => true,
            Argument::StaticMemberExpression(m) => matches!(m.object, Expression::Identifier(_)),
            _ => false,
        };
        let simple_arguments = call.arguments[1..].iter().all(simple).then(|| {
            call.arguments[1..]
                .iter()
                .map(|a| source[a.span().start as usize..a.span().end as usize].to_string())
                .collect()
        });
        Some(Call {
            start: call.span.start as usize,
            end: call.span.end as usize,
            simple_arguments,
            second_argument: call.arguments[1].span().start as usize,
            arity,
            apply: apply.reference_id(),
            target: target.reference_id(),
            target_name: target.name.to_string(),
        })
    }
}
