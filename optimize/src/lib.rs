//! # elmbox-optimize
//!
//! Elm-aware rewriting of `elm make` output before elmbox evaluates it.
//!
//! Elm calls every function of two or more arguments through `A2`…`A9`:
//! `A2(f, x, y)` is `f.a === 2 ? f.f(x, y) : f(x)(y)`, and `F2(g)` makes the
//! `f` with `f.a = 2` and `f.f = g`. [`direct_calls`] saves the call to
//! `A2` (one JavaScript call of two; on an interpreter, a few percent of an
//! event, docs/PERFORMANCE.md) in two ways:
//! - when `f` is a variable whose only value is `F2(…)` (declared so, never
//!   assigned), the test always passes: `f.f(x, y)`, the same call with the
//!   same `this`;
//! - otherwise, when `f` is a name and `x` and `y` are names, literals or a
//!   name's property: `(f.a === 2 ? f.f(x, y) : f(x)(y))`, `A2`'s body in
//!   place (reading `f.a` before `x` and `y` changes nothing, as reading
//!   them runs no code).
//!
//! Safety comes from a real parser and scope analysis (oxc), not text
//! matching: only calls whose `A2`…`A9` and whose `f` resolve to the
//! program's own definitions are touched, and only when `F`, `F2`…`F9` and
//! `A2`…`A9` are Elm's (their text is checked). Anything else is left as it
//! was. Removed text is replaced by as many newlines as it held, so every
//! line keeps its number.
//!
//! oxc's parser, scope analysis and visitors recurse once per level of
//! nesting, so text nested deeply enough (200,000 parentheses) would
//! overflow any fixed stack and abort the process: hostile text must not be
//! able to do that to a host serving many apps. So the work runs on a thread
//! of its own whose stack is sized from the text ([`stack_for`]), and text
//! that would need more than [`MAX_STACK`] is left as it is.

use std::collections::HashMap;

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    Argument, BindingPattern, CallExpression, Expression, Function, VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_parser::Parser;
use oxc_semantic::{ScopeFlags, Scoping, SemanticBuilder, SymbolId};
use oxc_span::{GetSpan, SourceType};

/// The rewritten program, and how many calls no longer go through
/// `A2`…`A9` (made direct or with `A<n>`'s body in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub source: String,
    pub direct_calls: usize,
}

/// Makes Elm's known-arity calls direct. `None` when there is nothing to do:
/// the text does not parse as a script, or is not Elm output with Elm's own
/// helpers, or has no such call. The caller then runs the source unchanged.
pub fn direct_calls(source: &str) -> Option<Rewritten> {
    let stack = stack_for(source)?;
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("elmbox-optimize".into())
            .stack_size(stack)
            .spawn_scoped(scope, || rewrite(source))
            .ok()?
            .join()
            .ok()?
    })
}

/// The largest stack [`direct_calls`] reserves: address space, of which only
/// the pages a parse reaches are ever touched (~20 MiB reserved for a
/// 60 KB app, ~130 MiB for a 700 KB one, a few hundred KiB used).
pub const MAX_STACK: usize = 1 << 30;

/// Stack bytes reserved per character that can open a level of nesting.
/// The worst measured (release build, every kind of nesting: brackets,
/// unary and binary chains, member and call chains, templates, classes,
/// default parameters, destructuring) is ~1.6 KiB per such character, for
/// parentheses; this leaves 2.5x room.
const STACK_PER_LEVEL: usize = 4 << 10;

/// A stack that is enough for any parse of `source`, or `None` past
/// [`MAX_STACK`]. Every level of recursion in the parser and the visitors
/// consumes at least one of these characters or keywords somewhere in the
/// text, so their total count bounds the depth (very loosely: strings and
/// comments count too, which only errs on the safe side).
pub fn stack_for(source: &str) -> Option<usize> {
    const OPENERS: &[u8] = b"([{`!~-+?=:*.%/<>&|^";
    const KEYWORDS: [&str; 6] = ["new", "typeof", "void", "delete", "yield", "in"];
    let characters = source.bytes().filter(|b| OPENERS.contains(b)).count();
    let keywords: usize = KEYWORDS.iter().map(|k| source.matches(k).count()).sum();
    let levels = characters + keywords;
    let stack = levels.checked_mul(STACK_PER_LEVEL)?.checked_add(1 << 20)?;
    (stack <= MAX_STACK).then_some(stack)
}

fn rewrite(source: &str) -> Option<Rewritten> {
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::script()).parse();
    if parsed.panicked || !parsed.diagnostics.is_empty() {
        return None;
    }
    let program = parsed.program;
    let semantic = SemanticBuilder::new().build(&program);
    if !semantic.diagnostics.is_empty() {
        return None;
    }
    let scoping = semantic.semantic.scoping();

    let mut found = Found {
        source,
        ..Found::default()
    };
    found.visit_program(&program);
    let helpers = found.helpers(source)?;

    let mut edits: Vec<(usize, usize, String)> = Vec::new();
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
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(source.len());
    let mut at = 0;
    for (start, end, text) in &edits {
        // Edits never overlap (each ends where the call's second argument
        // starts, and nested calls sit inside arguments), but check anyway.
        if *start < at {
            return None;
        }
        out.push_str(&source[at..*start]);
        out.push_str(text);
        at = *end;
    }
    out.push_str(&source[at..]);
    Some(Rewritten {
        source: out,
        direct_calls: edits.len(),
    })
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

fn without_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
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
    fn curried_arity(&self, scoping: &Scoping, helpers: &Helpers, symbol: SymbolId) -> Option<u32> {
        let (callee, n) = *self.curried.get(&symbol)?;
        let callee = scoping.get_reference(callee).symbol_id()?;
        if helpers.curry.get(&callee) != Some(&n) || scoping.symbol_is_mutated(symbol) {
            return None;
        }
        // One declaration only: `var f = F2(…); var f = …;` declares twice.
        if !scoping.symbol_redeclarations(symbol).is_empty() {
            return None;
        }
        Some(n)
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
