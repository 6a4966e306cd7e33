//! Effect managers that take a message the moment it is sent to them.
//!
//! Elm runs every effect manager (each port, `Task`, `Time`, `Http`…) as a
//! process of its scheduler, parked in a `receive` between messages. Each
//! event an app handles sends every manager a message
//! (`_Platform_dispatchEffects` → `_Scheduler_rawSend`), and each message
//! costs the manager a trip through the scheduler's queue and four of its
//! steps: the mailbox's message goes to the manager's `onEffects`, whose
//! result (almost always `Task.succeed state`) goes to the manager's
//! `loop`, which allocates a new `receive` (and the closure holding the
//! state) and an `andThen` for it, and the process parks again. On a
//! counter that is half of an event's time spent in Elm's runtime.
//!
//! The rewrite makes two edits to Elm's runtime:
//! - `_Platform_instantiateManager` makes one `receive` task per manager,
//!   for its whole life, whose callback reads the state from a variable
//!   that `loop` sets (one process per manager runs `loop`, and `loop`
//!   is always called right before its `receive` is reached), and gives
//!   the manager's process `elmboxDeliver`: when the scheduler is idle and
//!   the process is parked in that `receive` with an empty mailbox, it runs
//!   the callback at once and, when that returns `succeed`, keeps the new
//!   state, which is where four steps would have left the process (parked
//!   in the same `receive`, under a stack frame for `loop`). Any other
//!   result continues in `_Scheduler_step`, exactly where the step that
//!   ran the callback would have; any other situation (the scheduler
//!   busy, the process not parked there) takes the ordinary way, as would
//!   a message already waiting, which an idle scheduler never leaves.
//! - `_Scheduler_rawSend` hands the message to `elmboxDeliver` when the
//!   process has one.
//!
//! As in `_Scheduler_enqueue`, `_Scheduler_working` is set while the
//! callback runs, so whatever it sends to other processes waits in the
//! queue, and the queue is drained before it is cleared; and messages that
//! reach this manager meanwhile are taken before anything queued, as the
//! step that would have parked it again takes them.
//!
//! Only Elm's own runtime is touched: each function the new code stands on
//! (`_Scheduler_receive`, `_Scheduler_andThen`, `_Scheduler_rawSpawn`,
//! `_Scheduler_rawSend`, `_Scheduler_enqueue`, `_Scheduler_step`,
//! `_Platform_instantiateManager`) must be bound once in the program and
//! be Elm's word for word (checked by a SHA-256 of its text without
//! whitespace, as `elm make` 0.19.1 writes elm/core 1.0.5's runtime), and so
//! must the declarations of `_Scheduler_working` and `_Scheduler_queue`.

use std::collections::HashMap;

use oxc_ast::ast::{BindingPattern, Function, Program, VariableDeclarator};
use oxc_ast_visit::{walk, Visit};
use oxc_semantic::{ScopeFlags, Scoping};
use sha2::{Digest, Sha256};

use crate::{bindings, without_whitespace, Edit};

/// What Elm's runtime must hold, each name with the SHA-256 (hex) of its
/// declaration's text without whitespace: `function name(…){…}` for a
/// function, `name=…` for a variable.
const ELM: [(&str, &str); 9] = [
    (
        "_Scheduler_receive",
        "5714015eb2a4b90af3602a4bff7db53bf1febc1eeccd9a7c57f31884802411e7",
    ),
    (
        "_Scheduler_andThen",
        "b55171fbf949ac602debb52fc01c1e4a3d19f47a850a3e45b057e4e2416419f4",
    ),
    (
        "_Scheduler_rawSpawn",
        "51c853b2f2b632459b0a19457eee680a299748ca41d98328eebff6217a23468c",
    ),
    (
        "_Scheduler_rawSend",
        "28f98db3e95414e37ce7ee500005a2c35f74c22f800ebb3c4a666fb9da29710a",
    ),
    (
        "_Scheduler_enqueue",
        "d231a6d97d22a09f9775c12f38b68f4e71980307d4cf48c6e0aaa9d3a5a618e0",
    ),
    (
        "_Scheduler_step",
        "99209adf419848741a3b3b6c5796c2e01b153a462fc1e3de165fc1a36274ef43",
    ),
    (
        "_Scheduler_working",
        "1a7c1e53076c0c2ca3b31cd142e8b50dfaa039e45442b6f2d938481a41b2ab20",
    ),
    (
        "_Scheduler_queue",
        "9cb645f4ab4d52fa56470aea5eacffd72ca766b3254747f0094d9a0b22e32394",
    ),
    (
        "_Platform_instantiateManager",
        "57b03f011a1b1f6b3a6d4d83210e1dcd20d947cce0956fa01cf010581e6f13be",
    ),
];

