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
//! And two more, on the way effects reach the managers, each an event:
//! - `_Platform_enqueueEffects` queues an event's effects only when effects
//!   are being dispatched already; otherwise (its queue is then empty: it
//!   is drained before it is marked idle) it dispatches them at once and
//!   then drains the queue, as the queue's loop would have.
//! - `_Platform_setupEffects`, once it has made every manager, leaves the
//!   list of their homes on the `managers` object (not enumerable), in the
//!   order `for (home in managers)` gives; nothing changes that object
//!   afterwards, so `_Platform_dispatchEffects` walks that list instead of
//!   enumerating the object each event (and enumerates it when there is no
//!   list yet).
//!
//! And one on the way each effect goes to its manager's map:
//! - `_Platform_toEffect` gives the map a closure over the effect's taggers
//!   (the `Cmd.map`s and `Sub.map`s it came through), made anew for every
//!   effect of every event; with no taggers the closure returns what it is
//!   given, so one function made once, that does that, stands for it.
//!
//! The four (delivery, the list of homes, the idle queue, the shared
//! tagger) are independent:
//! each is made where the functions it replaces and stands on are Elm's,
//! as below (elm/core before 1.0.3 has no effects queue, for one).
//!
//! As in `_Scheduler_enqueue`, `_Scheduler_working` is set while the
//! callback runs, so whatever it sends to other processes waits in the
//! queue, and the queue is drained before it is cleared; and messages that
//! reach this manager meanwhile are taken before anything queued, as the
//! step that would have parked it again takes them.
//!
//! Only Elm's own runtime is touched: each function a group replaces or
//! stands on ([`DELIVERY`], [`HOMES_LISTED`], [`IDLE_QUEUE`], [`SHARED_TAGGER`]) must be bound once in the program
//! and be Elm's word for word (checked by a SHA-256 of its text without
//! whitespace, as `elm make` 0.19.1 writes elm/core 1.0.5's runtime), and so
//! must the variables they use; the names they add must be bound nowhere.

use std::collections::HashMap;

use oxc_ast::ast::{BindingPattern, Function, Program, VariableDeclarator};
use oxc_ast_visit::{walk, Visit};
use oxc_semantic::{ScopeFlags, Scoping};
use sha2::{Digest, Sha256};

use crate::{bindings, without_whitespace, Edit};

