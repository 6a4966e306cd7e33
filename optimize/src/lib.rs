//! # elmbox-optimize
//!
//! Elm-aware rewriting of `elm make` output before elmbox evaluates it, so
//! that an interpreter does less work per event with the same behaviour.
//! [`optimize`] makes three rewrites, each in a module of its own:
//!
//! - `direct_calls`: Elm calls every function of two or more arguments
//!   through `A2`…`A9`: `A2(f, x, y)` is `f.a === 2 ? f.f(x, y) : f(x)(y)`,
//!   and `F2(g)` makes the `f` with `f.a = 2` and `f.f = g`. The call to
//!   `A2` is saved (one JavaScript call of two) in two ways:
//!   - when `f` is a variable whose only value is `F2(…)` (declared so,
//!     never assigned), the test always passes: `f.f(x, y)`, the same call
//!     with the same `this`;
//!   - otherwise, when `f` is a name and `x` and `y` are names, literals or
//!     a name's property: `(f.a === 2 ? f.f(x, y) : f(x)(y))`, `A2`'s body
//!     in place (reading `f.a` before `x` and `y` changes nothing, as
//!     reading them runs no code);
//!
//!   and a name for another (`var g = f;`, which Elm writes for many of its
//!   functions) counts as what it names. `comparisons`: `compare x y` with
//!   such reads settles numbers and strings in place, as `_Utils_cmp`'s
//!   first step does, and calls `compare` only for the rest; and
//!   `List.sortWith` reads the app's `Order` as the number it is in
//!   `--optimize` builds.
//! - `ports`: Elm's outgoing-port managers take each batch at once instead
//!   of after a `setTimeout(…, 0)`, which under elmbox's clock delivers the
//!   same values in the same order (the module tells why).
//! - `managers`: Elm's effect managers take each message the moment it is
//!   sent, when the scheduler is idle and they wait for one, instead of
//!   through the scheduler's queue and four of its steps; an event's
//!   effects skip the effects queue when it is idle, and reach the managers
//!   through a list of them made once; an effect without taggers reaches its
//!   manager's map with one function made once, not a new closure. Elm's own runtime is replaced in a
//!   few places, where it is Elm's word for word (the module tells how that
//!   keeps every order).
//!
//! Safety comes from a real parser and scope analysis (oxc), not text
//! matching: only names that resolve to the program's own definitions are
//! touched, and only when those definitions are Elm's (their text is
//! checked). Anything else is left as it was. Removed text is replaced by
//! as many newlines as it held, so every line keeps its number.
//!
//! oxc's parser, scope analysis and visitors recurse once per level of
//! nesting, so text nested deeply enough (200,000 parentheses) would
//! overflow any fixed stack and abort the process: hostile text must not be
//! able to do that to a host serving many apps. So the work runs on a thread
//! of its own whose stack is sized from the text ([`stack_for`]), and text
//! that would need more than [`MAX_STACK`] is left as it is.

use oxc_allocator::Allocator;
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::SourceType;

mod comparisons;
mod direct_calls;
mod managers;
mod ports;

/// The rewritten program, and what was rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub source: String,
    /// Calls that no longer go through `A2`…`A9` (made direct, with
    /// `A<n>`'s body in place, or, for `compare`, settled in place).
    pub direct_calls: usize,
    /// Whether outgoing-port managers now take each batch at once.
    pub outgoing_ports_awake: bool,
    /// Whether `List.sortWith` reads the app's `Order` as a number.
    pub sorts_read_orders_as_numbers: bool,
    /// Whether effect managers take each message the moment it is sent
    /// instead of through the scheduler's queue.
    pub managers_take_messages_at_once: bool,
    /// Whether an event's effects reach the managers through the list of
    /// them made once, instead of enumerating them each time.
    pub managers_listed_once: bool,
    /// Whether an event's effects skip the effects queue when it is idle.
    pub effects_skip_idle_queue: bool,
    /// Whether an effect without taggers reaches its manager's map with
    /// one function made once instead of a new closure.
    pub untagged_effects_share_a_function: bool,
}

/// Rewrites Elm output as the crate's documentation says. `None` when there
/// is nothing to do: the text does not parse as a script, or is not Elm
/// output with Elm's own helpers, or has nothing to rewrite. The caller
/// then runs the source unchanged.
pub fn optimize(source: &str) -> Option<Rewritten> {
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

/// The largest stack [`optimize`] reserves: address space, of which only
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

    let managers = managers::rewrites(&program, scoping, source);
    let compare = comparisons::elm_compare(&program, scoping, source);
    let mut edits = direct_calls::edits(&program, scoping, source, compare.as_ref());
    // Functions replaced whole take their calls with them.
    edits.retain(|(at, to, _)| {
        managers
            .replaced
            .iter()
            .all(|(start, end)| to <= start || at >= end)
    });
    let calls = edits.len();
    let ports = ports::without_sleep(&program, scoping, source);
    edits.extend(ports.clone());
    let sort_with = compare.and_then(|c| c.sort_with);
    edits.extend(sort_with.clone());
    edits.extend(managers.edits.iter().cloned());
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
        direct_calls: calls,
        outgoing_ports_awake: ports.is_some(),
        sorts_read_orders_as_numbers: sort_with.is_some(),
        managers_take_messages_at_once: managers.delivery,
        managers_listed_once: managers.homes_listed,
        effects_skip_idle_queue: managers.idle_queue_skipped,
        untagged_effects_share_a_function: managers.shared_tagger,
    })
}

/// `(start, end, text)`: the source's bytes `start..end` become `text`.
type Edit = (usize, usize, String);

/// How many bindings named `name` the whole program has, in any scope: a
/// name bound once cannot be shadowed where a rewrite writes it.
fn bindings(scoping: &oxc_semantic::Scoping, name: &str) -> usize {
    scoping.symbol_names().filter(|n| *n == name).count()
}

fn without_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}
