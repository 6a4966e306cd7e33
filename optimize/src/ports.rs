//! An app's one outgoing port that does not park on a timer after each batch.
//!
//! Elm 0.19's outgoing-port manager (`_Platform_setupOutgoingPort`) starts
//! on `var init = _Process_sleep(0)`, hands each batch's values to the
//! port's subscribers at once, and then returns `init` again: a
//! `setTimeout(…, 0)` that it waits out before it takes the next batch.
//! Every event an app answers pays for that timer and for the scheduler's
//! steps around it (a binding, a callback, a wake): about an eighth of a
//! small app's event.
//!
//! Here the manager returns the value the sleep ends with,
//! `_Scheduler_succeed(_Utils_Tuple0)`, without the sleep; it still starts
//! on the sleep. Why that changes nothing an app's host can see:
//! - The first sleep stays, and it is the one that matters: `init`'s
//!   commands are sent while `Elm.Main.init` runs, before the host has
//!   subscribed to the port, and the manager only hands them over after a
//!   timer, once the host has.
//! - elmbox runs every timer due at the current instant before a call
//!   returns, so the later sleeps delivered nothing in a later call than
//!   the one that sent it: without them, values come out in the same call.
//! - One port's values come out in the order they were sent either way (the
//!   manager's mailbox is first in, first out).
//! - With two outgoing ports or more the order *between* ports can change:
//!   batches queued while the managers sleep at the start come out port by
//!   port instead of batch by batch. So the rewrite is made only when the
//!   program has exactly one outgoing port (most elmbox apps: `respond`).
//!
//! Only Elm's own code is touched: `_Process_sleep` and `_Scheduler_succeed`
//! must be Elm's word for word; `init` must be read exactly twice, as the
//! manager's first state (`….b = init`) and as what the manager's
//! `….c = F3(function …)` returns; `_Platform_outgoingPort` must be called
//! once and be the one user of `_Platform_setupOutgoingPort`; and no name
//! involved may be bound twice anywhere in the program, so none is shadowed
//! where the new text goes.

use std::collections::{HashMap, HashSet};

use oxc_ast::ast::{
    Argument, ArrowFunctionExpression, AssignmentExpression, AssignmentTarget, BindingPattern,
    CallExpression, Expression, Function, IdentifierReference, Program, ReturnStatement,
    VariableDeclarator,
};
use oxc_ast_visit::{walk, Visit};
use oxc_semantic::{ReferenceId, ScopeFlags, Scoping, SymbolId};

use crate::{bindings, without_whitespace, Edit};

/// Elm 0.19's `_Process_sleep`, without whitespace.
const ELM_SLEEP: &str = "function_Process_sleep(time){return_Scheduler_binding(function(callback){\
                         varid=setTimeout(function(){callback(_Scheduler_succeed(_Utils_Tuple0));},time);\
                         returnfunction(){clearTimeout(id);};});}";

/// Elm 0.19's `_Scheduler_succeed`, without whitespace.
const ELM_SUCCEED: &str = "function_Scheduler_succeed(value){return{$:0,a:value};}";

/// What the manager returns instead of `init`: the task the sleep ends with.
const AWAKE: &str = "_Scheduler_succeed(_Utils_Tuple0)";

/// The functions whose declarations the rewrite checks.
const FUNCTIONS: [&str; 4] = [
    "_Process_sleep",
    "_Scheduler_succeed",
    "_Platform_outgoingPort",
    "_Platform_setupOutgoingPort",
];

/// The one edit that makes the outgoing-port manager take its next batch at
/// once; `None` unless the program is Elm's, with one outgoing port, as the
/// module's documentation says.
pub(crate) fn without_sleep(
    program: &Program<'_>,
    scoping: &Scoping,
    source: &str,
) -> Option<Edit> {
    let mut found = Found::default();
    found.visit_program(program);

    let bound_once = |name: &str| bindings(scoping, name) == 1;
    let unbound = |name: &str| bindings(scoping, name) == 0;
    let once = FUNCTIONS
        .iter()
        .chain(&["_Utils_Tuple0"])
        .all(|n| bound_once(n));
    if !once || !unbound("setTimeout") || !unbound("clearTimeout") || !found.tuple0_declared {
        return None;
    }
    let only = |name: &str| match found.functions.get(name).map(Vec::as_slice) {
        Some([one]) => Some(*one),
        _ => None,
    };
    let text = |(_, start, end): (SymbolId, usize, usize)| without_whitespace(&source[start..end]);
    let sleep = only("_Process_sleep")?;
    if text(sleep) != ELM_SLEEP || text(only("_Scheduler_succeed")?) != ELM_SUCCEED {
        return None;
    }
    // One outgoing port: `_Platform_outgoingPort` called once, and the one
    // place that makes a manager with `_Platform_setupOutgoingPort`.
    let reads = |symbol: SymbolId| scoping.get_resolved_reference_ids(symbol);
    let [port] = reads(only("_Platform_outgoingPort")?.0) else {
        return None;
    };
    let [setup] = reads(only("_Platform_setupOutgoingPort")?.0) else {
        return None;
    };
    if !found.port_calls.contains(port) || !found.setup_in_port.contains(setup) {
        return None;
    }

    // `var init = _Process_sleep(0)`, read as the manager's first state and
    // as what it returns, and nowhere else.
    let [init] = found.sleeps.as_slice() else {
        return None;
    };
    if scoping.get_reference(init.callee).symbol_id() != Some(sleep.0) {
        return None;
    }
    if scoping.symbol_is_mutated(init.symbol)
        || !scoping.symbol_redeclarations(init.symbol).is_empty()
    {
        return None;
    }
    let [first_state] = found.first_states.as_slice() else {
        return None;
    };
    let [(returned, start, end)] = found.returned.as_slice() else {
        return None;
    };
    let mut expected = [*first_state, *returned];
    expected.sort();
    let mut actual = reads(init.symbol).to_vec();
    actual.sort();
    (actual == expected).then(|| (*start, *end, AWAKE.to_string()))
}