/// The new `_Platform_instantiateManager`. No `//` comments: it may have to
/// be written on fewer lines than it has (see [`fit_lines`]).
const INSTANTIATE: &str = "function _Platform_instantiateManager(info, sendToApp)
{
	var router = { g: sendToApp, h: undefined };
	var onEffects = info.c;
	var onSelfMsg = info.d;
	var cmdMap = info.e;
	var subMap = info.f;
	/* elmbox: one receive for the manager's life, and elmboxDeliver (elmbox-optimize, managers.rs) */
	var state;
	var receive = _Scheduler_receive(function(msg)
	{
		var value = msg.a;
		if (msg.$ === 0) { return A3(onSelfMsg, router, value, state); }
		if (cmdMap && subMap) { return A4(onEffects, router, value.i, value.j, state); }
		return A3(onEffects, router, cmdMap ? value.i : value.j, state);
	});
	var next = A2(_Scheduler_andThen, loop, receive);
	function loop(newState) { state = newState; return next; }
	var proc = router.h = _Scheduler_rawSpawn(A2(_Scheduler_andThen, loop, info.b));
	proc.elmboxDeliver = function(msg)
	{
		if (_Scheduler_working || proc.f !== receive || proc.h.length) { proc.h.push(msg); _Scheduler_enqueue(proc); return; }
		_Scheduler_working = true;
		var task = receive.b(msg);
		if (task && task.$ === 0) { state = task.a; if (proc.h.length) { _Scheduler_step(proc); } }
		else { proc.f = task; _Scheduler_step(proc); }
		for (var queued; queued = _Scheduler_queue.shift(); ) { _Scheduler_step(queued); }
		_Scheduler_working = false;
	};
	return proc;
}";

/// What `_Scheduler_rawSend` does first.
const SEND_FIRST: &str = " if (proc.elmboxDeliver) { proc.elmboxDeliver(msg); return; }";

/// The two edits, and the span of `_Platform_instantiateManager` (which
/// other rewrites must leave alone, as its text is replaced); `None` unless
/// the runtime is Elm's, as the module's documentation says.
pub(crate) fn direct_delivery(
    program: &Program<'_>,
    scoping: &Scoping,
    source: &str,
) -> Option<(Vec<Edit>, (usize, usize))> {
    let mut found = Found::default();
    found.visit_program(program);
    for (name, fingerprint) in ELM {
        let [declaration] = found.declarations.get(name).map(Vec::as_slice)? else {
            return None;
        };
        if bindings(scoping, name) != 1
            || sha256(&without_whitespace(
                &source[declaration.start..declaration.end],
            )) != fingerprint
        {
            return None;
        }
    }
    let instantiate = found.declarations["_Platform_instantiateManager"][0];
    let send = found.declarations["_Scheduler_rawSend"][0];
    let removed = &source[instantiate.start..instantiate.end];
    let replaced = fit_lines(INSTANTIATE, removed.matches('\n').count());
    Some((
        vec![
            (instantiate.start, instantiate.end, replaced),
            (send.body, send.body, SEND_FIRST.to_string()),
        ],
        (instantiate.start, instantiate.end),
    ))
}

/// `text` on exactly `lines + 1` lines (so that every line after it keeps
/// its number): padded with newlines, or, when it has more, with its
/// newlines turned into spaces and the `lines` newlines after it.
fn fit_lines(text: &str, lines: usize) -> String {
    let has = text.matches('\n').count();
    if has <= lines {
        format!("{text}{}", "\n".repeat(lines - has))
    } else {
        format!("{}{}", text.replace('\n', " "), "\n".repeat(lines))
    }
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where a declaration is: its text, and for a function where its body's
/// first statement may go (just after the `{`).
#[derive(Clone, Copy)]
struct Declaration {
    start: usize,
    end: usize,
    body: usize,
}

#[derive(Default)]
struct Found {
    declarations: HashMap<&'static str, Vec<Declaration>>,
}

impl Found {
    /// Keeps the declaration of `name` if it is one of [`ELM`]'s.
    fn declared(&mut self, name: &str, start: u32, end: u32, body: u32) {
        if let Some(name) = ELM.iter().map(|(n, _)| *n).find(|n| *n == name) {
            let (start, end, body) = (start as usize, end as usize, body as usize);
            let declaration = Declaration { start, end, body };
            self.declarations.entry(name).or_default().push(declaration);
        }
    }
}

impl<'a> Visit<'a> for Found {
    fn visit_function(&mut self, func: &Function<'a>, flags: ScopeFlags) {
        if let (Some(id), Some(body)) = (&func.id, &func.body) {
            let span = func.span;
            self.declared(&id.name, span.start, span.end, body.span.start + 1);
        }
        walk::walk_function(self, func, flags);
    }

    fn visit_variable_declarator(&mut self, decl: &VariableDeclarator<'a>) {
        if let BindingPattern::BindingIdentifier(id) = &decl.id {
            let span = decl.span;
            self.declared(&id.name, span.start, span.end, span.end);
        }
        walk::walk_variable_declarator(self, decl);
    }
}