/// What Elm's runtime must hold for managers to take messages at once, each
/// name with the SHA-256 (hex) of its declaration's text without
/// whitespace: `function name(…){…}` for a function, `name=…` for a
/// variable.
const DELIVERY: [(&str, &str); 9] = [
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

/// What Elm's runtime must hold for `_Platform_dispatchEffects` to walk the
/// list of homes that `_Platform_setupEffects` leaves, as [`DELIVERY`].
const HOMES_LISTED: [(&str, &str); 2] = [
    (
        "_Platform_setupEffects",
        "c560cbfebc43e4599b959defd57768c814a609d97f9130e7e538e931fa60ca91",
    ),
    (
        "_Platform_dispatchEffects",
        "2eac9771911a43c582224066250d58562970e4b6f6b5aab7057a5f7954039e52",
    ),
];

/// What Elm's runtime must hold for effects to skip an idle queue, as
/// [`DELIVERY`]. (elm/core before 1.0.3 has no such queue.)
const IDLE_QUEUE: [(&str, &str); 3] = [
    (
        "_Platform_enqueueEffects",
        "5ae023bb5519fa09a2cbce532618710aff95c4395114f1a299f40f7a33e39330",
    ),
    (
        "_Platform_effectsQueue",
        "5f2947eb9a7ce3a4a1c3126fa4400fb5a7288834fd263e98ecba42cb33b16ffd",
    ),
    (
        "_Platform_effectsActive",
        "7a0243174bb2ffec5d95bc9ec13137f636ccc8cd1adcaf50481aa48a8efc3175",
    ),
];

/// What Elm's runtime must hold for an effect without taggers to reach
/// its manager's map with one function made once, as [`DELIVERY`]; but
/// `_Platform_toEffect`'s text is taken with the two fields of its list of
/// taggers (which `elm make` names anew in each program) written `REST`
/// and `TAGGER` ([`fingerprint_text`]).
const SHARED_TAGGER: [(&str, &str); 2] = [
    (
        "_Platform_toEffect",
        "2f6d18f7af1b05291a519975c94577e4c3fc16014042cc397e069d782013e4b3",
    ),
    (
        "A2",
        "3193188c47dd274c227741b0d3900a8cb5f4b4a4c6b18e91241b4300dd43fa20",
    ),
];

/// The name [`TO_EFFECT`] adds.
const SAME: &str = "_Platform_elmboxSame";

/// The name [`SETUP`] adds.
const HOMES: &str = "_Platform_elmboxHomes";

/// The new `_Platform_instantiateManager`. No `//` comments in this or the
/// other new texts: one may have to be written on fewer lines than it has
/// (see [`fit_lines`]).
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

/// The new `_Platform_setupEffects`, with the function that lists homes.
const SETUP: &str = "function _Platform_elmboxHomes(managers) { var homes = []; for (var home in managers) { homes.push(home); } return homes; }
function _Platform_setupEffects(managers, sendToApp)
{
	var ports;
	for (var key in _Platform_effectManagers)
	{
		var manager = _Platform_effectManagers[key];
		if (manager.a)
		{
			ports = ports || {};
			ports[key] = manager.a(key, sendToApp);
		}
		managers[key] = _Platform_instantiateManager(manager, sendToApp);
	}
	/* elmbox: the homes, for _Platform_dispatchEffects (elmbox-optimize, managers.rs) */
	Object.defineProperty(managers, 'elmboxHomes', { value: _Platform_elmboxHomes(managers) });
	return ports;
}";

/// The new `_Platform_enqueueEffects`.
const ENQUEUE: &str = "function _Platform_enqueueEffects(managers, cmdBag, subBag)
{
	if (_Platform_effectsActive) { _Platform_effectsQueue.push({ p: managers, q: cmdBag, r: subBag }); return; }
	/* elmbox: an idle queue is empty, so these go first without it (elmbox-optimize, managers.rs) */
	_Platform_effectsActive = true;
	_Platform_dispatchEffects(managers, cmdBag, subBag);
	for (var fx; fx = _Platform_effectsQueue.shift(); )
	{
		_Platform_dispatchEffects(fx.p, fx.q, fx.r);
	}
	_Platform_effectsActive = false;
}";

/// The new `_Platform_dispatchEffects`.
const DISPATCH_EFFECTS: &str = "function _Platform_dispatchEffects(managers, cmdBag, subBag)
{
	var effectsDict = {};
	_Platform_gatherEffects(true, cmdBag, effectsDict, null);
	_Platform_gatherEffects(false, subBag, effectsDict, null);
	/* elmbox: the homes _Platform_setupEffects listed (elmbox-optimize, managers.rs) */
	for (var homes = managers.elmboxHomes || _Platform_elmboxHomes(managers), n = 0; n < homes.length; n++)
	{
		_Scheduler_rawSend(managers[homes[n]], {
			$: 'fx',
			a: effectsDict[homes[n]] || { i: _List_Nil, j: _List_Nil }
		});
	}
}";

/// The new `_Platform_toEffect`, with its taggers' fields to fill in
/// (`REST`, `TAGGER`), and `A2`'s body in place of the call to it.
const TO_EFFECT: &str = "function _Platform_elmboxSame(x) { return x; }
function _Platform_toEffect(isCmd, home, taggers, value)
{
	/* elmbox: one function for every effect without taggers (elmbox-optimize, managers.rs) */
	var applyTaggers = !taggers ? _Platform_elmboxSame : function(x)
	{
		for (var temp = taggers; temp; temp = temp.REST)
		{
			x = temp.TAGGER(x);
		}
		return x;
	};
	var map = isCmd
		? _Platform_effectManagers[home].e
		: _Platform_effectManagers[home].f;
	return (map.a === 2 ? map.f(applyTaggers, value) : map(applyTaggers)(value));
}";

/// The edits that make Elm's effects reach its managers as the module
/// says, with what they replace whole (which other rewrites must leave
/// alone), and which groups they make.
pub(crate) struct Rewrites {
    pub edits: Vec<Edit>,
    pub replaced: Vec<(usize, usize)>,
    /// Managers take each message the moment it is sent.
    pub delivery: bool,
    /// Effects reach the managers without enumerating them.
    pub homes_listed: bool,
    /// Effects skip an idle queue.
    pub idle_queue_skipped: bool,
    /// An effect without taggers makes no closure for them.
    pub shared_tagger: bool,
}

pub(crate) fn rewrites(program: &Program<'_>, scoping: &Scoping, source: &str) -> Rewrites {
    let mut found = Found::default();
    found.visit_program(program);
    let elms = |runtime: &[(&str, &str)]| {
        runtime.iter().all(|(name, fingerprint)| {
            let Some([declaration]) = found.declarations.get(name).map(Vec::as_slice) else {
                return false;
            };
            let text = without_whitespace(&source[declaration.start..declaration.end]);
            bindings(scoping, name) == 1
                && fingerprint_text(name, text).is_some_and(|text| sha256(&text) == *fingerprint)
        })
    };
    let mut rewrites = Rewrites {
        edits: Vec::new(),
        replaced: Vec::new(),
        delivery: elms(&DELIVERY),
        homes_listed: elms(&HOMES_LISTED) && bindings(scoping, HOMES) == 0,
        idle_queue_skipped: elms(&IDLE_QUEUE),
        shared_tagger: elms(&SHARED_TAGGER) && bindings(scoping, SAME) == 0,
    };
    let mut replace = |name: &str, text: &str| {
        let declaration = found.declarations[name][0];
        let (start, end) = (declaration.start, declaration.end);
        let lines = source[start..end].matches('\n').count();
        rewrites.edits.push((start, end, fit_lines(text, lines)));
        rewrites.replaced.push((start, end));
    };
    if rewrites.delivery {
        replace("_Platform_instantiateManager", INSTANTIATE);
    }
    if rewrites.homes_listed {
        replace("_Platform_setupEffects", SETUP);
        replace("_Platform_dispatchEffects", DISPATCH_EFFECTS);
    }
    if rewrites.idle_queue_skipped {
        replace("_Platform_enqueueEffects", ENQUEUE);
    }
    if rewrites.shared_tagger {
        let to_effect = found.declarations[TO_EFFECT_NAME][0];
        let text = without_whitespace(&source[to_effect.start..to_effect.end]);
        // Found when its fingerprint was taken.
        if let Some((rest, tagger)) = tagger_fields(&text) {
            let text = TO_EFFECT
                .replace("temp.REST", &format!("temp.{rest}"))
                .replace("temp.TAGGER", &format!("temp.{tagger}"));
            replace(TO_EFFECT_NAME, &text);
        }
    }
    if rewrites.delivery {
        let send = found.declarations["_Scheduler_rawSend"][0];
        rewrites
            .edits
            .push((send.body, send.body, SEND_FIRST.to_string()));
    }
    rewrites
}

/// The function whose fingerprint leaves out its taggers' field names.
const TO_EFFECT_NAME: &str = "_Platform_toEffect";

/// The text a declaration's fingerprint is taken of: its text without
/// whitespace, and for `_Platform_toEffect` with its taggers' fields
/// written `REST` and `TAGGER`; `None` when it has no such fields.
fn fingerprint_text(name: &str, text: String) -> Option<String> {
    if name != TO_EFFECT_NAME {
        return Some(text);
    }
    let (rest, tagger) = tagger_fields(&text)?;
    Some(
        text.replacen(&format!("temp=temp.{rest})"), "temp=temp.REST)", 1)
            .replacen(&format!("{{x=temp.{tagger}(x)"), "{x=temp.TAGGER(x)", 1),
    )
}

/// The fields of `_Platform_toEffect`'s list of taggers in its text without
/// whitespace (`temp = temp.REST` and `x = temp.TAGGER(x)`), which `elm
/// make` names anew in each program.
fn tagger_fields(text: &str) -> Option<(&str, &str)> {
    let field = |after: &str, end: char| {
        let from = text.find(after)? + after.len();
        let field = &text[from..from + text[from..].find(end)?];
        let sound = !field.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        sound.then_some(field)
    };
    Some((field("temp=temp.", ')')?, field("{x=temp.", '(')?))
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
    /// Keeps the declaration of `name` if it is one of those checked.
    fn declared(&mut self, name: &str, start: u32, end: u32, body: u32) {
        let names = DELIVERY
            .iter()
            .chain(&HOMES_LISTED)
            .chain(&IDLE_QUEUE)
            .chain(&SHARED_TAGGER);
        let names = names.map(|(n, _)| *n);
        if let Some(name) = names.into_iter().find(|n| *n == name) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every new text fits in the lines of what it replaces in elm/core
    /// 1.0.5 (so it keeps its own lines), and could be joined on one line.
    #[test]
    fn new_texts_keep_their_lines_and_have_no_line_comments() {
        // Lines (newlines) of elm/core 1.0.5's functions, as elm make writes them.
        let texts = [
            (INSTANTIATE, 30),
            (SETUP, 19),
            (ENQUEUE, 12),
            (DISPATCH_EFFECTS, 13),
            (TO_EFFECT, 16),
        ];
        for (text, lines) in texts {
            assert!(!text.contains("//"), "{text}");
            assert!(text.matches('\n').count() <= lines, "{text}");
        }
    }

    #[test]
    fn text_with_more_lines_than_its_place_is_joined() {
        assert_eq!(fit_lines("a\nb", 3), "a\nb\n\n");
        assert_eq!(fit_lines("a\nb\nc", 1), "a b c\n");
    }
}