/// `var init = _Process_sleep(0)` directly inside `_Platform_setupOutgoingPort`.
struct Sleep {
    symbol: SymbolId,
    callee: ReferenceId,
}

#[derive(Default)]
struct Found {
    /// Declarations of [`FUNCTIONS`], with their spans.
    functions: HashMap<String, Vec<(SymbolId, usize, usize)>>,
    tuple0_declared: bool,
    /// How deep in `_Platform_setupOutgoingPort` the walk is (0: outside,
    /// 1: in its own body).
    in_setup: usize,
    /// Whether the walk is inside `_Platform_outgoingPort`.
    in_port: usize,
    sleeps: Vec<Sleep>,
    /// Reads in `….b = name` in the setup function's own body.
    first_states: Vec<ReferenceId>,
    /// Reads in `return name` in the function of `….c = F3(function …)` in
    /// the setup function's own body, with their spans.
    returned: Vec<(ReferenceId, usize, usize)>,
    /// Calls `_Platform_outgoingPort(…)`, by the callee's reference.
    port_calls: HashSet<ReferenceId>,
    /// Reads of `_Platform_setupOutgoingPort` inside `_Platform_outgoingPort`.
    setup_in_port: HashSet<ReferenceId>,
}

impl<'a> Visit<'a> for Found {
    fn visit_function(&mut self, func: &Function<'a>, flags: ScopeFlags) {
        let name = func.id.as_ref().map(|id| id.name.as_str());
        if let (Some(name), Some(id)) = (name, &func.id) {
            if FUNCTIONS.contains(&name) {
                self.functions.entry(name.to_string()).or_default().push((
                    id.symbol_id(),
                    func.span.start as usize,
                    func.span.end as usize,
                ));
            }
        }
        let setup = usize::from(name == Some("_Platform_setupOutgoingPort") || self.in_setup > 0);
        let port = usize::from(name == Some("_Platform_outgoingPort") || self.in_port > 0);
        self.in_setup += setup;
        self.in_port += port;
        walk::walk_function(self, func, flags);
        self.in_setup -= setup;
        self.in_port -= port;
    }

    fn visit_arrow_function_expression(&mut self, arrow: &ArrowFunctionExpression<'a>) {
        let setup = usize::from(self.in_setup > 0);
        self.in_setup += setup;
        walk::walk_arrow_function_expression(self, arrow);
        self.in_setup -= setup;
    }

    fn visit_identifier_reference(&mut self, id: &IdentifierReference<'a>) {
        if self.in_port > 0 && id.name == "_Platform_setupOutgoingPort" {
            self.setup_in_port.insert(id.reference_id());
        }
    }

    fn visit_call_expression(&mut self, call: &CallExpression<'a>) {
        if let Expression::Identifier(callee) = &call.callee {
            if callee.name == "_Platform_outgoingPort" && !call.optional {
                self.port_calls.insert(callee.reference_id());
            }
        }
        walk::walk_call_expression(self, call);
    }

    fn visit_variable_declarator(&mut self, decl: &VariableDeclarator<'a>) {
        if let BindingPattern::BindingIdentifier(id) = &decl.id {
            if id.name == "_Utils_Tuple0" {
                self.tuple0_declared = true;
            }
            if let (1, "init", Some(Expression::CallExpression(call))) =
                (self.in_setup, id.name.as_str(), &decl.init)
            {
                let zero = matches!(
                    call.arguments.as_slice(),
                    [Argument::NumericLiteral(n)] if n.value == 0.0
                );
                if let (Expression::Identifier(callee), true, false) =
                    (&call.callee, zero, call.optional)
                {
                    if callee.name == "_Process_sleep" {
                        self.sleeps.push(Sleep {
                            symbol: id.symbol_id(),
                            callee: callee.reference_id(),
                        });
                    }
                }
            }
        }
        walk::walk_variable_declarator(self, decl);
    }

    fn visit_assignment_expression(&mut self, assign: &AssignmentExpression<'a>) {
        if let (1, AssignmentTarget::StaticMemberExpression(member)) = (self.in_setup, &assign.left)
        {
            match (member.property.name.as_str(), &assign.right) {
                ("b", Expression::Identifier(read)) => self.first_states.push(read.reference_id()),
                ("c", Expression::CallExpression(call)) => {
                    let curried =
                        matches!(&call.callee, Expression::Identifier(f) if f.name == "F3");
                    if let (true, [Argument::FunctionExpression(manager)]) =
                        (curried, call.arguments.as_slice())
                    {
                        let mut returns = Returns::default();
                        if let Some(body) = &manager.body {
                            returns.visit_function_body(body);
                        }
                        self.returned.extend(returns.names);
                    }
                }
                _ => {}
            }
        }
        walk::walk_assignment_expression(self, assign);
    }
}

/// `return name;` in one function body, not in functions inside it: the
/// read and its span.
#[derive(Default)]
struct Returns {
    names: Vec<(ReferenceId, usize, usize)>,
}

impl<'a> Visit<'a> for Returns {
    fn visit_function(&mut self, _: &Function<'a>, _: ScopeFlags) {}

    fn visit_arrow_function_expression(&mut self, _: &ArrowFunctionExpression<'a>) {}

    fn visit_return_statement(&mut self, ret: &ReturnStatement<'a>) {
        if let Some(Expression::Identifier(name)) = &ret.argument {
            let span = name.span;
            self.names
                .push((name.reference_id(), span.start as usize, span.end as usize));
        }
    }
}
